/**
 * File helpers shared by the launcher's edges.
 *
 * @module
 */

import { readFile } from "node:fs/promises";

/** Reads a UTF-8 text file. */
export async function readTextFile(path: string): Promise<string> {
  return await readFile(path, "utf8");
}
