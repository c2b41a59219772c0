#!/usr/bin/env node
/**
 * piggy-env for Node (npm `bin`): the same code path as `cli/piggy_env.ts`. Node has no `execve`,
 * so `src/runtime/exec.ts` starts the command as a child, forwards signals to it and exits with its
 * code (128 + signal number when it was killed).
 *
 * `install` is refused here: it copies the running executable, which on Node is the `node` binary,
 * not a launcher. Containers get the compiled binary from the piggy-env image instead.
 *
 * @module
 */

import { runPiggyEnv } from "../../src/launcher/run.ts";
import { exitProcess, programArgs } from "../../src/runtime/process.ts";
import { launcherDeps } from "../launcher_deps.ts";

const deps = launcherDeps(async (logger, settings) => {
  // Standalone mode only: the light AWS client, or the SDK (resolved from node_modules on first
  // use) when the environment needs it.
  const { createStandaloneAwsSource } = await import("../../src/secrets/aws_lite/choose.ts");
  const { pathExists, readTextFile } = await import("../../src/runtime/files.ts");
  const { requestText } = await import("../../src/runtime/http_post.ts");
  const env = new Map(deps.env);
  return await createStandaloneAwsSource(logger, {
    env: (name) => env.get(name),
    exists: pathExists,
    readTextFile,
    maxAnswerBytes: settings.awsMaxAnswerBytes,
    send: requestText,
    loadSdk: async (sdkLogger) => {
      const { AwsSecretSource } = await import("../../src/secrets/aws_source.ts");
      return new AwsSecretSource({ logger: sdkLogger });
    },
  });
});
const code = await runPiggyEnv(programArgs(), {
  ...deps,
  install: (_source, destination) =>
    Promise.reject(
      new Error(
        `Cannot install to "${destination}": the Node launcher is a script, ` +
          "use the compiled piggy-env binary",
      ),
    ),
});
exitProcess(code);
