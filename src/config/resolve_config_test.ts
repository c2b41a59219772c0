import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveConfig } from "./resolve_config.ts";

const P = "piggysec.com/";
const noEnv = () => undefined;

function envOf(values: Record<string, string>) {
  return (name: string) => values[name];
}

test("resolveConfig() returns the defaults without annotations or env", () => {
  const { config, sources, problems } = resolveConfig(undefined, noEnv);
  assert.equal(config.awsSecretName, "");
  assert.equal(config.piggyEnforceIntegrity, true);
  assert.equal(config.standalone, false);
  assert.equal(config.piggyEnvImagePullPolicy, "Always");
  assert.equal(config.piggyEnvVolumeSizeLimit, "256Mi");
  assert.equal(config.piggyNumberOfRetry, 0);
  assert.equal(sources.awsSecretName, "default");
  assert.deepEqual(problems, []);
});

test("resolveConfig() prefers the annotation, then the env, then the default", () => {
  const env = envOf({ AWS_SECRET_NAME: "from-env", AWS_REGION: "eu-west-1" });
  const { config, sources } = resolveConfig({ [`${P}aws-secret-name`]: "from-pod" }, env);
  assert.equal(config.awsSecretName, "from-pod");
  assert.equal(sources.awsSecretName, "annotation");
  assert.equal(config.awsRegion, "eu-west-1");
  assert.equal(sources.awsRegion, "env");
  assert.equal(config.awsSsmParameterPath, "");
  assert.equal(sources.awsSsmParameterPath, "default");
});

test("resolveConfig() lets an empty string annotation override the env (Go behaviour)", () => {
  const { config, sources } = resolveConfig(
    { [`${P}piggy-address`]: "" },
    envOf({ PIGGY_ADDRESS: "https://piggy" }),
  );
  assert.equal(config.piggyAddress, "");
  assert.equal(sources.piggyAddress, "annotation");
});

test("resolveConfig() treats an empty env var as unset", () => {
  const { config, sources } = resolveConfig({}, envOf({ PIGGY_ADDRESS: "", STANDALONE: "" }));
  assert.equal(config.piggyAddress, "");
  assert.equal(sources.piggyAddress, "default");
  assert.equal(sources.standalone, "default");
});

test("resolveConfig() parses booleans from annotation and env", () => {
  const annotated = resolveConfig({ [`${P}debug`]: "true" }, envOf({ DEBUG: "false" }));
  assert.equal(annotated.config.debug, true);
  const fromEnv = resolveConfig(undefined, envOf({ DEBUG: "false", PIGGY_IGNORE_NO_ENV: "1" }));
  assert.equal(fromEnv.config.debug, false);
  assert.equal(fromEnv.config.piggyIgnoreNoEnv, true);
  assert.equal(fromEnv.sources.debug, "env");
});

test("resolveConfig() parses integers from annotation and env", () => {
  assert.equal(
    resolveConfig({ [`${P}piggy-number-of-retry`]: "123" }, envOf({ PIGGY_NUMBER_OF_RETRY: "456" }))
      .config.piggyNumberOfRetry,
    123,
  );
  assert.equal(
    resolveConfig(undefined, envOf({ PIGGY_NUMBER_OF_RETRY: "456" })).config.piggyNumberOfRetry,
    456,
  );
});

test("resolveConfig() reports a bad integer annotation and uses the default (not silently 0 as in Go Piggy)", () => {
  const { config, sources, problems } = resolveConfig(
    { [`${P}piggy-number-of-retry`]: "abc" },
    noEnv,
  );
  assert.equal(config.piggyNumberOfRetry, 0);
  assert.equal(sources.piggyNumberOfRetry, "default");
  assert.equal(problems.length, 1);
  assert.equal(problems[0]?.key, "piggy-number-of-retry");
  assert.equal(problems[0]?.deny, false);
  assert.equal(problems[0]?.source, "annotation");
  assert.match(
    problems[0]?.message ?? "",
    /piggysec\.com\/piggy-number-of-retry.*"abc".*whole number/,
  );
});

test("resolveConfig() falls back to the env value when the annotation is bad", () => {
  const { config, sources, problems } = resolveConfig(
    { [`${P}piggy-number-of-retry`]: "-1" },
    envOf({ PIGGY_NUMBER_OF_RETRY: "5" }),
  );
  assert.equal(config.piggyNumberOfRetry, 5);
  assert.equal(sources.piggyNumberOfRetry, "env");
  assert.match(problems[0]?.message ?? "", /"-1".*using 5 \(env\)/);
});

test("resolveConfig() reports a bad env value and uses the default", () => {
  const { config, problems } = resolveConfig(undefined, envOf({ DEBUG: "yes" }));
  assert.equal(config.debug, false);
  assert.equal(problems[0]?.source, "env");
  assert.match(problems[0]?.message ?? "", /env DEBUG value "yes": not a boolean/);
});

const WARNED: [string, string, string][] = [
  ["debug", "yes", "boolean"],
  ["piggy-ignore-no-env", "on", "boolean"],
  ["piggy-psp-allow-privilege-escalation", "yes", "boolean"],
  ["piggy-initial-delay", "5", "Go duration"],
  ["piggy-initial-delay", "-5s", "Go duration"],
  ["piggy-env-resource-cpu-request", "fast", "quantity"],
  ["piggy-env-resource-memory-limit", "64MB", "quantity"],
  ["piggy-env-volume-size-limit", "-1Gi", "quantity"],
  ["piggy-env-image-pull-policy", "always", "IfNotPresent"],
  ["piggy-env-volume-medium", "memory", "Memory"],
];

