import { test } from "node:test";
import assert from "node:assert/strict";
import { ENV } from "../constants.ts";
import { parseGoDuration } from "./duration.ts";
import { parseMedium, parsePullPolicy, parseQuantity } from "./parse.ts";
import { envNameOf, fieldNameOf, type PiggyConfig, SETTINGS } from "./settings.ts";

// Every field of PiggyConfig; the compiler rejects a missing or extra key.
const FIELDS: Record<keyof PiggyConfig, true> = {
  awsSecretName: true,
  awsSsmParameterPath: true,
  awsRegion: true,
  awsSecretVersion: true,
  piggyAddress: true,
  standalone: true,
  piggyEnvImage: true,
  piggyEnvImagePullPolicy: true,
  piggyEnvResourceCpuRequest: true,
  piggyEnvResourceMemoryRequest: true,
  piggyEnvResourceCpuLimit: true,
  piggyEnvResourceMemoryLimit: true,
  piggyEnvVolumeMedium: true,
  piggyEnvVolumeSizeLimit: true,
  piggyPspAllowPrivilegeEscalation: true,
  piggyIgnoreNoEnv: true,
  piggyEnforceIntegrity: true,
  debug: true,
  imagePullSecret: true,
  imagePullSecretNamespace: true,
  imageSkipVerifyRegistry: true,
  imagePlatform: true,
  piggyDnsResolver: true,
  piggyInitialDelay: true,
  piggyNumberOfRetry: true,
  piggyDefaultSecretNamePrefix: true,
  piggyDefaultSecretNameSuffix: true,
  piggyEnforceServiceAccount: true,
  piggySkipVerifyTls: true,
  piggyCaBundle: true,
};

// The settings Go Piggy 0.7 read (piggy-uid is not a setting).
const GO_KEYS = [
  "aws-secret-name",
  "aws-ssm-parameter-path",
  "aws-region",
  "aws-secret-version",
  "piggy-address",
  "standalone",
  "piggy-env-image",
  "piggy-env-image-pull-policy",
  "piggy-env-resource-cpu-request",
  "piggy-env-resource-memory-request",
  "piggy-env-resource-cpu-limit",
  "piggy-env-resource-memory-limit",
  "piggy-psp-allow-privilege-escalation",
  "piggy-ignore-no-env",
  "piggy-enforce-integrity",
  "debug",
  "image-pull-secret",
  "image-pull-secret-namespace",
  "image-skip-verify-registry",
  "image-platform",
  "piggy-dns-resolver",
  "piggy-initial-delay",
  "piggy-number-of-retry",
  "piggy-default-secret-name-prefix",
  "piggy-default-secret-name-suffix",
  "piggy-enforce-service-account",
  "piggy-skip-verify-tls",
];

test("SETTINGS has one row per PiggyConfig field and every Go Piggy setting", () => {
  const fields = SETTINGS.map((entry) => entry.field).sort();
  assert.deepEqual(fields, Object.keys(FIELDS).sort());
  const keys = new Set(SETTINGS.map((entry) => entry.key));
  assert.equal(keys.size, SETTINGS.length);
  for (const key of GO_KEYS) assert.ok(keys.has(key), key);
});

test("envNameOf() and fieldNameOf() derive the env and field names from a key", () => {
  assert.equal(envNameOf("aws-region"), "AWS_REGION");
  assert.equal(envNameOf("debug"), "DEBUG");
  assert.equal(fieldNameOf("aws-ssm-parameter-path"), "awsSsmParameterPath");
});

test("SETTINGS defaults are valid values of their own type", () => {
  for (const entry of SETTINGS) {
    switch (entry.type) {
      case "bool":
        assert.equal(typeof entry.default, "boolean", entry.key);
        break;
      case "int":
        assert.ok(Number.isInteger(entry.default), entry.key);
        break;
      case "quantity":
        assert.doesNotThrow(() => parseQuantity(entry.default as string), entry.key);
        break;
      case "duration":
        if (entry.default !== "") parseGoDuration(entry.default as string);
        break;
      case "pullPolicy":
        assert.doesNotThrow(() => parsePullPolicy(entry.default as string), entry.key);
        break;
      case "medium":
        assert.doesNotThrow(() => parseMedium(entry.default as string), entry.key);
        break;
      case "string":
        assert.equal(typeof entry.default, "string", entry.key);
    }
  }
});

test("SETTINGS injects only PIGGY_* names the launcher knows", () => {
  const known = new Set<string>(Object.values(ENV));
  for (const entry of SETTINGS) {
    if (entry.injectedAs !== undefined) assert.ok(known.has(entry.injectedAs), entry.key);
  }
});
