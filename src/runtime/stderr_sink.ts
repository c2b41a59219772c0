/**
 * The webhook's stderr log sink: batched, synchronous writes to file descriptor 2 that count their
 * failures. Its own module (not `process.ts`): `node:fs` must stay off piggy-env's import graph.
 *
 * @module
 */

import process from "node:process";
import { writeSync } from "node:fs";
import { denoGlobal } from "./deno.ts";
import type { LogLevel, LogSink } from "../log.ts";

/** Pending text after which a batch is written at once. */
const MAX_PENDING_CHARS = 64 * 1024;

/**
 * How long a write to a non-blocking stderr may keep failing with EAGAIN (the reader is not
 * keeping up) before the batch counts as lost. The event loop is blocked meanwhile, as it would
 * be by a write to a blocking stderr whose reader stalls.
 */
const STDERR_STALL_LIMIT_MS = 5_000;

/** Largest batch encoded into the sink's reused buffer; a larger one gets its own. */
const MAX_REUSED_BYTES = 1024 * 1024;

/** Least time between two notices on stdout that stderr writes fail. */
const FAILURE_NOTICE_INTERVAL_MS = 10_000;

/**
 * A stderr log sink for the webhook: the lines of one event-loop turn go out in one write (a
 * timer of 0 ms) instead of one synchronous write each, which under load was ~8 % of `/mutate`'s
 * CPU. A warning or an error is written at once, with every line before it, and so is a batch
 * past 64 KiB or whatever `Logger.flush()` asks for (the sink's `flush`); what is pending is
 * written when the process exits (`Deno.exit`, `process.exit` or the end of the event loop). A
 * process killed with SIGKILL loses at most the info and debug lines of its last turn. One per
 * process (stderr is one stream): every call returns the same.
 *
 * Writes are synchronous writes to file descriptor 2 (`Deno.stderr.writeSync`, on Node
 * `fs.writeSync(2)`), repeated until every byte is out. EAGAIN and EINTR are retried (EAGAIN for
 * up to {@link STDERR_STALL_LIMIT_MS}, and only once after a lost batch until a write works
 * again); any other error (EPIPE: the reader is gone, ENOSPC, EBADF)
 * drops the batch and adds one to the sink's `writeFailures()`, which callers that must not go on
 * without their line compare before and after (the `/secret` audit line). While writes fail, a
 * notice goes to stdout at most every 10 s; the first write that works again says on stderr how
 * many writes and lines were lost.
 */
export function batchedStderrSink(): LogSink {
  shared ??= createBatchedSink(stderrWriter(), stdoutWriter());
  return shared;
}

let shared: LogSink | undefined;

/** Writes some of the bytes to a file descriptor, returning how many; throws on an error. */
type RawWriter = (bytes: Uint8Array) => number;

function stderrWriter(): RawWriter {
  const deno = denoGlobal();
  if (deno?.stderr) return (bytes) => deno.stderr!.writeSync(bytes);
  return (bytes) => writeSync(2, bytes);
}

function stdoutWriter(): RawWriter {
  const deno = denoGlobal();
  if (deno?.stdout) return (bytes) => deno.stdout!.writeSync(bytes);
  return (bytes) => writeSync(1, bytes);
}

/** The error code of a failed write (`EAGAIN`, `EPIPE`, …), when it has one. */
function errorCode(error: unknown): string {
  if (typeof error !== "object" || error === null) return "";
  const { code, name } = error as { code?: unknown; name?: unknown };
  if (typeof code === "string") return code;
  // Deno names some errors instead of giving their code.
  if (name === "WouldBlock") return "EAGAIN";
  if (name === "Interrupted") return "EINTR";
  if (name === "BrokenPipe") return "EPIPE";
  return "";
}

let pauseCell: Int32Array | undefined;

/** Blocks the thread for `ms` (a write to stderr is synchronous anyway). */
function pause(ms: number): void {
  pauseCell ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(pauseCell, 0, 0, ms);
}

