/**
 * `piggy-env install <dir>`: copies the launcher's own executable into the shared volume,
 * atomically (temporary file in the same directory, then rename) and with mode 0755.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { chmod, copyFile, open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** File name used when the destination is a directory. */
export const LAUNCHER_FILE_NAME = "piggy-env";

/** Mode of the installed launcher (Go Piggy used a world-writable 0777). */
export const LAUNCHER_MODE = 0o755;

/**
 * Where `install <destination>` writes: `<destination>/piggy-env` when the destination is an
 * existing directory, otherwise the destination itself.
 */
export async function installTarget(destination: string): Promise<string> {
  try {
    if ((await stat(destination)).isDirectory()) return join(destination, LAUNCHER_FILE_NAME);
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") throw error;
  }
  return destination;
}

/**
 * Copies `source` to the install target. Readers never see a partial file: the copy is written to a
 * temporary name in the target directory, flushed, made 0755 and renamed over the target.
 *
 * @param source the executable to copy (the running binary)
 * @param destination a directory or a file path
 * @returns the path written
 * @throws {Error} with the cause when any step fails (the temporary file is removed)
 */
export async function installExecutable(source: string, destination: string): Promise<string> {
  const target = await installTarget(destination);
  const temporary = join(
    dirname(target),
    `.${basename(target)}.${randomBytes(6).toString("hex")}.tmp`,
  );
  try {
    await copyFile(source, temporary, constants.COPYFILE_EXCL);
    // copyFile keeps the source's mode (0555 in the image): set ours by path before opening, and
    // open read-only, which is enough to fsync.
    await chmod(temporary, LAUNCHER_MODE);
    const handle = await open(temporary, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    const detail = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot install "${source}" to "${target}": ${detail}`, { cause: error });
  }
  return target;
}
