import { test } from "node:test";
import assert from "node:assert/strict";
import {
  logLevelOf,
  parseWebhookOptions,
  settingLookup,
  WEBHOOK_OPTIONS,
  withCaBundle,
} from "./webhook_options.ts";
import { resolveConfig } from "./resolve_config.ts";

function envOf(values: Record<string, string>): (name: string) => string | undefined {
  return (name) => (Object.hasOwn(values, name) ? values[name] : undefined);
}

test("parseWebhookOptions() returns every default for an empty environment", () => {
  const options = parseWebhookOptions(envOf({}));
  for (const [field, row] of Object.entries(WEBHOOK_OPTIONS)) {
    assert.deepEqual(options[field as keyof typeof WEBHOOK_OPTIONS], row.default, row.env);
  }
  assert.deepEqual(options.settingEnv, {});
  assert.equal(logLevelOf(options), "info");
});

test("parseWebhookOptions() parses each option once into its typed value", () => {
  const options = parseWebhookOptions(envOf({
    LISTEN_ADDRESS: "127.0.0.1:9443",
    TLS_CERT_FILE: "/certs/tls.crt",
    TLS_PRIVATE_KEY_FILE: "/certs/tls.key",
    PIGGY_CERT_POLL_INTERVAL: "1m",
    PIGGY_SHUTDOWN_DELAY: "0s",
    PIGGY_ANSWER_ALL_KEYS: "T",
    PIGGY_AWS_ALLOW_INSTANCE_METADATA: "1",
    PIGGY_SECRET_CACHE_TTL: "1m30s",
    PIGGY_TOKEN_AUDIENCES: " piggy , ,other,",
    PIGGY_SEAL_KEY_FILES: "/seal/key, /seal/previous-key",
    PIGGY_LEGACY_PODS: "false",
    PIGGY_LEGACY_PODS_CREATED_BEFORE: "2026-03-01T12:00:00.5+01:00",
    DEBUG: "true",
    LOG_LEVEL: "Warning",
  }));
  assert.deepEqual(options.listen, { hostname: "127.0.0.1", port: 9443 });
  assert.equal(options.certPollMs, 60_000);
  assert.equal(options.shutdownDelayMs, 0);
  assert.equal(options.answerAllKeys, true);
  assert.equal(options.allowInstanceMetadata, true);
  assert.equal(options.secretCacheTtlMs, 90_000);
  assert.deepEqual(options.tokenAudiences, ["piggy", "other"]);
  assert.deepEqual(options.sealKeyFiles, ["/seal/key", "/seal/previous-key"]);
  assert.equal(options.legacyPods, false);
  assert.equal(options.legacyPodsCreatedBefore, Date.parse("2026-03-01T11:00:00.500Z"));
  assert.equal(logLevelOf(options), "warn");
  assert.equal(logLevelOf({ ...options, logLevel: undefined }), "debug");
});

