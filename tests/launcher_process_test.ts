/**
 * piggy-env as a real process (`deno run <LAUNCHER_FLAGS> cli/piggy_env.ts`): true exec (same PID),
 * signals, exit codes, resolved environment, usage errors and install.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { USAGE } from "../src/launcher/args.ts";
import {
  APPS_DIR,
  baseEnv,
  logMessages,
  parseReport,
  REPORT_APP,
  runLauncher,
  spawnLauncher,
  startSecretResponder,
} from "../testing/launcher_process.ts";

function tokenFile(): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "piggy-token-"));
  const path = join(dir, "token");
  writeFileSync(path, "test-sa-token");
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test("piggy-env execs the app: same PID, secrets resolved, reserved variables gone, order kept", async () => {
  const responder = await startSecretResponder({
    secrets: { DB_PASS: "secret123", API_KEY: "key456", PIGGY_ALLOWED_SA: "demo:app" },
  });
  const token = tokenFile();
  try {
    const result = await runLauncher({
      args: ["--", REPORT_APP, "first arg", "--flag"],
      env: {
        ZZ_FIRST: "1",
        DB_PASS: "piggy:DB_PASS",
        PIGGY_ADDRESS: responder.address,
        PIGGY_POD_NAME: "app-1",
        PIGGY_UID: "0f3c",
        PIGGY_TOKEN_FILE: token.path,
        PIGGY_AWS_SECRET_NAME: "",
        PIGGY_AWS_REGION: "eu-west-1",
        PIGGY_DNS_RESOLVER: "tcp",
        API_KEY: "piggy:API_KEY\n",
        NORMAL: "value",
      },
    });
    assert.equal(result.code, 0, result.stderr);
    const report = parseReport(result.stdout);
    assert.equal(report.pid, result.pid, "the app runs in piggy-env's process (execve)");
    assert.deepEqual(report.args, ["first arg", "--flag"]);
    const env = new Map(report.env);
    assert.equal(env.get("DB_PASS"), "secret123");
    assert.equal(env.get("API_KEY"), "key456");
    assert.equal(env.get("NORMAL"), "value");
    for (const name of report.env.map(([name]) => name)) {
      assert.doesNotMatch(name, /^PIGGY_/, `${name} must not reach the app`);
    }
    const expectedOrder = Object.keys(baseEnv()).concat([
      "ZZ_FIRST",
      "DB_PASS",
      "API_KEY",
      "NORMAL",
    ]);
    assert.deepEqual(
      report.env.map(([name]) => name).filter((name) => expectedOrder.includes(name)),
      expectedOrder.filter((name) => env.has(name)),
    );
    assert.equal(responder.requests.length, 1);
    assert.ok(logMessages(result).includes("Request secrets was successful"));
    assert.doesNotMatch(result.stderr, /secret123|key456|test-sa-token/);
  } finally {
    token.cleanup();
    await responder.close();
  }
});

test("piggy-env hands the app default signal dispositions, an empty mask and no extra fds", async () => {
  const result = await runLauncher({
    args: ["--", REPORT_APP],
    env: { PIGGY_IGNORE_NO_ENV: "true" },
  });
  assert.equal(result.code, 0, result.stderr);
  const report = parseReport(result.stdout);
  assert.equal(report.pid, result.pid);

  // The same app started directly by the test: what the test runner itself hands down (Deno's
  // spawn leaves the glibc-internal signals 32/33 ignored; a kubelet-started container has none).
  const direct = parseReport(
    await new Promise<string>((resolve, reject) => {
      const child = spawn(REPORT_APP, [], { env: baseEnv(), stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => (out += chunk));
      child.on("error", reject);
      child.on("close", () => resolve(out));
    }),
  );
  const ignored = BigInt(`0x${report.sigIgn}`);
  const SIGPIPE_BIT = 1n << 12n;
  assert.equal(ignored & SIGPIPE_BIT, 0n, `SIGPIPE left ignored: SigIgn ${report.sigIgn}`);
  assert.equal(
    ignored & ~BigInt(`0x${direct.sigIgn}`),
    0n,
    `piggy-env added ignored signals: ${report.sigIgn} vs ${direct.sigIgn}`,
  );
  assert.equal(report.sigBlk, "0000000000000000");
  assert.deepEqual(report.fds, direct.fds, "the Deno runtime leaks no descriptor");
});

test("piggy-env: SIGTERM sent to the PID reaches the app's handler and its code is the exit code", async () => {
  const launcher = spawnLauncher({
    args: ["--", join(APPS_DIR, "trap_term.sh")],
    env: { PIGGY_IGNORE_NO_ENV: "true" },
  });
  const ready = await launcher.waitForStdout(/^ready \d+$/);
  assert.equal(Number(ready.split(" ")[1]), launcher.pid);
  process.kill(launcher.pid, "SIGTERM");
  const result = await launcher.done;
  assert.match(result.stdout, /got TERM/);
  assert.equal(result.code, 42);
  assert.equal(result.signal, null);
});

test("piggy-env: the app's exit code and death by signal are the process's", async () => {
  const exited = await runLauncher({
    args: ["--", "sh", "-c", "exit 7"],
    env: { PIGGY_IGNORE_NO_ENV: "true" },
  });
  assert.equal(exited.code, 7);
  const killed = await runLauncher({
    args: ["--", "sh", "-c", "kill -KILL $$"],
    env: { PIGGY_IGNORE_NO_ENV: "true" },
  });
  assert.equal(killed.code, null);
  assert.equal(killed.signal, "SIGKILL");
});

test("piggy-env exits 127 for a command not on PATH and 126 for a non-executable file", async () => {
  const missing = await runLauncher({
    args: ["--", "no-such-command-piggy"],
    env: { PIGGY_IGNORE_NO_ENV: "true" },
  });
  assert.equal(missing.code, 127);
  assert.ok(logMessages(missing).some((m) => /Command not found "no-such-command-piggy"/.test(m)));

  const notExecutable = await runLauncher({
    args: ["--", join(APPS_DIR, "not_executable.sh")],
    env: { PIGGY_IGNORE_NO_ENV: "true" },
  });
  assert.equal(notExecutable.code, 126);
  assert.equal(notExecutable.stdout, "");
  assert.ok(logMessages(notExecutable).some((m) => /Cannot execute/.test(m)));

  const directory = await runLauncher({
    args: ["--", "apps"],
    cwd: join(APPS_DIR, ".."),
    env: { PIGGY_IGNORE_NO_ENV: "true", PATH: `:${baseEnv().PATH}` },
  });
  assert.equal(directory.code, 126);
});

test("piggy-env finds the command on its own PATH like execvp", async () => {
  const result = await runLauncher({
    args: ["--", "report.sh"],
    env: { PIGGY_IGNORE_NO_ENV: "true", PATH: `/nonexistent:${APPS_DIR}:/usr/bin:/bin` },
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(parseReport(result.stdout).pid, result.pid);
});

test("piggy-env exits 1 naming the variable when a key is missing, never its value", async () => {
  const responder = await startSecretResponder({ secrets: { OTHER: "other-s3cret" } });
  const token = tokenFile();
  try {
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: {
        DB_PASS: "piggy:DB_PASS",
        PIGGY_ADDRESS: responder.address,
        PIGGY_TOKEN_FILE: token.path,
      },
    });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "", "the app never starts");
    assert.ok(logMessages(result).some((m) => m.includes("[DB_PASS] not found")));
    assert.doesNotMatch(result.stderr, /other-s3cret|test-sa-token/);
  } finally {
    token.cleanup();
    await responder.close();
  }
});

test("piggy-env with ignore-no-env starts the app with its normal environment when the fetch fails", async () => {
  const responder = await startSecretResponder();
  const address = responder.address;
  await responder.close(); // nothing listens there any more
  const result = await runLauncher({
    args: ["--", REPORT_APP],
    env: {
      PIGGY_ADDRESS: address,
      PIGGY_IGNORE_NO_ENV: "true",
      PIGGY_TOKEN_FILE: "/nonexistent/token",
      DB_PASS: "piggy:DB_PASS",
      APP_SETTING: "kept",
    },
  });
  assert.equal(result.code, 0, result.stderr);
  const env = new Map(parseReport(result.stdout).env);
  assert.equal(env.get("APP_SETTING"), "kept");
  assert.equal(env.get("PATH"), baseEnv().PATH);
  assert.equal(env.get("DB_PASS"), "piggy:DB_PASS");
  assert.equal(env.has("PIGGY_ADDRESS"), false);
});

const usageErrors: string[][] = [
  [],
  ["sh"],
  ["--bogus", "--", "sh"],
  ["--"],
  ["--retry", "0", "--", "sh"],
  ["--retry", "x", "--", "sh"],
  ["--initial-delay", "5", "--", "sh"],
  ["install"],
];

for (const args of usageErrors) {
  test(`piggy-env ${JSON.stringify(args)} is a usage error: exit 2, one usage line`, async () => {
    const result = await runLauncher({ args, env: { PIGGY_IGNORE_NO_ENV: "true" } });
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.deepEqual(result.plainStderr, [USAGE]);
    assert.equal(result.logs.length, 1);
    assert.equal(result.logs[0]?.level, "error");
  });
}

test("piggy-env --help prints the usage on stdout and exits 0", async () => {
  const result = await runLauncher({ args: ["--help"] });
  assert.equal(result.code, 0);
  assert.equal(result.stdout, `${USAGE}\n`);
});

test("piggy-env exits 1 on an invalid PIGGY_NUMBER_OF_RETRY or PIGGY_INITIAL_DELAY", async () => {
  for (const env of [{ PIGGY_NUMBER_OF_RETRY: "0" }, { PIGGY_INITIAL_DELAY: "soon" }]) {
    const result = await runLauncher({ args: ["--", REPORT_APP], env });
    assert.equal(result.code, 1, JSON.stringify(env));
    assert.equal(result.stdout, "");
    assert.match(logMessages(result)[0] ?? "", /Invalid PIGGY_/);
  }
});

/** A small launcher directory (what `install` copies; its content does not matter here). */
function launcherDirectory(dir: string, marker: string): string {
  const source = join(dir, `source-${marker}`);
  mkdirSync(join(source, "lib"), { recursive: true });
  writeFileSync(join(source, "piggy-env"), `launcher ${marker}`, { mode: 0o555 });
  writeFileSync(join(source, "lib", "libc.so.6"), `libc ${marker}`, { mode: 0o444 });
  return source;
}

