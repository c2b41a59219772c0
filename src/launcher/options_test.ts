import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_AWS_MAX_ANSWER_BYTES, DEFAULT_TOKEN_FILE } from "../constants.ts";
import type { RunFlags } from "./args.ts";
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  type LauncherOptions,
  resolveLauncherOptions,
} from "./options.ts";

function envOf(values: Record<string, string>): (name: string) => string | undefined {
  return (name) => values[name];
}

test("resolveLauncherOptions() defaults: proxy mode, one attempt, TLS verified, 10s timeout", () => {
  const options = resolveLauncherOptions({}, envOf({}));
  const expected: LauncherOptions = {
    standalone: false,
    attempts: 1,
    initialDelayMs: 0,
    ignoreNoEnv: false,
    logLevel: "info",
    address: "",
    podName: "",
    uid: "",
    tokenFile: DEFAULT_TOKEN_FILE,
    caFile: "",
    caBundle: "",
    skipVerifyTls: false,
    requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
    awsMaxAnswerBytes: 1024 * 1024,
    query: undefined,
    dnsResolver: "",
    commandTemplate: "",
  };
  assert.deepEqual(options, expected);
  assert.equal(DEFAULT_AWS_MAX_ANSWER_BYTES, 1024 * 1024);
});

test("resolveLauncherOptions() reads every PIGGY_* variable the webhook injects", () => {
  const options = resolveLauncherOptions(
    {},
    envOf({
      PIGGY_ADDRESS: "https://piggy.piggy.svc:443",
      PIGGY_POD_NAME: "app-1",
      PIGGY_UID: "0f3c",
      PIGGY_AWS_SECRET_NAME: "demo/app",
      PIGGY_AWS_SSM_PARAMETER_PATH: "/demo/app",
      PIGGY_AWS_REGION: "eu-west-1",
      PIGGY_AWS_SECRET_VERSION: "AWSPREVIOUS",
      PIGGY_STANDALONE: "true",
      PIGGY_IGNORE_NO_ENV: "True",
      PIGGY_DEBUG: "1",
      PIGGY_NUMBER_OF_RETRY: "4",
      PIGGY_INITIAL_DELAY: "2s",
      PIGGY_SKIP_VERIFY_TLS: "t",
      PIGGY_CA_FILE: "/piggy/ca.crt",
      PIGGY_CA_BUNDLE: "-----BEGIN CERTIFICATE-----",
      PIGGY_TOKEN_FILE: "/var/run/secrets/piggy/token",
      PIGGY_REQUEST_TIMEOUT: "1500ms",
      PIGGY_DNS_RESOLVER: "tcp",
      PIGGY_AWS_MAX_ANSWER_BYTES: "65536",
    }),
  );
  assert.equal(options.address, "https://piggy.piggy.svc:443");
  assert.equal(options.podName, "app-1");
  assert.equal(options.uid, "0f3c");
  // The SSM path wins over the secret name (and its version), as on the webhook.
  assert.deepEqual(options.query, { kind: "ssm", path: "/demo/app", region: "eu-west-1" });
  assert.equal(options.standalone, true);
  assert.equal(options.ignoreNoEnv, true);
  assert.equal(options.logLevel, "debug");
  assert.equal(options.attempts, 4);
  assert.equal(options.initialDelayMs, 2000);
  assert.equal(options.skipVerifyTls, true);
  assert.equal(options.caFile, "/piggy/ca.crt");
  assert.equal(options.caBundle, "-----BEGIN CERTIFICATE-----");
  assert.equal(options.tokenFile, "/var/run/secrets/piggy/token");
  assert.equal(options.requestTimeoutMs, 1500);
  assert.equal(options.dnsResolver, "tcp");
  assert.equal(options.awsMaxAnswerBytes, 65536);
});

