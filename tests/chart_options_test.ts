/**
 * The chart refuses, before any rollout, the webhook env values that would stop the webhook at
 * start-up: values.schema.json's `env` rules come from the options and settings tables.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { chartEnvSchemas, parseWebhookOptions } from "../src/config/webhook_options.ts";
import { helmTemplate, renderChart } from "./_chart.ts";

/** A value the webhook refuses, for every variable the schema checks. */
const BAD: Readonly<Record<string, string | number>> = {
  DEBUG: "yes",
  LOG_LEVEL: "loud",
  PIGGY_ANSWER_ALL_KEYS: "on",
  PIGGY_AWS_ALLOW_INSTANCE_METADATA: "enabled",
  PIGGY_CERT_POLL_INTERVAL: "10",
  PIGGY_TLS_HANDSHAKE_TIMEOUT: "5",
  PIGGY_HEADER_TIMEOUT: "ten seconds",
  PIGGY_IDLE_TIMEOUT: -30,
  PIGGY_MAX_CONNECTIONS: "many",
  PIGGY_MAX_HEADER_BYTES: 12,
  PIGGY_MAX_REFERENCED_OBJECTS: 0,
  PIGGY_KUBE_LOOKUP_CONCURRENCY: 65,
  PIGGY_MAX_CONTAINERS: "lots",
  PIGGY_MAX_ENV_PER_CONTAINER: -1,
  PIGGY_SECRET_TIMEOUT: "7",
  PIGGY_AWS_ATTEMPT_TIMEOUT: "three seconds",
  PIGGY_AWS_SESSION_DURATION: "15 minutes",
  PIGGY_AWS_SESSION_CACHE_SIZE: 0,
  PIGGY_KUBE_CALL_TIMEOUT: -3,
  PIGGY_ENFORCE_INTEGRITY: "no",
  PIGGY_ENFORCE_SERVICE_ACCOUNT: "yes",
  PIGGY_ENV_IMAGE_PULL_POLICY: "sometimes",
  PIGGY_ENV_RESOURCE_CPU_LIMIT: "2 cores",
  PIGGY_ENV_RESOURCE_CPU_REQUEST: "-1",
  PIGGY_ENV_RESOURCE_MEMORY_LIMIT: "64MB",
  PIGGY_ENV_RESOURCE_MEMORY_REQUEST: "lots",
  PIGGY_ENV_VOLUME_MEDIUM: "memory",
  PIGGY_ENV_VOLUME_SIZE_LIMIT: "1 Gi",
  PIGGY_IGNORE_NO_ENV: "maybe",
  PIGGY_INITIAL_DELAY: 5,
  PIGGY_NUMBER_OF_RETRY: "-1",
  PIGGY_PSP_ALLOW_PRIVILEGE_ESCALATION: "nope",
  PIGGY_SECRET_CACHE_TTL: "-1s",
  PIGGY_SECRET_CACHE_SIZE: 0,
  PIGGY_TOKEN_REVIEW_CACHE_TTL: "ten seconds",
  PIGGY_TOKEN_REVIEW_CACHE_SIZE: "big",
  PIGGY_MAX_TOKEN_REVIEWS: 0,
  PIGGY_SECRET_ACCESS_POLICY: "open",
  PIGGY_SECRET_NAME_GUARD_PREFIX: "piggy/../",
  PIGGY_POD_CACHE_TTL: "2 s",
  PIGGY_SHUTDOWN_DELAY: "5 s",
  STANDALONE: "enabled",
  IMAGE_SKIP_VERIFY_REGISTRY: "sure",
  PIGGY_IMAGE_LOOKUP: "always",
  PIGGY_IMAGE_LOOKUP_TIMEOUT: "3 s",
  PIGGY_IMAGE_CACHE_SIZE: "-1",
  PIGGY_IMAGE_CACHE_TTL: "5 minutes",
  PIGGY_IMAGE_PULL_SECRET_ANY_NAMESPACE: "any",
  PIGGY_REGISTRY_ALLOW_LOOPBACK: "local",
  PIGGY_IMAGE_FORBID_SKIP_VERIFY: "never",
  PIGGY_LAUNCHER_IMAGE_VOLUME: "enabled",
};

