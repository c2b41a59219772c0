/**
 * piggy-env's light AWS client as a real process against the AWS stand-in (which verifies SigV4):
 * each credential source end to end (environment keys, IRSA web identity through STS, EKS Pod
 * Identity container credentials), the choice of the SDK when the environment asks for it (made
 * before any call: a launcher tree without the SDK bundle still serves the light cases and fails
 * the SDK ones without a single AWS request), retries counted by the stand-in, the same error
 * lines as the SDK for the same failures, HTTPS verified against Deno's roots (the stand-in behind
 * TLS), the answer size limit (`PIGGY_AWS_MAX_ANSWER_BYTES`), and no start that reads the global
 * `fetch` (a preloaded guard ends the process if one does).
 */

import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type AwsStandIn, startAwsStandIn } from "../testing/aws.ts";
import { FETCH_READ_EXIT_CODE } from "../testing/no_fetch_preload.ts";
import { createTestCa, type TestCa } from "../testing/pki.ts";
import {
  ensureStandaloneBundle,
  type LauncherResult,
  parseReport,
  REPORT_APP,
  ROOT,
  runLauncher,
} from "../testing/launcher_process.ts";

let aws: AwsStandIn;
let dir: string;
/** A copy of the launcher's tree with the light bundle only (no `gen/standalone_source.js`). */
let lightOnlyEntry: string;
/** An empty shared config file: its presence sends the launcher to the SDK, nothing else. */
let emptyConfig: string;

before(async () => {
  await ensureStandaloneBundle();
  aws = await startAwsStandIn();
  aws.putSecret("lite/app", { string: JSON.stringify({ DB_PASS: "lite-password" }) });
  aws.putParameter("/lite/app/API_KEY", "lite-api-key", "SecureString");
  dir = mkdtempSync(join(tmpdir(), "piggy-aws-lite-"));
  const tree = join(dir, "tree");
  for (const part of ["cli", "src"]) {
    cpSync(join(ROOT, part), join(tree, part), { recursive: true });
  }
  mkdirSync(join(tree, "gen"));
  cpSync(join(ROOT, "gen", "standalone_light.js"), join(tree, "gen", "standalone_light.js"));
  lightOnlyEntry = join(tree, "cli", "piggy_env.ts");
  emptyConfig = join(dir, "config");
  writeFileSync(emptyConfig, "");
});

