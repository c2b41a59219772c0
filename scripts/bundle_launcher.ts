// deno-lint-ignore-file no-console
/**
 * Bundles piggy-env's standalone AWS sources into ES modules under `gen/`:
 * - `gen/standalone_light.js` (cli/standalone_light.ts): the light AWS client (no SDK, no imports)
 *   and the rule that chooses between it and the SDK; piggy-env imports it in standalone mode;
 * - `gen/standalone_source.js` (cli/standalone_source.ts and the AWS SDK it imports), importing
 *   nothing but `node:` built-ins; the light bundle's choice imports it when the SDK is needed.
 * piggy-env runs with `--no-config`, so proxy mode resolves no npm package, and standalone mode
 * loads one module (two when the SDK is needed) instead of ~400.
 * The launcher itself (cli/piggy_env.ts and the ~30 modules of its proxy path) goes into
 * `gen/piggy_env.js`, a tiny entry that starts the TLS warm-up and then imports the launcher's
 * chunk (cli/piggy_env_main.ts) and the chunk it shares with what it imports lazily (install, the
 * Node fallbacks; chunks of their own, still loaded only when needed): the compiled binary and the
 * benchmark run this entry, so a cold start loads a few small modules instead of ~30, and the TLS
 * library's seeding overlaps their compilation.
 *
 *   deno task bundle        (scripts/compile.ts env runs it before compiling; tests run it too)
 *
 * Dependencies come from deno.lock (`--frozen`). The file is replaced atomically and only when its
 * content changes, so concurrent runs (parallel tests) never see a partial file.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import { Buffer } from "node:buffer";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root. */
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The SDK bundle's entry point. */
export const STANDALONE_ENTRY = "cli/standalone_source.ts";

/** Where the SDK bundle goes, relative to the repository root (the light bundle imports it). */
export const STANDALONE_BUNDLE = "gen/standalone_source.js";

/** The light bundle's entry point: the AWS client without the SDK, and the choice between them. */
export const LIGHT_ENTRY = "cli/standalone_light.ts";

/** Where the light bundle goes (cli/piggy_env.ts imports it in standalone mode). */
export const LIGHT_BUNDLE = "gen/standalone_light.js";

/** Every bundle piggy-env may import (`deno compile` embeds them). */
export const LAUNCHER_BUNDLES: readonly string[] = [LIGHT_BUNDLE, STANDALONE_BUNDLE];

/** The launcher's entry point in the repository (`deno task piggy-env`, the process tests). */
export const LAUNCHER_SOURCE = "cli/piggy_env.ts";

/**
 * The bundled launcher, relative to the repository root: what `deno compile` embeds and the
 * benchmark runs. Its chunks sit beside it in `gen/`, and so do the standalone bundles, which it
 * finds at the same relative URLs as cli/piggy_env.ts does (`../gen/…`).
 */
export const LAUNCHER_BUNDLE = "gen/piggy_env.js";

/**
 * Put before the bundle: CommonJS packages of the SDK `require()` Node built-ins, which an ES
 * module bundle can only do through a `require` made by `createRequire`.
 */
export const BUNDLE_PREAMBLE =
  'import { createRequire as __piggyCreateRequire } from "node:module";\n' +
  "const require = __piggyCreateRequire(import.meta.url);\n";

/**
 * The `deno` arguments that write the bundle to `output`.
 *
 * @param flags more `deno bundle` flags (scripts/compile.ts adds `--node-modules-dir=none`)
 */
export function bundleArgs(
  output: string,
  flags: readonly string[] = [],
  entry: string = STANDALONE_ENTRY,
): string[] {
  return [
    "bundle",
    ...flags,
    "--quiet",
    "--frozen",
    "--platform=deno",
    "--minify",
    "--keep-names",
    "--output",
    output,
    entry,
  ];
}

/**
 * Builds both bundles with `deno` (this process's executable by default): the light one, then the
 * SDK one.
 *
 * @returns the SDK bundle's absolute path (the light one is beside it)
 * @throws {Error} with deno's output when bundling fails
 */
