import { test } from "node:test";
import assert from "node:assert/strict";
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