/** Values the webhook accepts, written as chart users write them. */
const GOOD: Readonly<Record<string, string | number | boolean>> = {
  DEBUG: true,
  LOG_LEVEL: "warn",
  PIGGY_ANSWER_ALL_KEYS: "True",
  PIGGY_AWS_ALLOW_INSTANCE_METADATA: false,
  PIGGY_CERT_POLL_INTERVAL: "1m30s",
  PIGGY_TLS_HANDSHAKE_TIMEOUT: "2s",
  PIGGY_HEADER_TIMEOUT: "500ms",
  PIGGY_IDLE_TIMEOUT: "1m",
  PIGGY_MAX_CONNECTIONS: 200,
  PIGGY_MAX_HEADER_BYTES: "32768",
  PIGGY_MAX_REFERENCED_OBJECTS: 20,
  PIGGY_KUBE_LOOKUP_CONCURRENCY: "4",
  PIGGY_MAX_CONTAINERS: 50,
  PIGGY_MAX_ENV_PER_CONTAINER: "300",
  PIGGY_SECRET_TIMEOUT: "5s",
  PIGGY_AWS_ATTEMPT_TIMEOUT: "2s",
  PIGGY_AWS_SESSION_DURATION: "1h",
  PIGGY_AWS_SESSION_CACHE_SIZE: "512",
  PIGGY_KUBE_CALL_TIMEOUT: "1500ms",
  PIGGY_ENFORCE_INTEGRITY: 1,
  PIGGY_ENFORCE_SERVICE_ACCOUNT: "true",
  PIGGY_ENV_IMAGE_PULL_POLICY: "Never",
  PIGGY_ENV_RESOURCE_CPU_LIMIT: "1.5",
  PIGGY_ENV_RESOURCE_CPU_REQUEST: "50m",
  PIGGY_ENV_RESOURCE_MEMORY_LIMIT: "1e9",
  PIGGY_ENV_RESOURCE_MEMORY_REQUEST: 134217728,
  PIGGY_ENV_VOLUME_MEDIUM: "Memory",
  PIGGY_ENV_VOLUME_SIZE_LIMIT: "1Gi",
  PIGGY_IGNORE_NO_ENV: "f",
  PIGGY_INITIAL_DELAY: "1.5s",
  PIGGY_NUMBER_OF_RETRY: 3,
  PIGGY_PSP_ALLOW_PRIVILEGE_ESCALATION: "FALSE",
  PIGGY_SECRET_CACHE_TTL: 0,
  PIGGY_SECRET_CACHE_SIZE: 2048,
  PIGGY_TOKEN_REVIEW_CACHE_TTL: "5s",
  PIGGY_TOKEN_REVIEW_CACHE_SIZE: "10000",
  PIGGY_MAX_TOKEN_REVIEWS: "128",
  PIGGY_SECRET_ACCESS_POLICY: "allowed-sa",
  PIGGY_SECRET_NAME_GUARD_PREFIX: "org/piggy-",
  PIGGY_POD_CACHE_TTL: "500ms",
  PIGGY_SHUTDOWN_DELAY: "0s",
  STANDALONE: "0",
  IMAGE_SKIP_VERIFY_REGISTRY: "false",
  PIGGY_IMAGE_LOOKUP: "warn",
  PIGGY_IMAGE_LOOKUP_TIMEOUT: "2500ms",
  PIGGY_IMAGE_CACHE_SIZE: 0,
  PIGGY_IMAGE_CACHE_TTL: "1h",
  PIGGY_IMAGE_PULL_SECRET_ANY_NAMESPACE: false,
  PIGGY_REGISTRY_ALLOW_LOOPBACK: "false",
  PIGGY_IMAGE_FORBID_SKIP_VERIFY: true,
  PIGGY_LAUNCHER_IMAGE_VOLUME: "1",
};

test("the examples cover every env variable the chart schema checks", () => {
  const checked = Object.keys(chartEnvSchemas()).sort();
  assert.deepEqual(Object.keys(BAD).sort(), checked);
  assert.deepEqual(Object.keys(GOOD).sort(), checked);
});

for (const [name, value] of Object.entries(BAD)) {
  test(`env.${name}=${JSON.stringify(value)} stops the webhook and fails helm before rollout`, async () => {
    assert.throws(() => parseWebhookOptions((key) => key === name ? String(value) : undefined), {
      message: new RegExp(`^Cannot use ${name}=`),
    });
    const result = await helmTemplate({ values: { env: { [name]: value } } });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /values don't meet the specifications of the schema/);
    assert.match(result.stderr, new RegExp(name));
  });
}

test("the chart and the webhook accept valid values of every checked env variable", async () => {
  const env = Object.fromEntries(
    Object.entries(GOOD).map(([name, value]) => [name, String(value)]),
  );
  parseWebhookOptions((name) => env[name]);
  const objects = await renderChart({ values: { env: GOOD } });
  assert.ok(objects.some((object) => object.kind === "Deployment"));
});
