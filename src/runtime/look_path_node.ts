/**
 * The checks of `lookPath()` through `node:fs`, for Node (and Deno without FFI). Loaded only there:
 * on Deno the launcher uses libc `access` and `Deno.statSync` and loads no `node:fs`.
 *
 * @module
 */

import { accessSync, constants, statSync } from "node:fs";
import type { ExecutableCheck, FileKindCheck } from "./look_path.ts";

/** {@link ExecutableCheck} through `node:fs` (real `access(2)` on Node). */
export const nodeAccessCheck: ExecutableCheck = (path) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** {@link FileKindCheck} through `node:fs`. */
export const nodeFileKind: FileKindCheck = (path) => {
  try {
    return statSync(path).isFile() ? "file" : "other";
  } catch {
    return "missing";
  }
};
