/**
 * piggy-env's launcher, imported by its entry point (cli/piggy_env.ts) once the TLS warm-up has
 * started: runs `runPiggyEnv` with this process's runtime (FFI `execve` on Deno).
 *
 * Runs with `--no-config` (cli/permissions.ts): its module graph is relative files and `node:`
 * built-ins only, so a start resolves no npm package. Standalone mode imports the bundled light
 * AWS source (`gen/standalone_light.js`), which imports the bundled SDK source
 * (`gen/standalone_source.js`) only when the environment needs the SDK (both built by
 * `deno task bundle`; `deno compile` embeds them).
 *
 * @module
 */

import type { Logger } from "../src/log.ts";
import type { StandaloneSourceSettings } from "../src/launcher/fetch.ts";
import { runPiggyEnv } from "../src/launcher/run.ts";
import { requestText } from "../src/runtime/http_post.ts";
import { exitProcess, programArgs } from "../src/runtime/process.ts";
import type { SecretSource } from "../src/secrets/source.ts";
import { launcherDeps } from "./launcher_deps.ts";

/** The bundled standalone sources, beside the entry point in the repository and in the binary. */
const LIGHT_BUNDLE = new URL("../gen/standalone_light.js", import.meta.url);
const SDK_BUNDLE = new URL("../gen/standalone_source.js", import.meta.url);

/** The light bundle's factory (cli/standalone_light.ts). */
type LightFactory = (
  logger: Logger,
  env: (name: string) => string | undefined,
  loadSdk: (logger: Logger) => Promise<SecretSource>,
  settings: StandaloneSourceSettings,
  send: typeof requestText,
) => Promise<SecretSource>;

/** The SDK bundle's factory (cli/standalone_source.ts). */
type SdkFactory = (logger: Logger) => SecretSource;

/** Imports a bundle and returns its `createStandaloneSource` (typed by the caller). */
async function bundleFactory<T>(bundle: URL): Promise<T> {
  let module: { createStandaloneSource?: unknown };
  try {
    // A computed specifier: `deno run` does not resolve it (nor the SDK) before it is needed.
    module = await import(bundle.href);
  } catch (error) {
    throw new TypeError(
      `Cannot load the standalone AWS source "${bundle.pathname}": build it with \`deno task bundle\``,
      { cause: error },
    );
  }
  if (typeof module.createStandaloneSource !== "function") {
    throw new TypeError(
      `Cannot load the standalone AWS source "${bundle.pathname}": it exports no createStandaloneSource`,
    );
  }
  return module.createStandaloneSource as T;
}

async function createStandaloneSource(
  logger: Logger,
  settings: StandaloneSourceSettings,
): Promise<SecretSource> {
  const env = new Map(deps.env);
  const light = await bundleFactory<LightFactory>(LIGHT_BUNDLE);
  return await light(
    logger,
    (name) => env.get(name),
    async (sdkLogger) => (await bundleFactory<SdkFactory>(SDK_BUNDLE))(sdkLogger),
    settings,
    requestText,
  );
}

const deps = launcherDeps(createStandaloneSource);
exitProcess(await runPiggyEnv(programArgs(), deps));