const FATAL: [string, string, RegExp][] = [
  ["PIGGY_ENFORCE_SERVICE_ACCOUNT", "yes", /not a boolean.*piggy-enforce-service-account/],
  ["PIGGY_ANSWER_ALL_KEYS", "on", /not a boolean/],
  ["PIGGY_ALLOWED_ADDRESSES", "http://b.svc", /"http:\/\/b\.svc" is not an https URL/],
  ["PIGGY_SECRET_ACCESS_POLICY", "open", /not one of namespace, allowed-sa, any/],
  ["PIGGY_SECRET_NAME_GUARD_PREFIX", "a/../", /empty, \. and \.\. segments/],
  ["PIGGY_SECRET_NAME_GUARD_PREFIX", "/abs/", /empty, \. and \.\. segments/],
  ["PIGGY_SECRET_NAME_GUARD_PREFIX", "a b/", /only letters/],
  ["LOG_LEVEL", "loud", /not one of debug, info, warn, error/],
  ["DEBUG", "yes", /not a boolean/],
  ["LISTEN_ADDRESS", "8443", /expected "host:port"/],
  ["PIGGY_CERT_POLL_INTERVAL", "10ms", /below 100ms/],
  ["PIGGY_SHUTDOWN_DELAY", "5", /not a Go duration/],
  ["PIGGY_HEADER_TIMEOUT", "10m1ms", /outside 100ms\.\.10m/],
  ["PIGGY_MAX_CONNECTIONS", "0", /outside 1\.\.100000/],
  ["PIGGY_MAX_HEADER_BYTES", "1k", /not a whole number/],
  ["PIGGY_SEAL_KEY_FILES", "/a,/b,/c", /at most 2 files/],
  ["PIGGY_LEGACY_PODS", "maybe", /not a boolean/],
  ["PIGGY_LEGACY_PODS_CREATED_BEFORE", "2026-03-01", /not an RFC 3339 time/],
  ["PIGGY_LEGACY_PODS_CREATED_BEFORE", "2026-02-30T00:00:00Z", /not an RFC 3339 time/],
  ["PIGGY_SECRET_CACHE_TTL", "-1s", /not a Go duration/],
  ["PIGGY_SECRET_CACHE_SIZE", "0", /outside 1\.\.100000/],
  ["PIGGY_TOKEN_REVIEW_CACHE_TTL", "11s", /above 10s/],
  ["PIGGY_TOKEN_REVIEW_CACHE_SIZE", "many", /not a whole number/],
  ["PIGGY_MAX_TOKEN_REVIEWS", "0", /outside 1\.\.10000/],
  ["PIGGY_POD_CACHE_TTL", "6s", /above 5s/],
  ["PIGGY_AWS_ALLOW_INSTANCE_METADATA", "enabled", /not a boolean/],
  ["STANDALONE", "enabled", /not a boolean/],
  ["PIGGY_ENFORCE_INTEGRITY", "no", /not a boolean/],
  ["PIGGY_NUMBER_OF_RETRY", "-1", /not a whole number/],
  ["PIGGY_INITIAL_DELAY", "soon", /not a Go duration/],
  ["PIGGY_ENV_IMAGE_PULL_POLICY", "sometimes", /not Always, IfNotPresent or Never/],
  ["PIGGY_ENV_RESOURCE_MEMORY_LIMIT", "64MB", /not a quantity/],
  ["PIGGY_ENV_VOLUME_MEDIUM", "memory", /not "" or "Memory"/],
];

for (const [name, value, reason] of FATAL) {
  test(`parseWebhookOptions() refuses ${name}=${JSON.stringify(value)} and names it`, () => {
    assert.throws(
      () => parseWebhookOptions(envOf({ [name]: value })),
      (error: Error) => {
        assert.equal(error.name, "SyntaxError");
        assert.ok(error.message.startsWith(`Cannot use ${name}=${JSON.stringify(value)}: `));
        assert.match(error.message, reason);
        assert.doesNotMatch(error.message, /\n/);
        return true;
      },
    );
  });
}

test("parseWebhookOptions() accepts a bounded option at both ends of its range", () => {
  const low = parseWebhookOptions(
    envOf({ PIGGY_IDLE_TIMEOUT: "100ms", PIGGY_MAX_CONNECTIONS: "1" }),
  );
  const high = parseWebhookOptions(
    envOf({ PIGGY_IDLE_TIMEOUT: "10m", PIGGY_MAX_CONNECTIONS: "100000" }),
  );
  assert.deepEqual([low.idleTimeoutMs, low.maxConnections], [100, 1]);
  assert.deepEqual([high.idleTimeoutMs, high.maxConnections], [600_000, 100_000]);
});

test("parseWebhookOptions() quotes at most a short prefix of a bad value", () => {
  assert.throws(
    () => parseWebhookOptions(envOf({ LOG_LEVEL: "x".repeat(500) })),
    (error: Error) => error.message.length < 120,
  );
});

test("parseWebhookOptions() refuses only one of the TLS files", () => {
  assert.throws(
    () => parseWebhookOptions(envOf({ TLS_CERT_FILE: "/certs/tls.crt" })),
    /TLS_CERT_FILE and TLS_PRIVATE_KEY_FILE must be set together/,
  );
});

