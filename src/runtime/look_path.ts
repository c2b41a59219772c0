/**
 * Command lookup as `execvp` does it: a name with a `/` is used as given, otherwise each `PATH`
 * entry is tried in order (an empty entry means the current directory).
 *
 * @module
 */

import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";

/** glibc's search path when `PATH` is unset. */
export const DEFAULT_SEARCH_PATH = "/bin:/usr/bin";

/** Exit code when the command does not exist (as a shell). */
export const EXIT_NOT_FOUND = 127;

/** Exit code when the command exists but cannot be executed (as a shell). */
export const EXIT_NOT_EXECUTABLE = 126;

/** The lookup result. */
export type LookPathResult =
  | { found: true; path: string }
  | { found: false; exitCode: 126 | 127; reason: string };

/** True when the current process may execute `path` (the `access(path, X_OK)` check). */
export type ExecutableCheck = (path: string) => boolean;

/** {@link ExecutableCheck} through `node:fs` (real `access(2)` on Node). */
export function nodeAccessCheck(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function check(candidate: string, canExecute: ExecutableCheck): "ok" | "missing" | "denied" {
  let isFile: boolean;
  try {
    isFile = statSync(candidate).isFile();
  } catch {
    return "missing";
  }
  if (!isFile) return "denied";
  return canExecute(candidate) ? "ok" : "denied";
}

/**
 * Finds the executable for `file`.
 *
 * @param file the command name (`argv[0]` of the command)
 * @param searchPath the `PATH` to search (`undefined`: {@link DEFAULT_SEARCH_PATH})
 * @param canExecute the execute-permission check (default: {@link nodeAccessCheck})
 * @returns the path to execute, or 127 (not found) / 126 (found but not an executable file)
 */
export function lookPath(
  file: string,
  searchPath: string | undefined,
  canExecute: ExecutableCheck = nodeAccessCheck,
): LookPathResult {
  if (file === "") return { found: false, exitCode: EXIT_NOT_FOUND, reason: "empty command" };
  if (file.includes("/")) {
    const state = check(file, canExecute);
    if (state === "ok") return { found: true, path: file };
    return state === "missing"
      ? { found: false, exitCode: EXIT_NOT_FOUND, reason: "no such file" }
      : { found: false, exitCode: EXIT_NOT_EXECUTABLE, reason: "not an executable file" };
  }
  let denied = false;
  for (const entry of (searchPath ?? DEFAULT_SEARCH_PATH).split(":")) {
    const candidate = entry === "" ? `./${file}` : join(entry, file);
    const state = check(candidate, canExecute);
    if (state === "ok") return { found: true, path: candidate };
    if (state === "denied") denied = true;
  }
  return denied
    ? { found: false, exitCode: EXIT_NOT_EXECUTABLE, reason: "not an executable file" }
    : { found: false, exitCode: EXIT_NOT_FOUND, reason: "not found in PATH" };
}