test("piggy-env install --from copies the launcher directory behind piggy-env and lib", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piggy-volume-"));
  try {
    const volume = join(dir, "volume");
    mkdirSync(volume);
    for (const marker of ["v1", "v2"]) {
      const source = launcherDirectory(dir, marker);
      const result = await runLauncher({ args: ["install", "--from", source, volume] });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "");
      assert.equal(statSync(join(volume, "piggy-env")).mode & 0o777, 0o755);
      assert.equal(readFileSync(join(volume, "piggy-env"), "utf8"), `launcher ${marker}`);
      assert.equal(readFileSync(join(volume, "lib", "libc.so.6"), "utf8"), `libc ${marker}`);
      // The re-run left one version: piggy-env, lib and their directory.
      assert.equal(readdirSync(volume).length, 3, readdirSync(volume).join(" "));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("piggy-env install without --from looks beside its executable and says what it expects", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piggy-volume-"));
  try {
    const result = await runLauncher({ args: ["install", dir] });
    assert.equal(result.code, 1);
    // Under deno run the executable is deno: no launcher directory beside it.
    assert.ok(
      logMessages(result).some((m) =>
        /as the launcher directory: expecting piggy-env and lib/.test(m)
      ),
      result.stderr,
    );
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("piggy-env install exits 1 with a clear message when the destination is unusable", async () => {
  const result = await runLauncher({ args: ["install", "/nonexistent-dir/sub/piggy-env"] });
  assert.equal(result.code, 1);
  assert.ok(logMessages(result).some((m) => /^Cannot install /.test(m)));
});
