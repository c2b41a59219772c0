/**
 * scripts/compile.ts, which the Dockerfile runs: the `deno compile` command line of each binary,
 * its argument parsing and environment, and the script run as a process.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { compileArgs, compileEnv, parseCompileArgs, stepEnv } from "./compile.ts";
import { LAUNCHER_FLAGS, WEBHOOK_FLAGS } from "../cli/permissions.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

test("compileArgs() compiles each binary with its own permissions", () => {
  assert.deepEqual(compileArgs("webhook"), [
    "compile",
    "--node-modules-dir=none",
    ...WEBHOOK_FLAGS,
    "--output",
    "bin/piggy-webhooks",
    "cli/webhook.ts",
  ]);
  assert.deepEqual(compileArgs("env", { target: "aarch64-unknown-linux-gnu", output: "out/e" }), [
    "compile",
    "--node-modules-dir=none",
    ...LAUNCHER_FLAGS,
    "--no-check",
    "--include",
    "gen/standalone_light.js",
    "--include",
    "gen/standalone_source.js",
    "--output",
    "out/e",
    "--target",
    "aarch64-unknown-linux-gnu",
    "gen/piggy_env.js",
  ]);
  assert.ok(!compileArgs("webhook").some((a) => a.startsWith("--no-check") || a === "-A"));
  assert.ok(!compileArgs("env").includes("-A"));
});

test("deno task webhook runs with the compiled webhook's permissions (no --allow-run)", () => {
  const tasks = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")).tasks;
  assert.equal(tasks.webhook, `deno run ${WEBHOOK_FLAGS.join(" ")} cli/webhook.ts`);
  assert.ok(!WEBHOOK_FLAGS.some((flag) => flag.startsWith("--allow-run") || flag === "-A"));
});

test("parseCompileArgs() reads the binary and options, and rejects the rest", () => {
  assert.deepEqual(parseCompileArgs(["env", "--target=x86_64-unknown-linux-gnu", "--print"]), {
    binary: "env",
    options: { target: "x86_64-unknown-linux-gnu" },
    print: true,
  });
  assert.deepEqual(parseCompileArgs(["webhook", "--output", "a b"]), {
    binary: "webhook",
    options: { output: "a b" },
    print: false,
  });
  for (
    const argv of [[], ["webhooks"], ["env", "--target", "mips"], ["env", "--output"], [
      "env",
      "-A",
    ]]
  ) {
    assert.throws(() => parseCompileArgs(argv), TypeError, JSON.stringify(argv));
  }
});

test("compileEnv() keeps DENORT_BIN, drops an empty one, and ignores package.json", () => {
  assert.deepEqual(compileEnv({ PATH: "/bin", DENORT_BIN: "/opt/denort" }), {
    PATH: "/bin",
    DENORT_BIN: "/opt/denort",
    DENO_NO_PACKAGE_JSON: "1",
  });
  assert.deepEqual(compileEnv({ DENORT_BIN: "" }), { DENO_NO_PACKAGE_JSON: "1" });
});

test("stepEnv(): deno compile runs without DENO_CERT and DENO_TLS_CA_STORE, other steps keep them", () => {
  const env = { PATH: "/bin", DENO_CERT: "/ca.pem", DENO_TLS_CA_STORE: "system", DENORT_BIN: "/d" };
  assert.deepEqual(stepEnv(compileArgs("env"), env), { PATH: "/bin", DENORT_BIN: "/d" });
  assert.deepEqual(stepEnv(compileArgs("webhook"), env), { PATH: "/bin", DENORT_BIN: "/d" });
  assert.deepEqual(stepEnv(["check", "cli/piggy_env.ts"], env), env);
});

function runCompileScript(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ["run", "-A", join(ROOT, "scripts/compile.ts"), ...args], {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", ...env },
    cwd: ROOT,
  });
}

test("scripts/compile.ts --print shows the deno compile command", () => {
  const result = runCompileScript(["webhook", "--print"]);
  assert.equal(result.status, 0, result.stderr);
  const printed = JSON.parse(result.stdout);
  assert.deepEqual(printed.env, { DENO_NO_PACKAGE_JSON: "1" });
  assert.deepEqual(printed.command.slice(1), compileArgs("webhook"));
});

test("scripts/compile.ts fails with usage on a bad binary name", () => {
  const result = runCompileScript(["both"]);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /Usage: deno run -A scripts\/compile\.ts webhook\|env/);
});

test("scripts/compile.ts runs deno compile with DENORT_BIN passed through", () => {
  const dir = mkdtempSync(join(tmpdir(), "piggy-compile-"));
  try {
    const entry = join(dir, "main.ts");
    writeFileSync(entry, "export {};\n");
    const denort = join(dir, "missing-denort");
    const result = runCompileScript(
      ["env", "--entry", entry, "--output", join(dir, "piggy-env")],
      { DENORT_BIN: denort },
    );
    assert.notEqual(result.status, 0);
    // deno compile got this far (permissions flags accepted, entry compiled) and then looked for
    // the runtime exactly where DENORT_BIN points.
    assert.ok(result.stderr.includes(`Could not find denort at '${denort}'`), result.stderr);
    assert.ok(result.stderr.includes(`--allow-ffi`), result.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("scripts/compile.ts env builds the launcher directory from a patched denort", {
  skip: spawnSync("patchelf", ["--version"]).status === 0 ? false : "needs patchelf",
}, () => {
  // The pinned deno binary stands in for denort (same dynamic dependencies); only the runtime
  // behaviour of a real denort cannot be checked without one.
  const deno = process.execPath;
  const dir = mkdtempSync(join(tmpdir(), "piggy-compile-dist-"));
  try {
    const dist = join(dir, "dist");
    const result = runCompileScript(
      ["env", "--output", join(dir, "piggy-env"), "--dist", dist],
      { DENORT_BIN: deno },
    );
    assert.equal(result.status, 0, result.stderr);
    const elf = (args: string[]) => spawnSync("patchelf", args, { encoding: "utf8" }).stdout.trim();
    const launcher = join(dist, "piggy-env");
    const loader = basename(elf(["--print-interpreter", deno]));
    assert.equal(elf(["--print-interpreter", launcher]), `/piggy/lib/${loader}`);
    assert.equal(elf(["--print-rpath", launcher]), "$ORIGIN/lib");
    assert.equal(
      elf(["--print-interpreter", join(dir, "piggy-env")]),
      elf(["--print-interpreter", deno]),
    );
    const needed = elf(["--print-needed", deno]).split("\n");
    assert.deepEqual(
      readdirSync(join(dist, "lib")).sort(),
      [...new Set([loader, ...needed])].sort(),
    );
    // The program (with the bundled standalone source) was embedded into the patched runtime.
    assert.ok(readFileSync(launcher).includes("createStandaloneSource"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