for (const [key, value, reason] of WARNED) {
  test(`resolveConfig() warns about ${key}: ${JSON.stringify(value)} and keeps the default`, () => {
    const { config, sources, problems } = resolveConfig({ [`${P}${key}`]: value }, noEnv);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.deny, false);
    assert.ok(problems[0]?.message.includes(reason), problems[0]?.message);
    const field = Object.entries(sources).find(([, source]) => source !== "default");
    assert.equal(field, undefined);
    assert.ok(!Object.values(config).includes(value));
  });
}

test("resolveConfig() accepts a valid initial delay and keeps its text", () => {
  const { config, problems } = resolveConfig({ [`${P}piggy-initial-delay`]: "1m30s" }, noEnv);
  assert.equal(config.piggyInitialDelay, "1m30s");
  assert.deepEqual(problems, []);
});

test('resolveConfig() denies piggy-enforce-integrity: "yes" instead of turning integrity off', () => {
  const { config, problems } = resolveConfig({ [`${P}piggy-enforce-integrity`]: "yes" }, noEnv);
  assert.equal(config.piggyEnforceIntegrity, true);
  assert.equal(problems.length, 1);
  assert.equal(problems[0]?.deny, true);
  assert.match(problems[0]?.message ?? "", /piggysec\.com\/piggy-enforce-integrity/);
  assert.match(problems[0]?.message ?? "", /not a boolean/);
});

test("resolveConfig() denies a non-boolean standalone (it decides which identity reads AWS)", () => {
  const { config, problems } = resolveConfig({ [`${P}standalone`]: "enabled" }, noEnv);
  assert.equal(config.standalone, false);
  assert.equal(problems[0]?.deny, true);
});

test("resolveConfig() denies a non-boolean PIGGY_ENFORCE_SERVICE_ACCOUNT", () => {
  const { config, problems } = resolveConfig(
    undefined,
    envOf({ PIGGY_ENFORCE_SERVICE_ACCOUNT: "yes" }),
  );
  assert.equal(config.piggyEnforceServiceAccount, false);
  assert.equal(problems[0]?.deny, true);
  assert.equal(problems[0]?.source, "env");
});

test("resolveConfig() ignores annotations of env-only settings, with a warning", () => {
  const { config, sources, problems } = resolveConfig(
    {
      [`${P}piggy-enforce-service-account`]: "false",
      [`${P}piggy-ca-bundle`]: "-----BEGIN CERTIFICATE-----",
    },
    envOf({ PIGGY_ENFORCE_SERVICE_ACCOUNT: "true", PIGGY_CA_BUNDLE: "operator-pem" }),
  );
  assert.equal(config.piggyEnforceServiceAccount, true);
  assert.equal(sources.piggyEnforceServiceAccount, "env");
  assert.equal(config.piggyCaBundle, "operator-pem");
  assert.equal(problems.length, 2);
  for (const problem of problems) {
    assert.equal(problem.deny, false);
    assert.match(problem.message, /^Ignoring annotation .*only the webhook env/);
  }
});

test("resolveConfig() never honours piggy-skip-verify-tls and says so", () => {
  const { config, problems } = resolveConfig({ [`${P}piggy-skip-verify-tls`]: "true" }, noEnv);
  assert.equal(config.piggySkipVerifyTls, false);
  assert.match(problems[0]?.message ?? "", /not supported/);
});

test("resolveConfig() warns about unknown piggysec.com annotations but not piggy-uid or others", () => {
  const { problems } = resolveConfig(
    {
      [`${P}aws-secret-nmae`]: "typo",
      [`${P}piggy-uid`]: "{}",
      "example.com/other": "x",
    },
    noEnv,
  );
  assert.equal(problems.length, 1);
  assert.equal(problems[0]?.key, `${P}aws-secret-nmae`);
});

test("resolveConfig() reports many unknown annotations as one problem: the count and three names", () => {
  const annotations: Record<string, string> = {};
  for (let i = 0; i < 1_000; i++) annotations[`${P}typo-${i}`] = "x";
  const { problems } = resolveConfig(annotations, noEnv);
  assert.deepEqual(problems, [{
    key: `${P}typo-0`,
    source: "annotation",
    deny: false,
    message: `Ignoring 1000 unknown annotations: "${P}typo-0", "${P}typo-1", "${P}typo-2", …`,
  }]);
  const two = resolveConfig({ [`${P}a`]: "x", [`${P}b`]: "y" }, noEnv).problems;
  assert.equal(two[0]?.message, `Ignoring 2 unknown annotations: "${P}a", "${P}b"`);
});

test("resolveConfig() treats an empty non-string annotation as unset", () => {
  const { config, sources, problems } = resolveConfig(
    { [`${P}debug`]: "", [`${P}piggy-env-resource-cpu-limit`]: "" },
    envOf({ DEBUG: "true" }),
  );
  assert.equal(config.debug, true);
  assert.equal(sources.debug, "env");
  assert.equal(config.piggyEnvResourceCpuLimit, "200m");
  assert.deepEqual(problems, []);
});

test("resolveConfig() quotes at most a short prefix of a bad value", () => {
  const long = "x".repeat(500);
  const { problems } = resolveConfig({ [`${P}debug`]: long }, noEnv);
  assert.ok((problems[0]?.message.length ?? 0) < 160);
  assert.ok(!problems[0]?.message.includes(long));
});

test("resolveConfig() does not modify the annotations it is given", () => {
  const annotations = { [`${P}debug`]: "yes" };
  const copy = structuredClone(annotations);
  resolveConfig(annotations, noEnv);
  assert.deepEqual(annotations, copy);
});