const precedence: Array<[string, RunFlags, Record<string, string>, Partial<LauncherOptions>]> = [
  ["flags apply without env", { standalone: true, attempts: 3, initialDelayMs: 500 }, {}, {
    standalone: true,
    attempts: 3,
    initialDelayMs: 500,
  }],
  [
    "a non-empty env value overrides the flag (Go Piggy order)",
    { standalone: true, attempts: 3, initialDelayMs: 500 },
    { PIGGY_STANDALONE: "false", PIGGY_NUMBER_OF_RETRY: "7", PIGGY_INITIAL_DELAY: "1s" },
    { standalone: false, attempts: 7, initialDelayMs: 1000 },
  ],
  [
    "an empty env value counts as unset",
    { standalone: true, attempts: 3, initialDelayMs: 500 },
    { PIGGY_STANDALONE: "", PIGGY_NUMBER_OF_RETRY: "", PIGGY_INITIAL_DELAY: "" },
    { standalone: true, attempts: 3, initialDelayMs: 500 },
  ],
  ["LOG_LEVEL wins over PIGGY_DEBUG", {}, { PIGGY_DEBUG: "true", LOG_LEVEL: "error" }, {
    logLevel: "error",
  }],
  ["PIGGY_DEBUG=false keeps info", {}, { PIGGY_DEBUG: "false" }, { logLevel: "info" }],
];

for (const [name, flags, env, expected] of precedence) {
  test(`resolveLauncherOptions(): ${name}`, () => {
    const options = resolveLauncherOptions(flags, envOf(env));
    for (const [key, value] of Object.entries(expected)) {
      assert.deepEqual(options[key as keyof LauncherOptions], value, key);
    }
  });
}

const invalid: Array<[Record<string, string>, RegExp]> = [
  [{ PIGGY_NUMBER_OF_RETRY: "0" }, /Invalid PIGGY_NUMBER_OF_RETRY/],
  [{ PIGGY_NUMBER_OF_RETRY: "-2" }, /Invalid PIGGY_NUMBER_OF_RETRY/],
  [{ PIGGY_NUMBER_OF_RETRY: "three" }, /Invalid PIGGY_NUMBER_OF_RETRY/],
  [{ PIGGY_INITIAL_DELAY: "5" }, /Invalid PIGGY_INITIAL_DELAY/],
  [{ PIGGY_INITIAL_DELAY: "-1s" }, /Invalid PIGGY_INITIAL_DELAY/],
  [{ PIGGY_REQUEST_TIMEOUT: "0s" }, /Invalid PIGGY_REQUEST_TIMEOUT/],
  [{ PIGGY_REQUEST_TIMEOUT: "fast" }, /Invalid PIGGY_REQUEST_TIMEOUT/],
  [{ PIGGY_STANDALONE: "yes" }, /Invalid PIGGY_STANDALONE/],
  [{ PIGGY_SKIP_VERIFY_TLS: "on" }, /Invalid PIGGY_SKIP_VERIFY_TLS/],
  [{ PIGGY_IGNORE_NO_ENV: "y" }, /Invalid PIGGY_IGNORE_NO_ENV/],
  [{ PIGGY_DEBUG: "verbose" }, /Invalid PIGGY_DEBUG/],
  [{ PIGGY_AWS_MAX_ANSWER_BYTES: "0" }, /Invalid PIGGY_AWS_MAX_ANSWER_BYTES/],
  [{ PIGGY_AWS_MAX_ANSWER_BYTES: "1Mi" }, /Invalid PIGGY_AWS_MAX_ANSWER_BYTES/],
  [{ PIGGY_AWS_MAX_ANSWER_BYTES: "-5" }, /Invalid PIGGY_AWS_MAX_ANSWER_BYTES/],
  [{ PIGGY_AWS_MAX_ANSWER_BYTES: "1073741825" }, /Invalid PIGGY_AWS_MAX_ANSWER_BYTES/],
];

for (const [env, message] of invalid) {
  test(`resolveLauncherOptions() rejects ${JSON.stringify(env)} instead of defaulting`, () => {
    assert.throws(() => resolveLauncherOptions({ attempts: 2, initialDelayMs: 100 }, envOf(env)), (
      error: unknown,
    ) => {
      assert.ok(error instanceof SyntaxError || error instanceof RangeError);
      assert.match(error.message, message);
      return true;
    });
  });
}
