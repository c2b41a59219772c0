// deno-lint-ignore-file no-console
/**
 * Compiles piggy-webhooks or piggy-env into one self-contained binary with `deno compile`, with the
 * permissions of cli/permissions.ts baked in (what is tested is what ships).
 *
 *   deno run -A scripts/compile.ts webhook|env [--target T] [--output P] [--entry F] [--print]
 *   deno task compile:webhook   → bin/piggy-webhooks
 *   deno task compile:env       → bin/piggy-env
 *
 * `deno compile` downloads the Deno runtime (denort) it embeds the program into. Offline, point
 * `DENORT_BIN` at a local denort of the same Deno version and target: deno compile reads that
 * variable itself, and this script passes its environment through.
 *
 * `env` also builds the self-contained launcher directory that `piggy-env install` copies into
 * pods (scripts/launcher_tree.ts): it patches a copy of denort (interpreter `/piggy/lib/<loader>`,
 * rpath `$ORIGIN/lib`; Debian's patchelf) and compiles again into it, so the embedded program is
 * written after the patch and stays intact, then copies the loader and libraries from the
 * target's multiarch directory (`--libs`, default `/lib/<arch>-linux-gnu`; for arm64 on amd64,
 * `dpkg --add-architecture arm64 && apt-get install libc6:arm64 libgcc-s1:arm64`). denort is
 * DENORT_BIN, or the one `deno compile` downloaded into DENO_DIR. Before compiling, `env` bundles
 * the standalone AWS sources (embedded with `--include`) and the launcher (`gen/piggy_env.js`, the
 * entry compiled; scripts/bundle_launcher.ts), and type checks cli/piggy_env.ts with deno.json (the
 * launcher itself compiles with `--no-config`, see scripts/permissions.ts).
 *
 * package.json is ignored (`DENO_NO_PACKAGE_JSON=1`): the runtime dependencies are all in the
 * deno.json import map, and package.json's devDependencies (the pinned Deno binary package and its
 * shim, TypeScript, test-only models) have no place in the binaries.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bundleLauncher,
  bundleStandaloneSource,
  LAUNCHER_BUNDLE,
  LAUNCHER_BUNDLES,
  LAUNCHER_SOURCE,
} from "./bundle_launcher.ts";
import { copyLibraries, libraryDirFor, patchForVolume } from "./launcher_tree.ts";
import { LAUNCHER_FLAGS, WEBHOOK_FLAGS } from "../cli/permissions.ts";

/** The two binaries. */
export type Binary = "webhook" | "env";

/** Entry point, default output (relative to the repository root) and permissions of a binary. */
export interface BinarySpec {
  entry: string;
  output: string;
  flags: readonly string[];
}

/** What `deno compile` builds for each binary. */
export const BINARIES: Readonly<Record<Binary, BinarySpec>> = {
  webhook: { entry: "cli/webhook.ts", output: "bin/piggy-webhooks", flags: WEBHOOK_FLAGS },
  env: {
    entry: LAUNCHER_BUNDLE,
    output: "bin/piggy-env",
    // Type checked separately with deno.json (--no-config cannot resolve the type imports).
    flags: [
      ...LAUNCHER_FLAGS,
      "--no-check",
      ...LAUNCHER_BUNDLES.flatMap((bundle) => ["--include", bundle]),
    ],
  },
};

/** Where `env` writes the launcher directory (binary + lib/) by default. */
export const DEFAULT_DIST = "bin/piggy-env-dist";

/** Environment added to `deno compile`'s (on top of this process's, DENORT_BIN included). */
export const COMPILE_ENV: Readonly<Record<string, string>> = { DENO_NO_PACKAGE_JSON: "1" };

/** Targets `deno compile --target` accepts. */
export const TARGETS: readonly string[] = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-pc-windows-msvc",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
];

/** Options of one compilation. */
export interface CompileOptions {
  /** `--target` triple; @default the host's */
  target?: string;
  /** Output path; @default the binary's `output` */
  output?: string;
  /** Entry point; @default the binary's `entry` */
  entry?: string;
  /** `env` only: the launcher directory to build; @default {@link DEFAULT_DIST} */
  dist?: string;
  /** `env` only: where the loader and libraries are copied from; @default `/lib/<arch>-linux-gnu` */
  libs?: string;
}

/** A parsed command line. */
export interface CompileRequest {
  binary: Binary;
  options: CompileOptions;
  /** Print `{ env, command }` as JSON instead of running the command. */
  print: boolean;
}

