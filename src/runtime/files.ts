/**
 * File helpers shared by the launcher's edges.
 *
 * @module
 */

import { denoGlobal } from "./deno.ts";

/**
 * Reads a UTF-8 text file: `Deno.readTextFile` on Deno (piggy-env's start then loads no
 * `node:fs`), `node:fs/promises` on Node.
 */
export async function readTextFile(path: string): Promise<string> {
  const deno = denoGlobal();
  if (deno?.readTextFile) return await deno.readTextFile(path);
  const { readFile } = await import("node:fs/promises");
  return await readFile(path, "utf8");
}

/**
 * False when nothing is at `path` (ENOENT, ENOTDIR); true when something is (a file, directory, …)
 * or when it cannot be told (permission denied: the caller should assume it is there).
 * `Deno.statSync` on Deno, `node:fs/promises` on Node.
 */
export async function pathExists(path: string): Promise<boolean> {
  const deno = denoGlobal();
  try {
    if (deno?.statSync) {
      deno.statSync(path);
      return true;
    }
    const { stat } = await import("node:fs/promises");
    await stat(path);
    return true;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    return !(code === "ENOENT" || code === "ENOTDIR" || (error as Error)?.name === "NotFound");
  }
}
