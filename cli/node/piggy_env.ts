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
import { environmentEntries } from "../../src/runtime/env.ts";
import { execCommand } from "../../src/runtime/exec.ts";
import { readTextFile } from "../../src/runtime/files.ts";
import {
  executablePath,
  exitProcess,
  programArgs,
  sleep,
  writeStderrLine,
  writeStdoutLine,
} from "../../src/runtime/process.ts";

const env = environmentEntries();
const searchPath = env.find(([name]) => name === "PATH")?.[1];

const code = await runPiggyEnv(programArgs(), {
  env,
  execPath: executablePath(),
  readTextFile,
  sleep,
  exec: (command, childEnv, logger) => execCommand(command, childEnv, { logger, searchPath }),
  createSecretSource: async () => {
    const { AwsSecretSource } = await import("../../src/secrets/aws_source.ts");
    return new AwsSecretSource();
  },
  install: (_source, destination) =>
    Promise.reject(
      new Error(
        `Cannot install to "${destination}": the Node launcher is a script, ` +
          "use the compiled piggy-env binary",
      ),
    ),
  writeStdout: writeStdoutLine,
  writeStderr: writeStderrLine,
});
exitProcess(code);