test("parseWebhookOptions() keeps valid setting fallbacks for resolveConfig, and empty ones unset", () => {
  const options = parseWebhookOptions(envOf({
    AWS_SECRET_NAME: "team/app",
    STANDALONE: "true",
    PIGGY_ADDRESS: "",
    PIGGY_SKIP_VERIFY_TLS: "maybe",
  }));
  assert.deepEqual(options.settingEnv, {
    AWS_SECRET_NAME: "team/app",
    STANDALONE: "true",
    PIGGY_SKIP_VERIFY_TLS: "maybe",
  });
  const { config, sources, problems } = resolveConfig({}, settingLookup(options));
  assert.equal(config.awsSecretName, "team/app");
  assert.equal(config.standalone, true);
  assert.equal(sources.piggyAddress, "default");
  // Unsupported settings are not validated at start-up: each admission still says so.
  assert.deepEqual(problems.map((problem) => problem.key), ["piggy-skip-verify-tls"]);
});

test("withCaBundle() makes the file's content the PIGGY_CA_BUNDLE fallback, without mutating", () => {
  const options = parseWebhookOptions(envOf({ PIGGY_CA_BUNDLE: "old" }));
  const updated = withCaBundle(options, "-----BEGIN CERTIFICATE-----");
  assert.equal(options.settingEnv.PIGGY_CA_BUNDLE, "old");
  assert.equal(
    resolveConfig({}, settingLookup(updated)).config.piggyCaBundle,
    "-----BEGIN CERTIFICATE-----",
  );
  assert.equal(settingLookup(updated)("constructor"), undefined);
});

test("parseWebhookOptions() refuses call timeouts that are not below PIGGY_SECRET_TIMEOUT", () => {
  assert.throws(
    () =>
      parseWebhookOptions((name) =>
        ({ PIGGY_SECRET_TIMEOUT: "3s" } as Record<string, string>)[name]
      ),
    {
      message:
        "Cannot use PIGGY_AWS_ATTEMPT_TIMEOUT (3000 ms): it must be below PIGGY_SECRET_TIMEOUT (3000 ms)",
    },
  );
});

test("parseWebhookOptions() derives the access guard: policy, alias and prefix", () => {
  const guard = (env: Record<string, string>) => parseWebhookOptions(envOf(env)).accessGuard;
  assert.deepEqual(guard({}), { policy: "namespace", prefix: "" });
  assert.deepEqual(guard({ PIGGY_ENFORCE_SERVICE_ACCOUNT: "true" }), {
    policy: "allowed-sa",
    prefix: "",
  });
  assert.equal(guard({ PIGGY_ENFORCE_SERVICE_ACCOUNT: "false" }).policy, "namespace");
  assert.equal(
    guard({ PIGGY_ENFORCE_SERVICE_ACCOUNT: "1", PIGGY_SECRET_ACCESS_POLICY: "allowed-sa" }).policy,
    "allowed-sa",
  );
  assert.equal(guard({ PIGGY_SECRET_ACCESS_POLICY: "any" }).policy, "any");
  for (const policy of ["namespace", "any"]) {
    assert.throws(
      () => guard({ PIGGY_ENFORCE_SERVICE_ACCOUNT: "true", PIGGY_SECRET_ACCESS_POLICY: policy }),
      /alias of PIGGY_SECRET_ACCESS_POLICY=allowed-sa/,
    );
  }
  // The operator's default-name prefix is the guard's default; the guard option wins.
  assert.equal(guard({ PIGGY_DEFAULT_SECRET_NAME_PREFIX: "piggy/" }).prefix, "piggy/");
  assert.equal(
    guard({ PIGGY_DEFAULT_SECRET_NAME_PREFIX: "piggy/", PIGGY_SECRET_NAME_GUARD_PREFIX: "p/" })
      .prefix,
    "p/",
  );
  assert.throws(
    () => guard({ PIGGY_DEFAULT_SECRET_NAME_PREFIX: "../" }),
    /PIGGY_DEFAULT_SECRET_NAME_PREFIX="\.\.\/" as the secret name guard prefix.*PIGGY_SECRET_NAME_GUARD_PREFIX/,
  );
});