const USAGE =
  "Usage: deno run -A scripts/compile.ts webhook|env [--target T] [--output P] [--entry F] [--dist D] [--libs D] [--print]";

const OPTION_NAMES: Readonly<Record<string, keyof CompileOptions>> = {
  "--target": "target",
  "--output": "output",
  "--entry": "entry",
  "--dist": "dist",
  "--libs": "libs",
};

/**
 * Parses the script's arguments.
 *
 * @throws TypeError on a usage error (message includes the usage line)
 */
export function parseCompileArgs(argv: readonly string[]): CompileRequest {
  const [binary, ...rest] = argv;
  if (binary !== "webhook" && binary !== "env") {
    throw new TypeError(`Cannot compile "${binary ?? ""}": expected webhook or env\n${USAGE}`);
  }
  const options: CompileOptions = {};
  let print = false;
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i] as string;
    if (flag === "--print") {
      print = true;
      continue;
    }
    const [name, inline] = flag.includes("=") ? flag.split(/=(.*)/s, 2) : [flag, undefined];
    const option = name === undefined ? undefined : OPTION_NAMES[name];
    if (option === undefined) {
      throw new TypeError(`Cannot compile: unknown option "${flag}"\n${USAGE}`);
    }
    const value = inline ?? rest[++i];
    if (!value) throw new TypeError(`Cannot compile: "${name}" needs a value\n${USAGE}`);
    if (name === "--target") {
      if (!TARGETS.includes(value)) {
        throw new TypeError(
          `Cannot compile: unknown target "${value}", expected one of ${TARGETS}`,
        );
      }
    }
    options[option] = value;
  }
  if (binary === "webhook" && (options.dist || options.libs)) {
    throw new TypeError(`Cannot compile webhook: --dist and --libs are for env\n${USAGE}`);
  }
  return { binary, options, print };
}

/**
 * The `deno` arguments that compile `binary`: its flags (permissions; for env also `--no-config`,
 * `--no-check` after the separate type check, and the bundled standalone source), the output and
 * target, then the entry point. `--node-modules-dir=none` takes the npm packages from deno.lock
 * (as the Dockerfile does), not from the `npm ci` tree that development uses
 * (`nodeModulesDir: "manual"` in deno.json), which holds dev tools the binaries must not embed.
 */
export function compileArgs(binary: Binary, options: CompileOptions = {}): string[] {
  const spec = BINARIES[binary];
  return [
    "compile",
    "--node-modules-dir=none",
    ...spec.flags,
    "--output",
    options.output ?? spec.output,
    ...(options.target ? ["--target", options.target] : []),
    options.entry ?? spec.entry,
  ];
}

/**
 * The environment of `deno compile`: this process's, DENORT_BIN included, plus {@link COMPILE_ENV}.
 * An empty DENORT_BIN (a Docker build argument left unset) is dropped: deno compile would take it
 * as a path.
 */
export function compileEnv(parent: Readonly<Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = { ...parent, ...COMPILE_ENV };
  if (env.DENORT_BIN === "") delete env.DENORT_BIN;
  return env;
}

/**
 * Variables `deno compile` would write into the binary as its trust settings (the CA store and
 * the extra CAs): a build machine's CA would then be trusted by every compiled Piggy, and
 * piggy-env, which empties its store to trust only the injected CA, could not drop it.
 */
export const EMBEDDED_TRUST_VARIABLES: readonly string[] = ["DENO_CERT", "DENO_TLS_CA_STORE"];

/** The environment of one `deno <args>` step: `compile` runs without the trust variables. */
export function stepEnv(
  args: readonly string[],
  env: Readonly<Record<string, string>>,
): Record<string, string> {
  const step = { ...env };
  if (args[0] === "compile") { for (const name of EMBEDDED_TRUST_VARIABLES) delete step[name]; }
  return step;
}

/** Runs `deno <args>` in the repository root; resolves with its exit code. */
async function runDeno(args: string[], env: Record<string, string>): Promise<number> {
  const deno = env.DENORT_BIN ? ` (DENORT_BIN=${env.DENORT_BIN})` : "";
  console.error(`deno ${args.join(" ")}${deno}`);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: stepEnv(args, env),
    clearEnv: true,
    cwd: ROOT,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return (await child.status).code;
}

const ROOT = new URL("..", import.meta.url);

