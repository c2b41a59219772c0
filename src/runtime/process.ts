/**
 * Process basics on Deno and Node: arguments, own executable, exit, raw stdout/stderr lines.
 *
 * @module
 */

// deno-lint-ignore-file no-console
import process from "node:process";
import { denoGlobal } from "./deno.ts";

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

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
