/**
 * piggy-env standalone mode as a real process: straight to AWS (the loopback stand-in) with the
 * default credential chain through IRSA web identity, Secrets Manager with and without a version,
 * SSM by path, and a success that is reported as one (Go Piggy's never was).
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type AwsStandIn, startAwsStandIn } from "../testing/aws.ts";
import {
  ensureStandaloneBundle,
  logMessages,
  parseReport,
  REPORT_APP,
  runLauncher,
} from "../testing/launcher_process.ts";

let aws: AwsStandIn;
let currentId: string;
let previousId: string;

before(async () => {
  await ensureStandaloneBundle();
  aws = await startAwsStandIn();
  previousId = aws.putSecret("demo/app", {
    string: JSON.stringify({ DB_PASS: "old-password", DB_USER: "admin" }),
    stages: ["STAGED"],
  });
  currentId = aws.putSecret("demo/app", {
    string: JSON.stringify({ DB_PASS: "new-password", DB_USER: "admin" }),
  });
  aws.putParameter("/demo/app/DB_HOST", "db.internal", "String");
  aws.putParameter("/demo/app/nested/API_KEY", "ssm-api-key", "SecureString");
});

after(async () => {
  await aws?.close();
});

function standaloneEnv(extra: Record<string, string>): Record<string, string> {
  return {
    ...aws.env({ credentials: "web-identity", region: null }),
    PIGGY_STANDALONE: "true",
    PIGGY_AWS_REGION: "eu-west-1",
    ...extra,
  };
}

test("standalone: IRSA web identity, Secrets Manager AWSCURRENT, success reported, same PID", async () => {
  aws.resetCounters();
  const result = await runLauncher({
    args: ["--", REPORT_APP],
    env: standaloneEnv({
      PIGGY_AWS_SECRET_NAME: "demo/app",
      PIGGY_DEBUG: "true",
      DB_PASS: "piggy:DB_PASS",
      DB_USER: "piggy:DB_USER",
    }),
  });
  assert.equal(result.code, 0, result.stderr);
  const report = parseReport(result.stdout);
  assert.equal(report.pid, result.pid);
  const env = new Map(report.env);
  assert.equal(env.get("DB_PASS"), "new-password");
  assert.equal(env.get("DB_USER"), "admin");
  assert.equal(env.has("PIGGY_STANDALONE"), false);
  assert.equal(env.has("PIGGY_AWS_SECRET_NAME"), false);
  assert.ok(logMessages(result).includes("Request secrets was successful"));
  assert.ok(result.logs.some((line) => line.level === "debug"));
  assert.doesNotMatch(result.stderr, /new-password|old-password|eyJ\.stand-in/);
  // Only JSON log lines: the SDK warns in plain text when STS gets no region (the calling
  // client's region must reach the web-identity exchange).
  assert.deepEqual(result.plainStderr, []);

  assert.equal(aws.count("AssumeRoleWithWebIdentity"), 1);
  const reads = aws.requests.filter((r) => r.action === "GetSecretValue");
  assert.equal(reads.length, 1);
  assert.equal(reads[0]?.secretId, "demo/app");
  assert.equal(reads[0]?.region, "eu-west-1");
  assert.equal(reads[0]?.versionStage, "AWSCURRENT");
  assert.equal(reads[0]?.versionId, undefined);
  assert.match(reads[0]?.accessKeyId ?? "", /^ASIA/, "temporary keys from STS");
});

test("standalone: PIGGY_AWS_SECRET_VERSION as a VersionId reads that version", async () => {
  aws.resetCounters();
  const result = await runLauncher({
    args: ["--", REPORT_APP],
    env: standaloneEnv({
      PIGGY_AWS_SECRET_NAME: "demo/app",
      PIGGY_AWS_SECRET_VERSION: previousId,
      DB_PASS: "piggy:DB_PASS",
    }),
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(new Map(parseReport(result.stdout).env).get("DB_PASS"), "old-password");
  const read = aws.requests.find((r) => r.action === "GetSecretValue");
  assert.equal(read?.versionId, previousId);
  assert.equal(read?.versionStage, undefined);
  assert.notEqual(previousId, currentId);
});

test("standalone: PIGGY_AWS_SECRET_VERSION as a stage label reads that stage", async () => {
  aws.resetCounters();
  const result = await runLauncher({
    args: ["--", REPORT_APP],
    env: standaloneEnv({
      PIGGY_AWS_SECRET_NAME: "demo/app",
      PIGGY_AWS_SECRET_VERSION: "STAGED",
      DB_PASS: "piggy:DB_PASS",
    }),
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(new Map(parseReport(result.stdout).env).get("DB_PASS"), "old-password");
  assert.equal(
    aws.requests.find((r) => r.action === "GetSecretValue")?.versionStage,
    "STAGED",
  );
});

test("standalone: SSM parameters under the path, keyed by the last path element", async () => {
  aws.resetCounters();
  const result = await runLauncher({
    args: ["--standalone", "--", REPORT_APP],
    env: standaloneEnv({
      PIGGY_STANDALONE: "",
      PIGGY_AWS_SSM_PARAMETER_PATH: "/demo/app",
      HOST: "piggy:DB_HOST",
      KEY: "piggy:API_KEY",
    }),
  });
  assert.equal(result.code, 0, result.stderr);
  const env = new Map(parseReport(result.stdout).env);
  assert.equal(env.get("HOST"), "db.internal");
  assert.equal(env.get("KEY"), "ssm-api-key");
  const read = aws.requests.find((r) => r.action === "GetParametersByPath");
  assert.equal(read?.path, "/demo/app");
  assert.equal(read?.recursive, true);
  assert.equal(read?.withDecryption, true);
  assert.equal(aws.count("GetSecretValue"), 0);
});

test("standalone: a missing secret fails with exit 1 and no retry of a permanent error", async () => {
  aws.resetCounters();
  const result = await runLauncher({
    args: ["--", REPORT_APP],
    env: standaloneEnv({
      PIGGY_AWS_SECRET_NAME: "demo/missing",
      PIGGY_NUMBER_OF_RETRY: "3",
      DB_PASS: "piggy:DB_PASS",
    }),
  });
  assert.equal(result.code, 1);
  assert.equal(result.stdout, "");
  assert.equal(aws.count("GetSecretValue"), 1);
  assert.ok(logMessages(result).includes("Unable to read secrets from AWS"));
});