/**
 * The denort that `deno compile` embeds the program into: DENORT_BIN, or the archive `deno compile`
 * downloaded into DENO_DIR (`dl/release/v<version>/denort-<target>.zip`), extracted into `dir`.
 *
 * @throws {Error} naming DENORT_BIN when neither is there
 */
export function findDenort(
  env: Readonly<Record<string, string>>,
  target: string,
  dir: string,
): string {
  if (env.DENORT_BIN) return env.DENORT_BIN;
  const info = spawnSync(Deno.execPath(), ["info", "--json"], { encoding: "utf8", env });
  const denoDir = (JSON.parse(info.stdout || "{}") as { denoDir?: string }).denoDir ?? "";
  const archive = join(denoDir, "dl", "release", `v${Deno.version.deno}`, `denort-${target}.zip`);
  if (!existsSync(archive)) {
    throw new Error(
      `Cannot find denort for ${target} ("${archive}" does not exist): set DENORT_BIN to a denort ` +
        `of Deno ${Deno.version.deno} for that target`,
    );
  }
  const unzip = spawnSync("unzip", ["-p", archive, "denort"], { maxBuffer: 1 << 30 });
  if (unzip.status !== 0 || !unzip.stdout?.length) {
    throw new Error(`Cannot extract denort from "${archive}" (needs unzip)`);
  }
  const denort = join(dir, "denort");
  writeFileSync(denort, unzip.stdout, { mode: 0o755 });
  return denort;
}

/** The host's `deno compile --target` triple (Linux only: the images are Linux). */
function hostTarget(): string {
  return Deno.build.arch === "aarch64" ? "aarch64-unknown-linux-gnu" : "x86_64-unknown-linux-gnu";
}

/**
 * `env`: bundle the standalone source and the launcher, type check, compile the image's runnable
 * copy, then the launcher directory from a patched denort.
 */
async function compileLauncher(
  options: CompileOptions,
  env: Record<string, string>,
): Promise<number> {
  // npm packages from deno.lock, as for the compile (see compileArgs).
  const lockOnly = ["--node-modules-dir=none"];
  console.error(`bundled ${await bundleStandaloneSource(Deno.execPath(), lockOnly)}`);
  console.error(`bundled ${await bundleLauncher(Deno.execPath())}`);
  // The bundle is plain JavaScript: type check its source.
  let code = await runDeno(["check", ...lockOnly, options.entry ?? LAUNCHER_SOURCE], env);
  if (code !== 0) return code;
  code = await runDeno(compileArgs("env", options), env);
  if (code !== 0) return code;

  const target = options.target ?? hostTarget();
  const dist = options.dist ?? DEFAULT_DIST;
  const work = mkdtempSync(join(tmpdir(), "piggy-denort-"));
  try {
    const patched = join(work, "denort-patched");
    copyFileSync(findDenort(env, target, work), patched);
    const libraries = patchForVolume(patched);
    rmSync(new URL(dist, ROOT), { recursive: true, force: true });
    const distUrl = new URL(`${dist.replace(/\/$/, "")}/`, ROOT);
    code = await runDeno(
      compileArgs("env", { ...options, output: new URL("piggy-env", distUrl).pathname }),
      { ...env, DENORT_BIN: patched },
    );
    if (code !== 0) return code;
    copyLibraries(libraries, options.libs ?? libraryDirFor(target), distUrl.pathname);
    console.error(`launcher directory: ${dist} (piggy-env, lib/${libraries.join(" lib/")})`);
    return 0;
  } catch (error) {
    console.error((error as Error).message);
    return 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<number> {
  let request: CompileRequest;
  try {
    request = parseCompileArgs(argv);
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  const args = compileArgs(request.binary, request.options);
  if (request.print) {
    // env: the entry is the bundle compileLauncher() builds from `source`.
    const dist = request.binary === "env"
      ? { dist: request.options.dist ?? DEFAULT_DIST, source: LAUNCHER_SOURCE }
      : {};
    console.log(JSON.stringify({ env: COMPILE_ENV, command: [Deno.execPath(), ...args], ...dist }));
    return 0;
  }
  const entry = args.at(-1) as string;
  try {
    // The launcher bundle does not exist before compileLauncher() builds it.
    if (entry !== LAUNCHER_BUNDLE) await Deno.stat(new URL(entry, ROOT));
  } catch {
    console.error(`Cannot compile ${request.binary}: entry point "${entry}" does not exist`);
    return 1;
  }
  const env = compileEnv(Deno.env.toObject());
  if (request.binary === "env") return await compileLauncher(request.options, env);
  return await runDeno(args, env);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