/**
 * Writes all of `bytes` with `write`, retrying partial writes, EINTR, and EAGAIN (a non-blocking
 * descriptor whose reader is behind) for up to `stallLimitMs` without progress.
 *
 * @throws the write's error otherwise, or the last EAGAIN once the stall limit is reached
 */
function writeFully(write: RawWriter, bytes: Uint8Array, stallLimitMs: number): void {
  let offset = 0;
  let stalledSince: number | undefined;
  let wait = 1;
  while (offset < bytes.length) {
    let written = 0;
    let stall: unknown;
    try {
      written = write(offset === 0 ? bytes : bytes.subarray(offset));
    } catch (error) {
      const code = errorCode(error);
      if (code === "EINTR") continue;
      if (code !== "EAGAIN" && code !== "EWOULDBLOCK") throw error;
      stall = error;
    }
    if (written > 0) {
      offset += written;
      stalledSince = undefined;
      wait = 1;
      continue;
    }
    const now = Date.now();
    stalledSince ??= now;
    if (now - stalledSince >= stallLimitMs) {
      throw stall ?? new Error(`no byte written for ${stallLimitMs} ms`);
    }
    pause(wait);
    wait = Math.min(wait * 2, 50);
  }
}

function logTime(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

function describeWriteError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The batching sink over `write` (stderr), with failure notices through `notify` (stdout). */
function createBatchedSink(
  write: RawWriter,
  notify: RawWriter,
  stallLimitMs = STDERR_STALL_LIMIT_MS,
): LogSink {
  const encoder = new TextEncoder();
  /** Reused for every batch up to 1 MiB (no new buffer per write). */
  let buffer = new Uint8Array(16 * 1024);
  const encode = (text: string): Uint8Array => {
    const most = text.length * 3; // UTF-8 bytes per UTF-16 code unit, at most
    if (most > MAX_REUSED_BYTES) return encoder.encode(text);
    if (buffer.length < most) buffer = new Uint8Array(Math.max(most, buffer.length * 2));
    return buffer.subarray(0, encoder.encodeInto(text, buffer).written);
  };
  let pending: string[] = [];
  let chars = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failures = 0;
  /** Failed writes and lines lost since the last write that worked. */
  let failedWrites = 0;
  let lostLines = 0;
  let lastNotice = -Infinity;
  const notice = (error: unknown) => {
    const now = Date.now();
    if (now - lastNotice < FAILURE_NOTICE_INTERVAL_MS) return;
    lastNotice = now;
    const line = JSON.stringify({
      level: "error",
      failed_writes: failedWrites,
      lost_lines: lostLines,
      error: describeWriteError(error),
      time: logTime(),
      message: "Cannot write log lines to stderr: they are lost, and /secret answers 500 " +
        "until its audit lines can be written",
    });
    try {
      writeFully(notify, encoder.encode(line + "\n"), 0);
    } catch {
      // stdout is gone too: the failure count is all that is left
    }
  };
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const lines = pending;
    const count = lines.length;
    pending = [];
    chars = 0;
    if (failedWrites > 0) {
      lines.push(JSON.stringify({
        level: "warn",
        failed_writes: failedWrites,
        lost_lines: lostLines,
        time: logTime(),
        message: "Log lines could be written to stderr again; lines were lost before",
      }));
    }
    try {
      lines.push(""); // the last line's newline
      // After a lost batch, later ones get one try each until a write works again: a stalled
      // reader blocks the event loop for one stall limit, not for one per batch.
      writeFully(write, encode(lines.join("\n")), failedWrites > 0 ? 0 : stallLimitMs);
      failedWrites = 0;
      lostLines = 0;
      lastNotice = -Infinity;
    } catch (error) {
      failures++;
      failedWrites++;
      lostLines += count;
      notice(error);
    }
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
  sink.writeFailures = () => failures;
  return sink;
}
