/**
 * The webhook's batched stderr log sink, in a real child process: info lines wait for the end of
 * the event-loop turn, warnings and errors go out at once with everything before them, and what
 * is pending is written on `Deno.exit` and at the natural end of the process.
 */
import { test } from "node:test";
import assert from "node:assert/strict";

const PROCESS = new URL("../src/runtime/process.ts", import.meta.url).href;
const LOG = new URL("../src/log.ts", import.meta.url).href;

async function run(body: string): Promise<{ lines: string[]; code: number }> {
  const script = `
    import { batchedStderrSink } from "${PROCESS}";
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
