/**
 * piggy-env entry point: runs `runPiggyEnv` with this process's runtime (FFI `execve` on Deno).
 *
 * Runs with `--no-config` (cli/permissions.ts): its module graph is relative files and `node:`
 * built-ins only, so a start resolves no npm package. Standalone mode imports the bundled AWS
 * source (`gen/standalone_source.js`, built by `deno task bundle`; `deno compile` embeds it).
 *
 * @module
 */

import type { Logger } from "../src/log.ts";
import { runPiggyEnv } from "../src/launcher/run.ts";
import { exitProcess, programArgs } from "../src/runtime/process.ts";
import type { SecretSource } from "../src/secrets/source.ts";
import { launcherDeps } from "./launcher_deps.ts";

/** The bundled standalone source, beside the entry point in the repository and in the binary. */
const STANDALONE_BUNDLE = new URL("../gen/standalone_source.js", import.meta.url);

async function createStandaloneSource(logger: Logger): Promise<SecretSource> {
  let module: { createStandaloneSource?: unknown };
  try {
    // A computed specifier: `deno run` does not resolve it (nor the SDK) before it is needed.
    module = await import(STANDALONE_BUNDLE.href);
  } catch (error) {
    throw new TypeError(
      `Cannot load the standalone AWS source "${STANDALONE_BUNDLE.pathname}": build it with \`deno task bundle\``,
      { cause: error },
    );
  }
  if (typeof module.createStandaloneSource !== "function") {
    throw new TypeError(
      `Cannot load the standalone AWS source "${STANDALONE_BUNDLE.pathname}": it exports no createStandaloneSource`,
    );
  }
  return module.createStandaloneSource(logger) as SecretSource;
}

exitProcess(await runPiggyEnv(programArgs(), launcherDeps(createStandaloneSource)));
