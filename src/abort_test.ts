import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import process from "node:process";
import { promisify } from "node:util";
import { raceAbort, startDeadline } from "./abort.ts";

test("startDeadline aborts its signal when the time passes, and says it was the clock", async () => {
  const deadline = startDeadline(20, undefined, () => new Error("too late"));
  assert.equal(deadline.signal.aborted, false);
  assert.equal(deadline.expired, false);
  await new Promise((resolve) => deadline.signal.addEventListener("abort", resolve));
  assert.equal(deadline.expired, true);
  assert.equal((deadline.signal.reason as Error).message, "too late");
  deadline.dispose();
});

test("startDeadline follows its parent's abort without calling it expired", () => {
  const parent = new AbortController();
  const deadline = startDeadline(60_000, parent.signal);
  parent.abort(new Error("client went away"));
  assert.equal(deadline.signal.aborted, true);
  assert.equal(deadline.expired, false);
  assert.equal((deadline.signal.reason as Error).message, "client went away");
  deadline.dispose();

  const already = startDeadline(60_000, parent.signal);
  assert.equal(already.signal.aborted, true);
  already.dispose();
});

test("a disposed deadline never fires and no longer listens to its parent", async () => {
  const parent = new AbortController();
  const deadline = startDeadline(10, parent.signal);
  deadline.dispose();
  await new Promise((resolve) => setTimeout(resolve, 40));
  parent.abort();
  assert.equal(deadline.signal.aborted, false);
  assert.equal(deadline.expired, false);
});

test("raceAbort rejects with the reason as soon as the signal aborts; the work goes on", async () => {
  const controller = new AbortController();
  let finish = (_value: string) => {};
  const work = new Promise<string>((resolve) => finish = resolve);
  const raced = raceAbort(work, controller.signal, () => new Error("aborted here"));
  controller.abort();
  await assert.rejects(raced, /aborted here/);
  finish("done");
  assert.equal(await work, "done");
  assert.equal(await raceAbort(Promise.resolve(1), new AbortController().signal), 1);
});

test("raceAbort on a signal already aborted: the work's later failure is handled", async () => {
  // Node reports it on `process`, Deno as a global event.
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  const onEvent = (event: Event) => {
    unhandled.push((event as Event & { reason?: unknown }).reason);
    event.preventDefault();
  };
  const events = globalThis as unknown as Partial<EventTarget>;
  events.addEventListener?.("unhandledrejection", onEvent);
  process.on("unhandledRejection", onUnhandled);
  try {
    const controller = new AbortController();
    controller.abort();
    let fail = (_error: Error) => {};
    const work = new Promise<string>((_, reject) => fail = reject);
    await assert.rejects(
      raceAbort(work, controller.signal, () => new Error("aborted first")),
      /first/,
    );
    // Unhandled, this rejection would end a webhook process.
    fail(new Error("the shared call failed later"));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off("unhandledRejection", onUnhandled);
    events.removeEventListener?.("unhandledrejection", onEvent);
  }
});

test("deadlines of one length fire in order, each at its time; disposed ones never fire", async () => {
  const fired: number[] = [];
  const started = performance.now();
  const deadlines: ReturnType<typeof startDeadline>[] = [];
  for (let index = 0; index < 6; index++) {
    deadlines.push(startDeadline(30, undefined, () => index));
    deadlines.at(-1)!.signal.addEventListener("abort", () => {
      fired.push(index);
      // Started from a firing callback: it gets its own full length.
      if (index === 5) {
        const late = startDeadline(30);
        late.signal.addEventListener("abort", () => fired.push(99));
      }
    });
    if (index === 1 || index === 4) deadlines[index]!.dispose();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  // A different length runs on its own.
  const short = startDeadline(10, undefined, () => "short");
  await new Promise((resolve) => short.signal.addEventListener("abort", resolve));
  assert.ok(performance.now() - started >= 10);
  await new Promise((resolve) => deadlines[5]!.signal.addEventListener("abort", resolve));
  assert.ok(performance.now() - started >= 30 + 5 * 5 - 1, "not before its time");
  assert.deepEqual(fired, [0, 2, 3, 5]);
  for (const [index, deadline] of deadlines.entries()) {
    assert.equal(deadline.expired, ![1, 4].includes(index));
    if (deadline.expired) assert.equal(deadline.signal.reason, index);
  }
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.deepEqual(fired, [0, 2, 3, 5, 99]);
});

test("a deadline started after every pending one was disposed fires at its own time", async () => {
  const first = startDeadline(80);
  first.dispose();
  await new Promise((resolve) => setTimeout(resolve, 40));
  const started = performance.now();
  const next = startDeadline(80);
  // The first one's timer, still armed, fires ~40 ms from here: it must not end the next early.
  await new Promise((resolve) => next.signal.addEventListener("abort", resolve));
  assert.ok(performance.now() - started >= 79, `fired after ${performance.now() - started} ms`);
  assert.equal(first.signal.aborted, false);
});

test("a disposed deadline does not keep the process alive; a pending one does", async () => {
  // This file runs on Deno and, built, on Node: the module beside it has the same extension.
  const module = import.meta.url.replace(/abort_test\.(ts|js)$/, "abort.$1");
  const run = async (code: string) => {
    const script = `import { startDeadline } from "${module}";${code}`;
    const args = "Deno" in globalThis ? ["eval", script] : ["--input-type=module", "-e", script];
    const { stdout } = await promisify(execFile)(process.execPath, args, { timeout: 30_000 });
    return { out: stdout };
  };
  // 60 s deadlines: a process kept alive by one would time the test out.
  const disposed = await run("startDeadline(60_000).dispose(); console.log('done');");
  assert.equal(disposed.out.trim(), "done");
  const pending = await run(
    // The first one's timer, no longer holding the process, holds it again for the second.
    "startDeadline(300).dispose(); const d = startDeadline(300, undefined, () => 'late'); " +
      "d.signal.addEventListener('abort', () => console.log(d.signal.reason));",
  );
  assert.equal(pending.out.trim(), "late");
});

test("disposing every pending deadline stops the clock; a later one still fires", async () => {
  const many = Array.from({ length: 2000 }, () => startDeadline(15));
  for (const deadline of many) deadline.dispose();
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.ok(many.every((deadline) => !deadline.signal.aborted));
  const next = startDeadline(15);
  await new Promise((resolve) => next.signal.addEventListener("abort", resolve));
  assert.equal(next.expired, true);
});
