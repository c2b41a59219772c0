/**
 * `--help` and `--version` of both binaries under Deno, run with environment access only (the AWS
 * SDK reads variables while its modules load): they answer before anything reads a file, listens or
 * connects, so such a side effect would be a permission error. (The Node entry points:
 * tests/npm_package_test.ts.)
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { USAGE } from "../src/launcher/args.ts";
import { WEBHOOK_USAGE } from "../src/server/webhook_args.ts";
import { VERSION } from "../src/version.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

async function runEnvOnly(entry: string, args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-env", join(ROOT, entry), ...args],
    cwd: ROOT,
    clearEnv: true,
    env: {
      NO_COLOR: "1",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

test("VERSION is package.json's version and the chart's appVersion", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const chart = parse(readFileSync(join(ROOT, "charts", "piggy-webhooks", "Chart.yaml"), "utf8"));
  assert.equal(VERSION, pkg.version);
  assert.equal(VERSION, String(chart.appVersion));
});

for (
  const [entry, name, usage] of [
    ["cli/webhook.ts", "piggy-webhooks", WEBHOOK_USAGE],
    ["cli/piggy_env.ts", "piggy-env", USAGE],
  ] as const
) {
  test(`${name} --help and --version print on stdout and exit 0 with environment access only`, async () => {
    const help = await runEnvOnly(entry, ["--help"]);
    assert.deepEqual(help, { code: 0, stdout: `${usage}\n`, stderr: "" });
    const version = await runEnvOnly(entry, ["--version"]);
    assert.deepEqual(version, { code: 0, stdout: `${name} ${VERSION}\n`, stderr: "" });
  });
}

test("piggy-webhooks with an unknown argument exits 2 with the usage on stderr", async () => {
  const result = await runEnvOnly("cli/webhook.ts", ["--listen", ":1"]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  assert.equal(result.stderr, `piggy-webhooks: Unknown flag "--listen"\n${WEBHOOK_USAGE}\n`);
});
