/**
 * `piggy-env install <dir>`: copies the self-contained launcher directory (the binary, its dynamic
 * loader and libraries; see scripts/launcher_tree.ts) into the shared volume, so the launcher runs
 * in any image: scratch, distroless/static, Alpine (musl), busybox.
 *
 * Safe to re-run (an init container restarts into a populated volume) and readers never see a
 * half-written tree: the copy goes to a new versioned directory `.piggy-env-<random>/`, then the
 * entry points `piggy-env` and `lib` are switched to it by renaming symlinks over them, then older
 * versions are removed. Works as a non-root user from a read-only source.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import {
  chmod,
  copyFile,
  lstat,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  stat,
  symlink,
} from "node:fs/promises";
import { dirname, join } from "node:path";

/** The launcher's file name, in the source directory and in the volume. */
export const LAUNCHER_FILE_NAME = "piggy-env";

/** The directory of the loader and libraries, beside the launcher (its rpath is `$ORIGIN/lib`). */
export const LIBRARY_DIR_NAME = "lib";

/** Prefix of the versioned directories in the volume. */
export const VERSION_PREFIX = ".piggy-env-";

/** Mode of installed executables and directories (Go Piggy used a world-writable 0777). */
export const LAUNCHER_MODE = 0o755;

/** Mode of installed non-executable files. */
export const DATA_MODE = 0o644;

/**
 * Where the image keeps the directory to install when `--from` is not given: `../lib/piggy-env`
 * from the running executable (the image's own runnable copy, `/usr/local/bin/piggy-env`).
 */
export function defaultInstallSource(execPath: string): string {
  return join(dirname(execPath), "..", "lib", LAUNCHER_FILE_NAME);
}

async function checkSource(source: string): Promise<void> {
  const launcher = await stat(join(source, LAUNCHER_FILE_NAME)).catch(() => undefined);
  const libraries = await stat(join(source, LIBRARY_DIR_NAME)).catch(() => undefined);
  if (!launcher?.isFile() || !libraries?.isDirectory()) {
    throw new Error(
      `Cannot use "${source}" as the launcher directory: expecting ${LAUNCHER_FILE_NAME} ` +
        `and ${LIBRARY_DIR_NAME}/, as scripts/compile.ts env builds it`,
    );
  }
}

async function syncFile(path: string): Promise<void> {
  // Open read-only: enough to fsync, and the file may not be writable.
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Copies regular files and directories (nothing else) from `from` into the new `to`. */
async function copyTree(from: string, to: string): Promise<void> {
  await mkdir(to, { mode: LAUNCHER_MODE });
  await chmod(to, LAUNCHER_MODE);
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) {
      await copyTree(source, target);
    } else if (entry.isFile()) {
      await copyFile(source, target, constants.COPYFILE_EXCL);
      // copyFile keeps the source's mode (0555 in the image): set ours by path.
      const executable = ((await stat(source)).mode & 0o111) !== 0;
      await chmod(target, executable ? LAUNCHER_MODE : DATA_MODE);
      await syncFile(target);
    } else {
      throw new Error(`Cannot install "${source}": not a regular file or directory`);
    }
  }
}

/** Points `link` at `target` by renaming a new symlink over it (atomic for readers). */
async function switchLink(link: string, target: string): Promise<void> {
  const existing = await lstat(link).catch(() => undefined);
  // A real directory (not ours) cannot be renamed over: remove it first.
  if (existing?.isDirectory()) await rm(link, { recursive: true, force: true });
  const temporary = `${link}.${randomBytes(6).toString("hex")}.tmp`;
  await symlink(target, temporary);
  try {
    await rename(temporary, link);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/**
 * Installs the launcher directory `source` into `destination` (created when missing): afterwards
 * `<destination>/piggy-env` and `<destination>/lib` lead to a complete copy of it.
 *
 * @param source the launcher directory: `piggy-env` and `lib/`
 * @param destination the shared volume
 * @returns the installed launcher's path
 * @throws {Error} with the cause when any step fails (the partial copy is removed)
 */
export async function installLauncher(source: string, destination: string): Promise<string> {
  const target = join(destination, LAUNCHER_FILE_NAME);
  const version = `${VERSION_PREFIX}${randomBytes(6).toString("hex")}`;
  const versionDir = join(destination, version);
  try {
    await checkSource(source);
    await mkdir(destination, { recursive: true });
    await copyTree(source, versionDir);
    // Relative targets: the links stay right wherever the volume is mounted.
    await switchLink(join(destination, LIBRARY_DIR_NAME), join(version, LIBRARY_DIR_NAME));
    await switchLink(target, join(version, LAUNCHER_FILE_NAME));
  } catch (error) {
    await rm(versionDir, { recursive: true, force: true }).catch(() => undefined);
    const detail = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot install "${source}" to "${destination}": ${detail}`, { cause: error });
  }
  // Earlier versions and leftovers of interrupted runs.
  for (const name of await readdir(destination)) {
    const stale = (name.startsWith(VERSION_PREFIX) && name !== version) ||
      (name.endsWith(".tmp") &&
        (name.startsWith(`${LAUNCHER_FILE_NAME}.`) || name.startsWith(`${LIBRARY_DIR_NAME}.`)));
    if (stale) await rm(join(destination, name), { recursive: true, force: true });
  }
  return target;
}