after(async () => {
  await aws?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function env(
  credentials: "static" | "web-identity" | "container",
  extra: Record<string, string | undefined> = {},
  perService = false,
): Record<string, string | undefined> {
  return {
    ...aws.env({ credentials, region: null, perService }),
    PIGGY_STANDALONE: "true",
    PIGGY_AWS_REGION: "eu-west-1",
    PIGGY_AWS_SECRET_NAME: "lite/app",
    PIGGY_DEBUG: "true",
    PIGGY_NUMBER_OF_RETRY: "1",
    DB_PASS: "piggy:DB_PASS",
    ...extra,
  };
}

/** The `AWS client chosen` debug line. */
function choice(result: LauncherResult): Record<string, unknown> | undefined {
  return result.logs.find((line) => line.message === "AWS client chosen");
}

function dbPass(result: LauncherResult): string | undefined {
  assert.equal(result.code, 0, result.stderr);
  return new Map(parseReport(result.stdout).env).get("DB_PASS");
}

test("light client: environment keys, no SDK bundle needed, SigV4 accepted", async () => {
  aws.resetCounters();
  const result = await runLauncher({
    args: ["--", REPORT_APP],
    env: env("static"),
    entry: lightOnlyEntry,
  });
  assert.equal(dbPass(result), "lite-password");
  assert.deepEqual(choice(result)?.aws_client, "light");
  const reads = aws.requests.filter((r) => r.action === "GetSecretValue");
  assert.equal(reads.length, 1);
  assert.equal(reads[0]?.status, 200);
  assert.equal(reads[0]?.region, "eu-west-1");
  assert.equal(reads[0]?.accessKeyId, "AKIAPIGGYSTANDIN0001");
  assert.equal(aws.count("Rejected"), 0);
  assert.doesNotMatch(result.stderr, /lite-password|piggy\/stand-in\/static/);
});

test("light client: IRSA web identity through STS, then SSM by path (per-service endpoints)", async () => {
  aws.resetCounters();
  const result = await runLauncher({
    args: ["--", REPORT_APP],
    env: env("web-identity", {
      PIGGY_AWS_SECRET_NAME: undefined,
      PIGGY_AWS_SSM_PARAMETER_PATH: "/lite/app",
      DB_PASS: undefined,
      KEY: "piggy:API_KEY",
    }, true),
    entry: lightOnlyEntry,
  });
  assert.equal(aws.env({ perService: true }).AWS_ENDPOINT_URL, undefined);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(new Map(parseReport(result.stdout).env).get("KEY"), "lite-api-key");
  assert.equal(choice(result)?.aws_client, "light");
  assert.equal(aws.count("AssumeRoleWithWebIdentity"), 1);
  const read = aws.requests.find((r) => r.action === "GetParametersByPath");
  assert.equal(read?.status, 200);
  assert.match(read?.accessKeyId ?? "", /^ASIA/, "temporary keys from STS");
  assert.doesNotMatch(result.stderr, /eyJ\.stand-in|lite-api-key/);
});

test("light client: EKS Pod Identity container credentials with the token file", async () => {
  aws.resetCounters();
  const result = await runLauncher({
    args: ["--", REPORT_APP],
    env: env("container"),
    entry: lightOnlyEntry,
  });
  assert.equal(dbPass(result), "lite-password");
  assert.equal(choice(result)?.aws_client, "light");
  const issued = aws.requests.find((r) => r.action === "ContainerCredentials");
  assert.equal(issued?.status, 200);
  const read = aws.requests.find((r) => r.action === "GetSecretValue");
  assert.equal(read?.accessKeyId, issued?.issuedAccessKeyId);
  assert.doesNotMatch(result.stderr, /pod-identity-/);
});

test("light client: a container token file ending in a newline is read as the token", async () => {
  aws.resetCounters();
  const vars = env("container");
  const tokenFile = vars.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE;
  assert.ok(tokenFile);
  await Deno.writeTextFile(tokenFile, `${await Deno.readTextFile(tokenFile)}\n`);
  const result = await runLauncher({ args: ["--", REPORT_APP], env: vars, entry: lightOnlyEntry });
  assert.equal(dbPass(result), "lite-password");
  assert.equal(aws.requests.find((r) => r.action === "ContainerCredentials")?.status, 200);
});

test("the SDK is chosen before any call when AWS_PROFILE is set or a shared file exists", async () => {
  for (const extra of [{ AWS_PROFILE: "default" }, { AWS_CONFIG_FILE: emptyConfig }]) {
    aws.resetCounters();
    // Without the SDK bundle the start fails, and AWS never saw a request: no light attempt first.
    const lightOnly = await runLauncher({
      args: ["--", REPORT_APP],
      env: env("static", extra),
      entry: lightOnlyEntry,
    });
    assert.equal(lightOnly.code, 1);
    assert.match(lightOnly.stderr, /Cannot load the standalone AWS source/);
    assert.equal(choice(lightOnly)?.aws_client, "sdk");
    assert.deepEqual(aws.requests, []);
    // With it, the SDK reads the secret.
    const full = await runLauncher({ args: ["--", REPORT_APP], env: env("static", extra) });
    assert.equal(dbPass(full), "lite-password");
    const reason = String(choice(full)?.reason);
    assert.ok(
      "AWS_PROFILE" in extra ? reason === "AWS_PROFILE is set" : reason.includes(emptyConfig),
      reason,
    );
    assert.equal(aws.count("GetSecretValue"), 1);
  }
});

test("light client: throttling is retried with backoff, counted by the stand-in", async () => {
  aws.resetCounters();
  aws.failNext("GetSecretValue", "ThrottlingException", 2);
  const recovered = await runLauncher({ args: ["--", REPORT_APP], env: env("static") });
  assert.equal(dbPass(recovered), "lite-password");
  assert.deepEqual(
    aws.requests.filter((r) => r.action === "GetSecretValue").map((r) => r.status),
    [400, 400, 200],
  );
  assert.equal(choice(recovered)?.aws_client, "light");
  assert.equal(
    recovered.logs.find((line) => line.message === "Secret loaded")?.attempts,
    3,
  );

  aws.resetCounters();
  aws.failNext("GetSecretValue", "InternalServiceError", 3);
  const failed = await runLauncher({ args: ["--", REPORT_APP], env: env("static") });
  assert.equal(failed.code, 1);
  assert.equal(aws.count("GetSecretValue"), 3, "three attempts, then the error");
  aws.clearInjections();
});

test("light client: an attempt past the 5 s timeout is abandoned and retried", async () => {
  aws.resetCounters();
  aws.delayNext("GetSecretValue", 7000);
  const started = Date.now();
  const result = await runLauncher({ args: ["--", REPORT_APP], env: env("static") });
  assert.equal(dbPass(result), "lite-password");
  assert.equal(aws.count("GetSecretValue"), 2, "the slow attempt, then a second one");
  assert.ok(Date.now() - started >= 5000, "the first attempt was given its 5 s");
  assert.equal(result.logs.find((line) => line.message === "Secret loaded")?.attempts, 2);
  // The abandoned request is still being answered: let it finish before the next test injects
  // failures (it would take one).
  for (let waited = 0; waited < 20_000; waited += 100) {
    if (aws.requests.every((r) => r.status !== 0)) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(aws.requests.every((r) => r.status !== 0), "the slow request was answered");
  aws.clearInjections();
});

/** Error lines of a failed start, without their time. */
function errorLines(result: LauncherResult): string[] {
  assert.equal(result.code, 1, result.stderr);
  return result.logs.filter((line) => line.level === "error").map((line) => String(line.message));
}

test("light client: the same error lines as the SDK for the same failures", async () => {
  const badTokenFile = join(dir, "bad-token");
  writeFileSync(badTokenFile, "eyJ.not-registered");
  const scenarios: Array<{
    name: string;
    env: Record<string, string | undefined>;
    inject?: () => void;
    expect: RegExp;
  }> = [
    {
      name: "missing secret",
      env: env("static", { PIGGY_AWS_SECRET_NAME: "lite/missing" }),
      expect: /Secrets Manager can't find the specified secret/,
    },
    {
      name: "access denied",
      env: env("static"),
      inject: () => aws.failNext("GetSecretValue", "AccessDeniedException"),
      expect: /is not authorized to perform this operation/,
    },
    {
      name: "no region",
      env: env("static", { PIGGY_AWS_REGION: undefined }),
      expect: /no AWS region is configured/,
    },
    {
      name: "AWS_REGION that is no region name",
      env: env("static", { PIGGY_AWS_REGION: undefined, AWS_REGION: "evil.example/#" }),
      expect: /Region not accepted: region="evil\.example\/#"/,
    },
    {
      name: "no credentials",
      env: env("static", { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined }),
      expect: /Cannot find AWS credentials/,
    },
    {
      name: "wrong secret key",
      env: env("static", { AWS_SECRET_ACCESS_KEY: "not-the-key" }),
      expect: /signature we calculated does not match/,
    },
    {
      name: "web identity token refused by STS",
      env: env("web-identity", { AWS_WEB_IDENTITY_TOKEN_FILE: badTokenFile }),
      expect: /Couldn't retrieve verification key/,
    },
  ];
  for (const scenario of scenarios) {
    const lines: Record<string, string[]> = {};
    for (const client of ["light", "sdk"]) {
      aws.resetCounters();
      scenario.inject?.();
      const result = await runLauncher({
        args: ["--", REPORT_APP],
        env: client === "sdk" ? { ...scenario.env, AWS_CONFIG_FILE: emptyConfig } : scenario.env,
      });
      assert.equal(choice(result)?.aws_client, client, scenario.name);
      lines[client] = errorLines(result);
    }
    assert.match(lines.light?.join("\n") ?? "", scenario.expect, scenario.name);
    assert.deepEqual(lines.light, lines.sdk, scenario.name);
  }
});

/** `deno run` flags that end the launcher (exit 97) when anything reads the global `fetch`. */
const NO_FETCH = ["--preload", join(ROOT, "testing", "no_fetch_preload.ts")];

test("light client: no start reads the global fetch (each credential source, Secrets Manager and SSM)", async () => {
  const cases: Array<[string, Record<string, string | undefined>]> = [
    ["environment keys", env("static")],
    ["web identity", env("web-identity")],
    ["container credentials", env("container")],
    [
      "SSM by path",
      env("static", {
        PIGGY_AWS_SSM_PARAMETER_PATH: "/lite/app",
        DB_PASS: undefined,
        KEY: "piggy:API_KEY",
      }),
    ],
  ];
  for (const [name, caseEnv] of cases) {
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: caseEnv,
      entry: lightOnlyEntry,
      denoFlags: NO_FETCH,
    });
    assert.notEqual(result.code, FETCH_READ_EXIT_CODE, `${name}: ${result.stderr}`);
    assert.equal(result.code, 0, `${name}: ${result.stderr}`);
    assert.equal(choice(result)?.aws_client, "light", name);
  }
  // The guard works: a start that reads fetch ends with its code.
  const script = join(dir, "reads_fetch.ts");
  writeFileSync(script, "console.log(typeof fetch);\n");
  const reads = await runLauncher({ args: [], entry: script, denoFlags: NO_FETCH });
  assert.equal(reads.code, FETCH_READ_EXIT_CODE, reads.stderr);
});

/** The next run's answers of `action` are over the default limit (1 MiB). */
const OVER_DEFAULT = 1024 * 1024 + 1;

test("light client: an answer over PIGGY_AWS_MAX_ANSWER_BYTES fails for good, naming it", async () => {
  const scenarios: Array<{
    name: string;
    action: "GetSecretValue" | "GetParametersByPath" | "ContainerCredentials";
    env: Record<string, string | undefined>;
  }> = [
    { name: "Secrets Manager", action: "GetSecretValue", env: env("static") },
    {
      name: "SSM page",
      action: "GetParametersByPath",
      env: env("static", {
        PIGGY_AWS_SECRET_NAME: undefined,
        PIGGY_AWS_SSM_PARAMETER_PATH: "/lite/app",
        DB_PASS: undefined,
        KEY: "piggy:API_KEY",
      }),
    },
    { name: "container credentials", action: "ContainerCredentials", env: env("container") },
  ];
  for (const scenario of scenarios) {
    aws.resetCounters();
    aws.padNext(scenario.action, OVER_DEFAULT, 10);
    const refused = await runLauncher({
      args: ["--", REPORT_APP],
      env: { ...scenario.env, PIGGY_NUMBER_OF_RETRY: "3" },
    });
    const lines = errorLines(refused);
    assert.match(
      lines.join("\n"),
      /larger than 1048576 bytes \(PIGGY_AWS_MAX_ANSWER_BYTES\)/,
      `${scenario.name}: ${refused.stderr}`,
    );
    assert.equal(aws.count(scenario.action), 1, `${scenario.name}: not retried`);
    assert.equal(refused.stdout, "", "the app did not start");
    aws.clearInjections();

    // Raised above the answer, the same answer is read.
    aws.resetCounters();
    aws.padNext(scenario.action, OVER_DEFAULT, 10);
    const raised = await runLauncher({
      args: ["--", REPORT_APP],
      env: { ...scenario.env, PIGGY_AWS_MAX_ANSWER_BYTES: String(2 * OVER_DEFAULT) },
    });
    assert.equal(raised.code, 0, `${scenario.name}: ${raised.stderr}`);
    aws.clearInjections();
  }

  // Lowered below a normal answer (a few hundred bytes): refused too.
  aws.resetCounters();
  const low = await runLauncher({
    args: ["--", REPORT_APP],
    env: env("static", { PIGGY_AWS_MAX_ANSWER_BYTES: "64" }),
  });
  assert.match(errorLines(low).join("\n"), /larger than 64 bytes \(PIGGY_AWS_MAX_ANSWER_BYTES\)/);

  // An invalid value stops the launcher before any AWS call.
  aws.resetCounters();
  const invalid = await runLauncher({
    args: ["--", REPORT_APP],
    env: env("static", { PIGGY_AWS_MAX_ANSWER_BYTES: "1MiB" }),
  });
  assert.notEqual(invalid.code, 0);
  assert.match(invalid.stderr, /Invalid PIGGY_AWS_MAX_ANSWER_BYTES/);
  assert.deepEqual(aws.requests, []);
});

test("light client over HTTPS: verified against Deno's roots (DENO_CERT), AWS_CA_BUNDLE not read, as the SDK", async () => {
  const ca: TestCa = createTestCa("piggy-aws-tls");
  const leaf = ca.issue("aws");
  const secure = await startAwsStandIn({ tls: { cert: leaf.cert, key: leaf.key } });
  try {
    assert.match(secure.url, /^https:\/\/127\.0\.0\.1:/);
    secure.putSecret("lite/app", { string: JSON.stringify({ DB_PASS: "over-tls" }) });
    secure.putParameter("/lite/app/API_KEY", "tls-api-key");
    const tlsEnv = (
      credentials: "static" | "web-identity" | "container",
      extra: Record<string, string | undefined> = {},
    ) => ({
      ...secure.env({ credentials, region: null }),
      PIGGY_STANDALONE: "true",
      PIGGY_AWS_REGION: "eu-west-1",
      PIGGY_AWS_SECRET_NAME: "lite/app",
      PIGGY_DEBUG: "true",
      DB_PASS: "piggy:DB_PASS",
      ...extra,
    });
    // Trusted through Deno's root store: each credential source, STS and container credentials
    // over HTTPS too, and no fetch.
    for (const credentials of ["static", "web-identity", "container"] as const) {
      const result = await runLauncher({
        args: ["--", REPORT_APP],
        env: tlsEnv(credentials, { DENO_CERT: ca.certFile }),
        denoFlags: NO_FETCH,
      });
      assert.equal(result.code, 0, `${credentials}: ${result.stderr}`);
      assert.equal(new Map(parseReport(result.stdout).env).get("DB_PASS"), "over-tls");
      assert.equal(choice(result)?.aws_client, "light");
    }
    assert.equal(secure.count("AssumeRoleWithWebIdentity"), 1);
    assert.equal(secure.count("ContainerCredentials"), 1);
    // Not trusted: refused before any request reaches the server, by both clients; AWS_CA_BUNDLE
    // changes nothing (the AWS SDK for JavaScript does not read it).
    for (const client of ["light", "sdk"]) {
      for (const extra of [{}, { AWS_CA_BUNDLE: ca.certFile }]) {
        secure.resetCounters();
        const result = await runLauncher({
          args: ["--", REPORT_APP],
          env: tlsEnv("static", {
            ...extra,
            ...(client === "sdk" ? { AWS_CONFIG_FILE: emptyConfig } : {}),
          }),
        });
        assert.equal(choice(result)?.aws_client, client);
        assert.equal(result.code, 1, `${client} ${JSON.stringify(extra)}: ${result.stderr}`);
        assert.deepEqual(secure.requests, [], `${client} ${JSON.stringify(extra)}`);
      }
    }
    // A certificate for another name: refused although its CA is trusted.
    const other = ca.issue("elsewhere", { serverNames: ["aws.example.com"] });
    const wrongName = await startAwsStandIn({ tls: { cert: other.cert, key: other.key } });
    try {
      wrongName.putSecret("lite/app", { string: JSON.stringify({ DB_PASS: "over-tls" }) });
      const result = await runLauncher({
        args: ["--", REPORT_APP],
        env: {
          ...tlsEnv("static", { DENO_CERT: ca.certFile }),
          ...wrongName.env({ credentials: "static", region: null }),
        },
      });
      assert.equal(result.code, 1, result.stderr);
      assert.deepEqual(wrongName.requests, []);
    } finally {
      await wrongName.close();
    }
  } finally {
    await secure.close();
    rmSync(ca.dir, { recursive: true, force: true });
  }
});
