// deno-lint-ignore-file no-console
/**
 * Bundles piggy-env's standalone AWS source (cli/standalone_source.ts and the AWS SDK it imports)
 * into one ES module, `gen/standalone_source.js`, that imports nothing but `node:` built-ins.
 * piggy-env runs with `--no-config` and imports this file only in standalone mode, so proxy mode
 * resolves no npm package, and standalone mode loads one module instead of ~400.
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
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root. */
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The bundle's entry point. */
export const STANDALONE_ENTRY = "cli/standalone_source.ts";

/** Where the bundle goes, relative to the repository root (cli/piggy_env.ts imports it). */
export const STANDALONE_BUNDLE = "gen/standalone_source.js";

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
export function bundleArgs(output: string, flags: readonly string[] = []): string[] {
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
    STANDALONE_ENTRY,
  ];
}

/**
 * Builds the bundle with `deno` (this process's executable by default).
 *
 * @returns the bundle's absolute path
 * @throws {Error} with deno's output when bundling fails
 */
export async function bundleStandaloneSource(
  deno: string = Deno.execPath(),
  flags: readonly string[] = [],
): Promise<string> {
  const target = join(ROOT, STANDALONE_BUNDLE);
  const temporary = `${target}.${randomBytes(6).toString("hex")}.tmp.js`;
  await mkdir(dirname(target), { recursive: true });
  const bundle = () =>
    new Deno.Command(deno, {
      args: bundleArgs(temporary, flags),
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
  try {
    if (!result.success) {
      throw new Error(
        `Cannot bundle ${STANDALONE_ENTRY}: deno bundle exited with ${result.code}\n${
          new TextDecoder().decode(result.stderr)
        }`,
      );
    }
    const fresh = Buffer.concat([Buffer.from(BUNDLE_PREAMBLE), await readFile(temporary)]);
    const current = await readFile(target).catch(() => undefined);
    if (current?.equals(fresh)) return target;
    await writeFile(temporary, fresh);
    await rename(temporary, target);
    return target;
  } finally {
    await rm(temporary, { force: true });
  }
}

if (import.meta.main) {
  try {
    console.error(`Bundled ${STANDALONE_ENTRY} into ${await bundleStandaloneSource()}`);
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(1);
  }
}
