/**
 * Runs a command and collects its output, for kubeconfig `exec` credential plugins in the local
 * start. Only entry points that may run commands pass it on: the shipped webhook does not (its
 * binary has no `--allow-run`).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import process from "node:process";
import { signalNumber } from "./signals.ts";

/** What a finished command printed and returned. */
export interface CommandResult {
  /** Exit code (128 + signal number when killed by a signal). */
  code: number;
  stdout: string;
  stderr: string;
}

/** How to run a command. */
export interface RunCommandOptions {
  /** Variables added to this process's environment. */
  env: Record<string, string>;
  /** Time after which the command is killed and the call fails. */
  timeoutMs: number;
  /** Largest stdout plus stderr kept; more kills the command and fails the call. */
  maxOutputBytes: number;
}

/**
 * Runs a command with `node:child_process` (Deno needs `--allow-run`).
 *
 * @throws {Error} when the command cannot start (`code` ENOENT, EACCES), times out, or prints more
 *   than `maxOutputBytes`
 */
export function runCommand(
  command: string,
  args: readonly string[],
  options: RunCommandOptions,
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let failure: Error | undefined;
    const stop = (error: Error) => {
      failure ??= error;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(
      () => stop(new Error(`the command did not finish within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size > options.maxOutputBytes) {
        return stop(new Error(`the command printed more than ${options.maxOutputBytes} bytes`));
      }
      into.push(chunk);
    };
    child.stdout.on("data", collect(out));
    child.stderr.on("data", collect(err));
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (failure) return reject(failure);
      resolve({
        code: code ?? 128 + signalNumber(signal ?? ""),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
  });
}
