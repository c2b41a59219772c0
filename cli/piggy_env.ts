/**
 * piggy-env entry point: wires the runtime (env, files, FFI exec) into `runPiggyEnv`.
 *
 * Proxy mode never loads the AWS SDK: the standalone source is imported on first use.
 *
 * @module
 */

import { runPiggyEnv } from "../src/launcher/run.ts";
import { environmentEntries } from "../src/runtime/env.ts";
import { execCommand } from "../src/runtime/exec.ts";
import { readTextFile } from "../src/runtime/files.ts";
import {
  executablePath,
  exitProcess,
  programArgs,
  sleep,
  writeStderrLine,
  writeStdoutLine,
} from "../src/runtime/process.ts";

const env = environmentEntries();
const searchPath = env.find(([name]) => name === "PATH")?.[1];

const code = await runPiggyEnv(programArgs(), {
  env,
  execPath: executablePath(),
  readTextFile,
  sleep,
  exec: (command, childEnv, logger) => execCommand(command, childEnv, { logger, searchPath }),
  createSecretSource: async (logger) => {
    const { AwsSecretSource } = await import("../src/secrets/aws_source.ts");
    return new AwsSecretSource({ logger });
  },
  writeStdout: writeStdoutLine,
  writeStderr: writeStderrLine,
});
exitProcess(code);
