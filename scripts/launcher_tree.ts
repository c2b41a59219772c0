/**
 * The self-contained launcher directory that `piggy-env install` copies into the pod's volume:
 *
 *   piggy-env            the binary, ELF interpreter /piggy/lib/<loader>, rpath $ORIGIN/lib
 *   lib/<loader>         glibc's dynamic loader (ld-linux-x86-64.so.2, ld-linux-aarch64.so.1)
 *   lib/lib*.so.*        the libraries the binary needs (libc, libm, libdl, libpthread, librt,
 *                        libgcc_s for Deno 2.8)
 *
 * so the launcher runs in images without glibc (scratch, distroless/static, Alpine/musl,
 * busybox). The interpreter path must be absolute (the kernel does not expand `$ORIGIN` there),
 * hence the install directory `/piggy`. The rpath is a DT_RPATH (searched before
 * LD_LIBRARY_PATH), so an app's LD_LIBRARY_PATH cannot swap our libraries. Nothing sets `LD_*`: the
 * app, started with `execve`, uses its own loader and never sees ours.
 *
 * Uses Debian's `patchelf`. scripts/compile.ts patches denort before `deno compile` (so the
 * embedded program is written into the patched binary, untouched); the tests patch the `deno`
 * binary itself, which has the same dynamic dependencies.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import process from "node:process";
import { chmodSync, copyFileSync, mkdirSync, realpathSync } from "node:fs";
import { basename, join } from "node:path";
import { INSTALL_DIR } from "../src/constants.ts";
import { LAUNCHER_FILE_NAME, LIBRARY_DIR_NAME } from "../src/launcher/install.ts";

/** Where the patched binary finds its loader at run time (the pod's volume). */
export const LIBRARY_PATH = `${INSTALL_DIR}/${LIBRARY_DIR_NAME}`;

/** The rpath of the patched binary. */
export const RPATH = `$ORIGIN/${LIBRARY_DIR_NAME}`;

/** Debian's multiarch library directory for a `deno compile` target (or this machine). */
export function libraryDirFor(target?: string): string {
  const arch = target ? target.split("-")[0] : (process.arch === "arm64" ? "aarch64" : "x86_64");
  if (arch !== "x86_64" && arch !== "aarch64") {
    throw new TypeError(
      `Cannot build the launcher directory for "${target}": Linux x86_64 or aarch64 only`,
    );
  }
  return `/lib/${arch}-linux-gnu`;
}

function patchelf(args: string[]): string {
  const result = spawnSync("patchelf", args, { encoding: "utf8" });
  if (result.error || result.status !== 0) {
    throw new Error(
      `Cannot run patchelf ${args.join(" ")}: ${
        result.error?.message ?? result.stderr.trim()
      } (Debian: apt-get install patchelf)`,
    );
  }
  return result.stdout.trim();
}

/** The ELF interpreter and DT_NEEDED libraries of `binary`. */
export function dynamicDependencies(binary: string): { interpreter: string; needed: string[] } {
  return {
    interpreter: patchelf(["--print-interpreter", binary]),
    needed: patchelf(["--print-needed", binary]).split("\n").filter(Boolean),
  };
}

/**
 * Points `binary`'s interpreter at `/piggy/lib/<its loader>` and its rpath at `$ORIGIN/lib`, in
 * place.
 *
 * @returns the file names that must sit in `lib/`: the loader and the needed libraries
 */
export function patchForVolume(binary: string): string[] {
  const { interpreter, needed } = dynamicDependencies(binary);
  const loader = basename(interpreter);
  patchelf([
    "--set-interpreter",
    `${LIBRARY_PATH}/${loader}`,
    "--force-rpath",
    "--set-rpath",
    RPATH,
    binary,
  ]);
  return [loader, ...needed.filter((name) => name !== loader)];
}

/**
 * Copies `names` from `libraryDir` (following symlinks) into `output/lib/`: the loader executable,
 * libraries read-only for others.
 */
export function copyLibraries(names: readonly string[], libraryDir: string, output: string): void {
  const libDir = join(output, LIBRARY_DIR_NAME);
  mkdirSync(libDir, { recursive: true });
  for (const name of names) {
    let source: string;
    try {
      source = realpathSync(join(libraryDir, name));
    } catch (error) {
      throw new Error(`Cannot find "${name}" in "${libraryDir}"`, { cause: error });
    }
    const target = join(libDir, name);
    copyFileSync(source, target);
    chmodSync(target, name.startsWith("ld-") ? 0o755 : 0o644);
  }
}

/**
 * Builds the launcher directory in `output` from a ready binary (the tests use the `deno` binary
 * itself; an image build patches denort before compiling instead, see scripts/compile.ts).
 *
 * @returns the path of the patched launcher
 */
export function buildLauncherTree(
  binary: string,
  output: string,
  libraryDir: string = libraryDirFor(),
): string {
  mkdirSync(output, { recursive: true });
  const launcher = join(output, LAUNCHER_FILE_NAME);
  copyFileSync(binary, launcher);
  chmodSync(launcher, 0o755);
  copyLibraries(patchForVolume(launcher), libraryDir, output);
  return launcher;
}
