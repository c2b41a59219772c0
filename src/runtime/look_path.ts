/**
 * Command lookup as `execvp` does it: a name with a `/` is used as given, otherwise each `PATH`
 * entry is tried in order (an empty entry means the current directory).
 *
 * @module
 */

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

/**
 * What is at `path`: a regular file, something else (a directory…), or nothing (following
 * symlinks, as `stat(2)`).
 */
export type FileKindCheck = (path: string) => "file" | "other" | "missing";

function check(
  candidate: string,
  canExecute: ExecutableCheck,
  fileKind: FileKindCheck,
): "ok" | "missing" | "denied" {
  const kind = fileKind(candidate);
  if (kind === "missing") return "missing";
  if (kind !== "file") return "denied";
  return canExecute(candidate) ? "ok" : "denied";
}

/**
 * Finds the executable for `file`.
 *
 * @param file the command name (`argv[0]` of the command)
 * @param searchPath the `PATH` to search (`undefined`: {@link DEFAULT_SEARCH_PATH})
 * @param canExecute the execute-permission check (`access(2)`: libc through FFI on Deno,
 *   `nodeAccessCheck` of `./look_path_node.ts` on Node)
 * @param fileKind what a candidate is (`Deno.statSync`, or `nodeFileKind` on Node)
 * @returns the path to execute, or 127 (not found) / 126 (found but not an executable file)
 */
export function lookPath(
  file: string,
  searchPath: string | undefined,
  canExecute: ExecutableCheck,
  fileKind: FileKindCheck,
): LookPathResult {
  if (file === "") return { found: false, exitCode: EXIT_NOT_FOUND, reason: "empty command" };
  if (file.includes("/")) {
    const state = check(file, canExecute, fileKind);
    if (state === "ok") return { found: true, path: file };
    return state === "missing"
      ? { found: false, exitCode: EXIT_NOT_FOUND, reason: "no such file" }
      : { found: false, exitCode: EXIT_NOT_EXECUTABLE, reason: "not an executable file" };
  }
  let denied = false;
  for (const entry of (searchPath ?? DEFAULT_SEARCH_PATH).split(":")) {
    const candidate = entry === "" ? `./${file}` : join(entry, file);
    const state = check(candidate, canExecute, fileKind);
    if (state === "ok") return { found: true, path: candidate };
    if (state === "denied") denied = true;
  }
  return denied
    ? { found: false, exitCode: EXIT_NOT_EXECUTABLE, reason: "not an executable file" }
    : { found: false, exitCode: EXIT_NOT_FOUND, reason: "not found in PATH" };
}