export async function bundleStandaloneSource(
  deno: string = Deno.execPath(),
  flags: readonly string[] = [],
): Promise<string> {
  // The light bundle imports nothing but relative files: no `require` preamble (it would load
  // `node:module`, a part of Deno's Node layer the light path avoids).
  await bundleOne(deno, flags, LIGHT_ENTRY, LIGHT_BUNDLE, "");
  return await bundleOne(deno, flags, STANDALONE_ENTRY, STANDALONE_BUNDLE, BUNDLE_PREAMBLE);
}

async function bundleOne(
  deno: string,
  flags: readonly string[],
  entry: string,
  output: string,
  preamble: string,
): Promise<string> {
  const target = join(ROOT, output);
  const temporary = `${target}.${randomBytes(6).toString("hex")}.tmp.js`;
  await mkdir(dirname(target), { recursive: true });
  try {
    await runBundle(deno, bundleArgs(temporary, flags, entry), entry);
    const fresh = Buffer.concat([Buffer.from(preamble), await readFile(temporary)]);
    const current = await readFile(target).catch(() => undefined);
    if (current?.equals(fresh)) return target;
    await writeFile(temporary, fresh);
    await rename(temporary, target);
    return target;
  } finally {
    await rm(temporary, { force: true });
  }
}

/**
 * Runs `deno bundle` with `args` from the repository root.
 *
 * @throws {Error} with deno's output when bundling fails
 */
async function runBundle(deno: string, args: string[], entry: string): Promise<void> {
  const bundle = () =>
    new Deno.Command(deno, {
      args,
      cwd: ROOT,
      stdin: "null",
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    }).output();
  // `deno bundle` (2.8.2) now and then fails with "Prepare module load error" while other deno
  // processes fill the shared module cache: a second and third attempt then succeed.
  let result = await bundle();
  for (let attempt = 2; !result.success && attempt <= 3; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    result = await bundle();
  }
  if (!result.success) {
    throw new Error(
      `Cannot bundle ${entry}: deno bundle exited with ${result.code}\n${
        new TextDecoder().decode(result.stderr)
      }`,
    );
  }
}

/** The `deno` arguments that write the launcher bundle and its chunks into `outdir`. */
export function launcherBundleArgs(outdir: string): string[] {
  return [
    "bundle",
    "--quiet",
    "--no-config",
    "--platform=deno",
    "--code-splitting",
    "--outdir",
    outdir,
    LAUNCHER_SOURCE,
  ];
}

/**
 * Builds the launcher bundle ({@link LAUNCHER_BUNDLE} and its chunks) with `deno` (this process's
 * executable by default).
 *
 * @returns the entry's absolute path
 * @throws {Error} with deno's output when bundling fails
 */
export async function bundleLauncher(deno: string = Deno.execPath()): Promise<string> {
  const target = join(ROOT, LAUNCHER_BUNDLE);
  const gen = dirname(target);
  await mkdir(gen, { recursive: true });
  const work = await mkdtemp(join(gen, ".launcher-"));
  try {
    await runBundle(deno, launcherBundleArgs(work), LAUNCHER_SOURCE);
    const entry = basename(target);
    const files = await readdir(work);
    if (!files.includes(entry)) throw new Error(`Cannot bundle ${LAUNCHER_SOURCE}: no ${entry}`);
    // Chunks first (their names hold a hash of their content), the entry last, each renamed into
    // place: a launcher starting meanwhile loads the previous entry with its chunks (still there)
    // or the new one with its own.
    for (const name of files.filter((name) => name !== entry)) {
      await rename(join(work, name), join(gen, name));
    }
    await rename(join(work, entry), target);
    return target;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  try {
    const sdk = await bundleStandaloneSource();
    console.error(`Bundled ${LIGHT_ENTRY} and ${STANDALONE_ENTRY} into ${dirname(sdk)}`);
    console.error(`Bundled ${LAUNCHER_SOURCE} into ${await bundleLauncher()}`);
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(1);
  }
}
