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
 * package.json is ignored (`DENO_NO_PACKAGE_JSON=1`): the runtime dependencies are all in the
 * deno.json import map, and package.json's devDependencies (the pinned Deno binary package and its
 * shim, TypeScript, test-only models) have no place in the binaries.
 *
 * @module
 */

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
  env: { entry: "cli/piggy_env.ts", output: "bin/piggy-env", flags: LAUNCHER_FLAGS },
};

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
}

/** A parsed command line. */
export interface CompileRequest {
  binary: Binary;
  options: CompileOptions;
  /** Print `{ env, command }` as JSON instead of running the command. */
  print: boolean;
}

const USAGE =
  "Usage: deno run -A scripts/compile.ts webhook|env [--target T] [--output P] [--entry F] [--print]";

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
    if (name !== "--target" && name !== "--output" && name !== "--entry") {
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
      options.target = value;
    } else if (name === "--output") {
      options.output = value;
    } else {
      options.entry = value;
    }
  }
  return { binary, options, print };
}

/**
 * The `deno` arguments that compile `binary`: its permission flags, type checking on (the
 * default), the output and target, then the entry point. `--node-modules-dir=none` takes the npm
 * packages from deno.lock (as the Dockerfile does), not from the `npm ci` tree that development
 * uses (`nodeModulesDir: "manual"` in deno.json), which holds dev tools the binaries must not embed.
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

async function main(argv: string[]): Promise<number> {
  let request: CompileRequest;
  try {
    request = parseCompileArgs(argv);
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  const root = new URL("..", import.meta.url);
  const args = compileArgs(request.binary, request.options);
  if (request.print) {
    console.log(JSON.stringify({ env: COMPILE_ENV, command: [Deno.execPath(), ...args] }));
    return 0;
  }
  const entry = args.at(-1) as string;
  try {
    await Deno.stat(new URL(entry, root));
  } catch {
    console.error(`Cannot compile ${request.binary}: entry point "${entry}" does not exist`);
    return 1;
  }
  const env = compileEnv(Deno.env.toObject());
  console.error(`deno ${args.join(" ")}${env.DENORT_BIN ? ` (DENORT_BIN=${env.DENORT_BIN})` : ""}`);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env,
    clearEnv: true,
    cwd: root,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return (await child.status).code;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
