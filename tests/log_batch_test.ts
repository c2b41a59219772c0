/**
 * The webhook's batched stderr log sink, in a real child process: info lines wait for the end of
 * the event-loop turn, warnings and errors go out at once with everything before them, and what
 * is pending is written on `Deno.exit` and at the natural end of the process. A stderr that
 * cannot be written (`/dev/full`, a pipe whose reader is gone) is counted and noticed on stdout.
 */
import { test } from "node:test";
import assert from "node:assert/strict";

const SINK = new URL("../src/runtime/stderr_sink.ts", import.meta.url).href;
const LOG = new URL("../src/log.ts", import.meta.url).href;

async function run(body: string): Promise<{ lines: string[]; code: number }> {
  const script = `
    import { batchedStderrSink } from "${SINK}";
    import { Logger } from "${LOG}";
    const logger = new Logger({ level: "debug", sink: batchedStderrSink() });
    ${body}
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(output.stderr).split("\n").filter((line) => line !== "");
  return { lines: lines.map((line) => JSON.parse(line).message), code: output.code };
}

test("batched log sink: pending lines are written on Deno.exit, in order", async () => {
  const { lines, code } = await run(`
    for (let i = 0; i < 5; i++) logger.info("line " + i);
    logger.debug("last");
    Deno.exit(3);
  `);
  assert.equal(code, 3);
  assert.deepEqual(lines, ["line 0", "line 1", "line 2", "line 3", "line 4", "last"]);
});

test("batched log sink: pending lines are written when the event loop ends", async () => {
  const { lines } = await run(`logger.info("a"); await Promise.resolve(); logger.info("b");`);
  assert.deepEqual(lines, ["a", "b"]);
});

test("batched log sink: a warning is written at once with the lines before it", async () => {
  // SIGKILL runs no exit handler: only what was written already survives.
  const { lines } = await run(`
    logger.info("before");
    logger.warn("warning");
    logger.info("after, still pending");
    Deno.kill(Deno.pid, "SIGKILL");
  `);
  assert.deepEqual(lines, ["before", "warning"]);
});

test("batched log sink: info lines of one turn are written by a timer, not at once", async () => {
  const { lines } = await run(`
    logger.info("pending");
    Deno.kill(Deno.pid, "SIGKILL");
  `);
  assert.deepEqual(lines, []);
});

test("batched log sink: lines of later turns are written too", async () => {
  const { lines } = await run(`
    logger.info("first");
    await new Promise((resolve) => setTimeout(resolve, 50));
    logger.error("second");
    await new Promise((resolve) => setTimeout(resolve, 50));
    logger.info("third");
    await new Promise((resolve) => setTimeout(resolve, 50));
    Deno.kill(Deno.pid, "SIGKILL");
  `);
  assert.deepEqual(lines, ["first", "second", "third"]);
});

test("batched log sink: Logger.flush() writes the pending lines at once", async () => {
  const { lines } = await run(`
    logger.info("audit");
    logger.flush();
    logger.info("pending");
    Deno.kill(Deno.pid, "SIGKILL");
  `);
  assert.deepEqual(lines, ["audit"]);
});

/**
 * Runs `body` with the child's stderr on `/dev/full` (every write fails with ENOSPC) or on a pipe
 * whose reading end the parent closed before the child logs. Returns the child's stdout lines.
 */
async function runFailing(body: string, stderr: "full" | "closed"): Promise<string[]> {
  const script = `
    import { batchedStderrSink } from "${SINK}";
    import { Logger } from "${LOG}";
    const logger = new Logger({ level: "debug", sink: batchedStderrSink() });
    // Waits for the parent (which closes the stderr pipe first) before logging.
    await Deno.stdin.read(new Uint8Array(1));
    ${body}
  `;
  const eval_ = ["eval", "--no-config", script];
  const command = stderr === "full"
    ? new Deno.Command("/bin/sh", {
      args: ["-c", 'exec "$0" "$@" 2>/dev/full', Deno.execPath(), ...eval_],
      stdin: "piped",
      stdout: "piped",
    })
    : new Deno.Command(Deno.execPath(), {
      args: eval_,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    });
  const child = command.spawn();
  if (stderr === "closed") await child.stderr.cancel();
  const writer = child.stdin.getWriter();
  await writer.write(new Uint8Array([10]));
  await writer.close();
  const output = await child.output();
  return new TextDecoder().decode(output.stdout).split("\n").filter((line) => line !== "");
}

const FAILING_BODY = `
  logger.info("lost 1");
  logger.info("lost 2");
  logger.flush();
  console.log("after one: " + logger.writeFailures());
  logger.warn("lost 3");
  console.log("after two: " + logger.writeFailures());
`;

for (const stderr of ["full", "closed"] as const) {
  test(`batched log sink: a failed write (${stderr} stderr) is counted and noticed once on stdout`, async () => {
    const lines = await runFailing(FAILING_BODY, stderr);
    const notices = lines.filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));
    assert.deepEqual(lines.filter((line) => !line.startsWith("{")), [
      "after one: 1",
      "after two: 2",
    ]);
    // One notice for both failures (at most one per 10 s), naming the error and what was lost.
    assert.equal(notices.length, 1, lines.join("\n"));
    assert.equal(notices[0].level, "error");
    assert.match(notices[0].message, /Cannot write log lines to stderr/);
    assert.equal(notices[0].lost_lines, 2);
    assert.match(notices[0].error, stderr === "full" ? /No space left/i : /pipe/i);
  });
}

test("batched log sink: multi-byte text and batches past the reused buffer are written whole", async () => {
  const { lines } = await run(`
    logger.info("é€😀 small");
    logger.flush();
    logger.info("ü".repeat(100_000)); // 200 KB: a grown buffer
    logger.info("€".repeat(400_000)); // 1.2 MB at most: encoded on its own
    logger.info("after");
  `);
  assert.deepEqual(lines.map((line) => line.slice(0, 12)), [
    "é€😀 small",
    "ü".repeat(12),
    "€".repeat(12),
    "after",
  ]);
  assert.equal(lines[1], "ü".repeat(100_000));
  assert.equal(lines[2], "€".repeat(400_000));
});
