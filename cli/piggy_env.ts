/**
 * piggy-env entry point: runs `runPiggyEnv` with this process's runtime (FFI `execve` on Deno).
 *
 * @module
 */

import { runPiggyEnv } from "../src/launcher/run.ts";
import { launcherDeps } from "../src/runtime/launcher_deps.ts";
import { exitProcess, programArgs } from "../src/runtime/process.ts";

exitProcess(await runPiggyEnv(programArgs(), launcherDeps()));
