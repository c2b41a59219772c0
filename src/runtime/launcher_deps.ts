/**
 * The runtime side of piggy-env, shared by its Deno and Node entry points: the process
 * environment, files, clock, FFI `execve` (or spawn on Node) and the standalone AWS source.
 *
 * @module
 */

import type { PiggyEnvDeps } from "../launcher/run.ts";
import { environmentEntries } from "./env.ts";
import { execCommand } from "./exec.ts";
import { readTextFile } from "./files.ts";
import { executablePath, sleep, writeStderrLine, writeStdoutLine } from "./process.ts";

/** Dependencies of `runPiggyEnv` for this process. */
export function launcherDeps(): PiggyEnvDeps {
  const env = environmentEntries();
  const searchPath = env.find(([name]) => name === "PATH")?.[1];
  return {
    env,
    execPath: executablePath(),
    readTextFile,
    sleep,
    exec: (command, childEnv, logger) => execCommand(command, childEnv, { logger, searchPath }),
    // Proxy mode never loads the AWS SDK: the standalone source is imported on first use.
    createSecretSource: async (logger) => {
      const { AwsSecretSource } = await import("../secrets/aws_source.ts");
      return new AwsSecretSource({ logger });
    },
    writeStdout: writeStdoutLine,
    writeStderr: writeStderrLine,
  };
}
