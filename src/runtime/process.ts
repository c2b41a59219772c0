/**
 * Process basics on Deno and Node: arguments, own executable, exit, raw stdout/stderr lines.
 *
 * @module
 */

// deno-lint-ignore-file no-console
import process from "node:process";
import { denoGlobal } from "./deno.ts";
import type { LogLevel, LogSink } from "../log.ts";

/** The arguments after the program (and script) name. */
export function programArgs(): string[] {
  const deno = denoGlobal();
  return deno ? [...deno.args] : process.argv.slice(2);
}

/** Path of the running executable (the compiled launcher, or the deno/node binary). */
export function executablePath(): string {
  const deno = denoGlobal();
  return deno ? deno.execPath() : process.execPath;
}

/** Ends the process with `code`. */
export function exitProcess(code: number): never {
  const deno = denoGlobal();
  if (deno) deno.exit(code);
  process.exit(code);
}

/** Writes one line to stdout. */
export function writeStdoutLine(line: string): void {
  console.log(line);
}

/** Writes one line to stderr. */
export function writeStderrLine(line: string): void {
  console.error(line);
}

/** Pending text after which a batch is written at once. */
const MAX_PENDING_CHARS = 64 * 1024;

/**
 * A stderr log sink for the webhook: the lines of one event-loop turn go out in one write (a
 * timer of 0 ms) instead of one synchronous write each, which under load was ~8 % of `/mutate`'s
 * CPU. A warning or an error is written at once, with every line before it, and so is a batch
 * past 64 KiB or whatever `Logger.flush()` asks for (the sink's `flush`); what is pending is
 * written when the process exits (`Deno.exit`, `process.exit` or the end of the event loop). A
 * process killed with SIGKILL loses at most the info and debug lines of its last turn. One per
 * process (stderr is one stream): every call returns the same.
 */
export function batchedStderrSink(): LogSink {
  shared ??= createBatchedSink();
  return shared;
}

let shared: LogSink | undefined;

function createBatchedSink(): LogSink {
  let pending: string[] = [];
  let chars = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const text = pending.join("\n");
    pending = [];
    chars = 0;
    console.error(text);
  };
  const sink: LogSink = (line: string, level: LogLevel) => {
    pending.push(line);
    chars += line.length;
    if (level === "warn" || level === "error" || chars >= MAX_PENDING_CHARS) flush();
    else timer ??= setTimeout(flush, 0);
  };
  const events = globalThis as unknown as {
    addEventListener(type: string, listener: () => void): void;
  };
  if (denoGlobal()) events.addEventListener("unload", flush);
  else process.once("exit", flush);
  sink.flush = flush;
  return sink;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
