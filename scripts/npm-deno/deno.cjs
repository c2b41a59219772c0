#!/usr/bin/env node
// deno-lint-ignore-file no-console
// Runs the pinned Deno binary from the npm package @deno/<platform> (a devDependency of the
// project), like the npm package `deno` does. We do not depend on `deno` itself: its lockfile entry
// needs every platform's package, and the registry this project builds from does not carry all of
// them for the pinned version, so `npm ci` could not install it.
"use strict";
const { spawn } = require("node:child_process");
const path = require("node:path");

const PLATFORMS = {
  "linux x64": "@deno/linux-x64-glibc",
  "linux arm64": "@deno/linux-arm64-glibc",
  "darwin x64": "@deno/darwin-x64",
  "darwin arm64": "@deno/darwin-arm64",
};
const name = PLATFORMS[`${process.platform} ${process.arch}`];
let binary;
try {
  binary = path.join(
    path.dirname(require.resolve(`${name}/package.json`)),
    "deno",
  );
} catch {
  console.error(
    `Cannot find the Deno binary for ${process.platform}/${process.arch}: install ${
      name ?? "a Deno binary"
    } (the project pins @deno/linux-x64-glibc in devDependencies)`,
  );
  process.exit(1);
}
const child = spawn(binary, process.argv.slice(2), { stdio: "inherit" });
for (
  const signal of [
    "SIGTERM",
    "SIGINT",
    "SIGHUP",
    "SIGQUIT",
    "SIGUSR1",
    "SIGUSR2",
  ]
) {
  process.on(signal, () => child.kill(signal));
}
child.on("error", (error) => {
  console.error(`Cannot run ${binary}: ${error.message}`);
  process.exit(1);
});
child.on("exit", (code, signal) => {
  process.exit(
    code ?? 128 + (require("node:os").constants.signals[signal] ?? 0),
  );
});
