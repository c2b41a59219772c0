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
