/**
 * The runtime side of piggy-env, shared by its Deno and Node entry points: the process
 * environment, files, clock and FFI `execve` (or spawn on Node). Each entry point says how the
 * standalone AWS source is loaded: it is the only part that needs the AWS SDK, and proxy mode
 * never loads it.
 *
 * @module
 */

import type { PiggyEnvDeps } from "../src/launcher/run.ts";
import { environmentEntries } from "../src/runtime/env.ts";
import { execCommand, preloadLibc } from "../src/runtime/exec.ts";
import { readTextFile } from "../src/runtime/files.ts";
import { executablePath, sleep, writeStderrLine, writeStdoutLine } from "../src/runtime/process.ts";
import { trustOnlyGivenCa } from "../src/runtime/tls_trust.ts";

/**
 * Dependencies of `runPiggyEnv` for this process.
 *
 * @param createSecretSource loads and creates the standalone AWS source (called in standalone mode
 *   only, once)
 */
export function launcherDeps(
  createSecretSource: PiggyEnvDeps["createSecretSource"],
): PiggyEnvDeps {
  const env = environmentEntries();
  const searchPath = env.find(([name]) => name === "PATH")?.[1];
  return {
    env,
    execPath: executablePath(),
    readTextFile,
    sleep,
    exec: (command, childEnv, logger) => execCommand(command, childEnv, { logger, searchPath }),
    createSecretSource,
    writeStdout: writeStdoutLine,
    writeStderr: writeStderrLine,
    trustOnlyGivenCa,
    prepareExec: preloadLibc,
  };
}
