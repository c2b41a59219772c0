import { test } from "node:test";
import { queryLabel } from "../secrets/query.ts";
import { parseWebhookOptions, type WebhookOptions } from "../config/webhook_options.ts";
import assert from "node:assert/strict";
import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import type { TokenReviewStatus } from "kubernetes-types/authentication/v1.d.ts";
import {
  ANNOTATION_PREFIX,
  ENV,
  PIGGY_UID_ANNOTATION,
  RESERVED_KEYS,
  SECRET_PATH,
  TOKEN_HEADER,
  TOKEN_MOUNT_PATH,
} from "../constants.ts";
import { KubeApiError, KubeUnavailableError, SecretSourceError } from "../errors.ts";
import { FakeKubeClient } from "../k8s/fake.ts";
import { Logger, type LogSink } from "../log.ts";
import { deepFreeze } from "../lookup_cache.ts";
import { MemorySecretSource } from "../secrets/memory_source.ts";
import { CachingSecretSource } from "../secrets/caching_source.ts";
import type { SecretQuery, SecretSource } from "../secrets/source.ts";
import { POD_NAME_CLAIM, POD_UID_CLAIM } from "./decide.ts";
import { createSecretHandler, type SecretHandlerDeps } from "./secret_handler.ts";
import { withSeal } from "../pod/seal.ts";
import { TEST_SEAL_KEY } from "../../testing/fixtures/pods/_support.ts";

/** A value that must never reach a log line or an error body. */
const CANARY = "canary-7Qx2vZ-do-not-log";
const SIGNATURE = "c933fbddcaf73b7f6028b45404b1e81b7ee91915588d41940eea1dd6d686469f";
const TOKEN = "token-bound-test-pod-0123456789";
const LEGACY_TOKEN = "token-legacy-0123456789";
const URL_SECRET = `https://piggy.test${SECRET_PATH}`;
const ALL_TOKENS = [TOKEN, LEGACY_TOKEN, "token-other-0123456789", "token-user-0123456789"];

function saUser(namespace: string, name: string, pod?: { name: string; uid: string }) {
  const status: TokenReviewStatus = {
    authenticated: true,
    user: { username: `system:serviceaccount:${namespace}:${name}` },
  };
  if (pod && status.user) {
    status.user.extra = { [POD_NAME_CLAIM]: [pod.name], [POD_UID_CLAIM]: [pod.uid] };
  }
  return status;
}

function podWith(
  options: {
    name?: string;
    namespace?: string;
    uid?: string;
    serviceAccountName?: string;
    annotations?: Record<string, string>;
    /** The launcher's container: its PIGGY_UID and environment. */
    container?: Partial<Container>;
  } = {},
): Pod {
  // Sealed as /mutate would have: tests of the seal edit the pod after this.
  return withSeal(unsealedPod(options), options.namespace ?? "default", [TEST_SEAL_KEY]);
}

function unsealedPod(options: Parameters<typeof podWith>[0] = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: options.name ?? "test-pod",
      namespace: options.namespace ?? "default",
      uid: options.uid ?? "pod-uid-1",
      annotations: {
        [PIGGY_UID_ANNOTATION]: JSON.stringify({ "test-uid": SIGNATURE }),
        [`${ANNOTATION_PREFIX}aws-secret-name`]: "default/my-secret",
        ...options.annotations,
      },
    },
    spec: {
      serviceAccountName: options.serviceAccountName ?? "test-sa",
      containers: [{
        name: "app",
        image: "app:1",
        command: ["/piggy/piggy-env"],
        args: ["--", "python", "app.py"],
        env: [
          { name: ENV.UID, value: "test-uid" },
          ...["DB_PASS", "APP_KEY", "DB_HOST"].map((key) => ({ name: key, value: `piggy:${key}` })),
        ],
        ...options.container,
      }],
    },
  };
}

interface Setup {
  kube: FakeKubeClient;
  secrets: MemorySecretSource;
  lines: string[];
  handle: (request: Request) => Promise<Response>;
}

function setup(
  options: {
    env?: Record<string, string>;
    source?: SecretSource;
    /** Put a 60 s {@link CachingSecretSource} in front of the in-memory secrets. */
    cached?: boolean;
    maxBodyBytes?: number;
    sealKeys?: Uint8Array[];
    /** Where log lines go, instead of `lines`. */
    sink?: LogSink;
    /** Webhook options to start from (else parsed from `env`). */
    webhookOptions?: WebhookOptions;
    readBoundPod?: SecretHandlerDeps["readBoundPod"];
    onAnswer?: SecretHandlerDeps["onAnswer"];
  } = {},
): Setup {
  const kube = new FakeKubeClient()
    .put("pods", podWith())
    .putToken(TOKEN, saUser("default", "test-sa", { name: "test-pod", uid: "pod-uid-1" }))
    .putToken(LEGACY_TOKEN, saUser("default", "test-sa"));
  const secrets = new MemorySecretSource().putSecret("default/my-secret", {
    DB_PASS: CANARY,
    [ENV.ALLOWED_SA]: "default:test-sa",
  });
  const lines: string[] = [];
  const env = options.env ?? {};
  const handle = createSecretHandler({
    kube,
    secrets: options.source ??
      (options.cached ? new CachingSecretSource(secrets, { ttlMs: 60_000 }) : secrets),
    options: options.webhookOptions ?? parseWebhookOptions((name) => env[name]),
    logger: new Logger({ level: "debug", sink: options.sink ?? ((line) => lines.push(line)) }),
    sealKeys: options.sealKeys ?? [TEST_SEAL_KEY],
    ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
    ...(options.readBoundPod ? { readBoundPod: options.readBoundPod } : {}),
    ...(options.onAnswer ? { onAnswer: options.onAnswer } : {}),
  });
  return { kube, secrets, lines, handle };
}

function secretRequest(
  body: unknown = { resources: "pods", name: "test-pod", uid: "test-uid", signature: SIGNATURE },
  options: { token?: string | null; contentType?: string | null; method?: string } = {},
): Request {
  const headers = new Headers();
  const contentType = options.contentType === undefined ? "application/json" : options.contentType;
  if (contentType !== null) headers.set("content-type", contentType);
  const token = options.token === undefined ? TOKEN : options.token;
  if (token !== null) headers.set(TOKEN_HEADER, token);
  const method = options.method ?? "POST";
  const init: RequestInit = { method, headers };
  if (method !== "GET" && method !== "HEAD") {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  return new Request(URL_SECRET, init);
}

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  audit: Record<string, unknown>;
}

/**
 * Sends one request and checks what every request must satisfy: exactly one audit line, no token
 * and no canary in any log line, no canary in an error body, JSON with no-store caching.
 */
async function send(context: Setup, request: Request): Promise<Answer> {
  const before = context.lines.length;
  const response = await context.handle(request);
  const text = await response.text();
  const added = context.lines.slice(before);
  const audits = added
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((record) => String(record.message).startsWith("Request from "));
  assert.equal(audits.length, 1, `exactly one audit line, got ${added.join("\n")}`);
  for (const line of context.lines) {
    assert.ok(!line.includes(CANARY), `canary in log line ${line}`);
    for (const token of ALL_TOKENS) assert.ok(!line.includes(token), `token in log ${line}`);
  }
  if (response.status !== 200) assert.ok(!text.includes(CANARY), `canary in error ${text}`);
  assert.equal(response.headers.get("content-type"), "application/json");
  assert.equal(response.headers.get("cache-control"), "no-store");
  const audit = audits[0] ?? {};
  assert.equal(audit.status, response.status);
  return {
    status: response.status,
    headers: response.headers,
    body: JSON.parse(text) as Record<string, unknown>,
    audit,
  };
}

async function assertFailure(
  context: Setup,
  request: Request,
  status: number,
  error?: string,
): Promise<Answer> {
  const answer = await send(context, request);
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(typeof answer.body.error, "string");
  assert.equal(typeof answer.body.message, "string");
  if (error) assert.equal(answer.body.error, error);
  assert.notEqual(answer.audit.level, "info");
  assert.match(String(answer.audit.message), / was error: /);
  return answer;
}

// --- Go conformance: the handler -----------------------------------------------------------

test("createSecretHandler() answers 200 with the secret's values", async () => {
  const context = setup();
  const answer = await send(context, secretRequest());
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body, { DB_PASS: CANARY });
  assert.equal(answer.audit.level, "info");
  assert.equal(
    answer.audit.message,
    "Request from [sa=default:test-sa], [pod=test-pod] was successful",
  );
  assert.equal(answer.audit.namespace, "default");
  assert.equal(answer.audit.pod_name, "test-pod");
  assert.equal(answer.audit.service_account, "default:test-sa");
  assert.equal(answer.audit.secret_name, "default/my-secret");
  assert.deepEqual(context.secrets.queries.map(queryLabel), ["default/my-secret"]);
});

test("createSecretHandler() answers 401 without X-Token, before parsing the body", async () => {
  const context = setup();
  await assertFailure(context, secretRequest({}, { token: null }), 401, "Unauthenticated");
  await assertFailure(context, secretRequest("{invalid", { token: "" }), 401);
  assert.deepEqual(context.kube.calls, []);
});

test("createSecretHandler() answers 405 with Allow for other methods", async () => {
  const context = setup();
  for (const method of ["GET", "PUT", "DELETE"]) {
    const answer = await assertFailure(context, secretRequest({}, { method }), 405);
    assert.equal(answer.headers.get("allow"), "POST");
  }
});

test("createSecretHandler() answers 415 for other content types (Go answered 400)", async () => {
  const context = setup();
  await assertFailure(context, secretRequest({}, { contentType: "text/plain" }), 415);
  await assertFailure(context, secretRequest({}, { contentType: null }), 415);
  await assertFailure(context, secretRequest({}, { contentType: "application/jsonx" }), 415);
  // The content type is checked before the token, as in Go Piggy.
  await assertFailure(context, secretRequest({}, { contentType: "text/plain", token: null }), 415);
});

test("createSecretHandler() accepts application/json with parameters (Go required the exact text)", async () => {
  const context = setup();
  for (
    const contentType of ["application/json; charset=utf-8", "Application/JSON ;charset=UTF-8"]
  ) {
    const answer = await send(context, secretRequest(undefined, { contentType }));
    assert.equal(answer.status, 200, contentType);
  }
});

test("createSecretHandler() answers 400 for a body that is not JSON", async () => {
  const context = setup();
  const answer = await assertFailure(context, secretRequest("{invalid"), 400, "BadRequest");
  assert.ok(!String(answer.body.message).includes("{invalid"));
  assert.deepEqual(context.kube.calls, []);
});

test("createSecretHandler() answers 400 for a malformed payload", async () => {
  const context = setup();
  for (
    const body of [
      { name: "" },
      {},
      [],
      null,
      { name: 7 },
      { name: "test-pod", uid: 1, signature: SIGNATURE },
      { name: "test-pod", uid: "test-uid", signature: null },
      { name: "../secrets/x" },
      { name: "Test-Pod" },
    ]
  ) {
    await assertFailure(context, secretRequest(body), 400, "BadRequest");
  }
  assert.deepEqual(context.kube.calls, []);
});

test("createSecretHandler() ignores resources and treats missing uid/signature as empty", async () => {
  const context = setup();
  await assertFailure(context, secretRequest({ name: "test-pod" }), 403, "AccessDenied");
  const answer = await send(
    context,
    secretRequest({ resources: 42, name: "test-pod", uid: "test-uid", signature: SIGNATURE }),
  );
  assert.equal(answer.status, 200);
});

test("createSecretHandler() answers 403 when PIGGY_ALLOWED_SA refuses the caller", async () => {
  const context = setup();
  context.secrets.putSecret("default/my-secret", { DB_PASS: CANARY, [ENV.ALLOWED_SA]: "other:sa" });
  const answer = await assertFailure(context, secretRequest(), 403, "AccessDenied");
  assert.equal(answer.audit.secret_name, "default/my-secret");
  assert.equal(answer.audit.level, "warn");
});

test("createSecretHandler() maps other failures by kind, not to 400 (an AWS error is a 502)", async () => {
  const context = setup();
  context.secrets.putSecret("default/my-secret", { DB_PASS: CANARY });
  const pod = podWith({
    annotations: { [`${ANNOTATION_PREFIX}aws-secret-name`]: "default/missing" },
  });
  context.kube.put("pods", pod);
  const answer = await assertFailure(context, secretRequest(), 502, "SecretNotFound");
  assert.match(
    String(answer.body.message),
    /"default\/missing": the secret or parameter path does not exist/,
  );
  assert.equal(answer.audit.error_code, "ResourceNotFoundException");
  assert.equal(answer.audit.level, "error");
});

// --- Go conformance: the access decision through the handler------------------------------

test("createSecretHandler() answers 401 for an unauthenticated token", async () => {
  const context = setup();
  await assertFailure(context, secretRequest(undefined, { token: "token-unknown-0123" }), 401);
});

test("createSecretHandler() answers 404 for a pod that does not exist", async () => {
  const context = setup();
  const body = { name: "non-existent-pod", uid: "test-uid", signature: SIGNATURE };
  const answer = await assertFailure(
    context,
    secretRequest(body, { token: LEGACY_TOKEN }),
    404,
    "NotFound",
  );
  assert.match(String(answer.body.message), /non-existent-pod/);
});

test("createSecretHandler() answers 403 for a wrong signature", async () => {
  const context = setup();
  const body = { name: "test-pod", uid: "test-uid", signature: "wrong-signature" };
  const answer = await assertFailure(context, secretRequest(body), 403, "AccessDenied");
  assert.match(String(answer.body.message), /invalid signature/i);
  assert.deepEqual(context.secrets.queries, []);
});

test("createSecretHandler() with integrity off fetches for a known uid", async () => {
  const context = setup();
  context.kube.put(
    "pods",
    podWith({ annotations: { [`${ANNOTATION_PREFIX}piggy-enforce-integrity`]: "false" } }),
  );
  const body = { name: "test-pod", uid: "test-uid", signature: "other-command" };
  const answer = await send(context, secretRequest(body));
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body, { DB_PASS: CANARY });
  await assertFailure(context, secretRequest({ ...body, uid: "unknown" }), 403);
});

test("createSecretHandler() answers 403 when piggy-enforce-integrity is not a boolean", async () => {
  const context = setup();
  context.kube.put(
    "pods",
    podWith({ annotations: { [`${ANNOTATION_PREFIX}piggy-enforce-integrity`]: "yes" } }),
  );
  const body = { name: "test-pod", uid: "test-uid", signature: "other-command" };
  await assertFailure(context, secretRequest(body), 403, "AccessDenied");
  assert.deepEqual(context.secrets.queries, []);
});

test("createSecretHandler() answers 403 for a service account mismatch", async () => {
  const context = setup();
  context.kube.putToken("token-other-0123456789", saUser("default", "other-sa"));
  const answer = await assertFailure(
    context,
    secretRequest(undefined, { token: "token-other-0123456789" }),
    403,
  );
  assert.match(String(answer.body.message), /invalid service account found/i);
  assert.equal(answer.audit.service_account, "default:other-sa");
});

test("createSecretHandler() authorizes every caller before a cached secret is used", async () => {
  const context = setup({ cached: true });
  const warm = await send(context, secretRequest());
  assert.deepEqual(warm.body, { DB_PASS: CANARY });
  assert.equal(context.secrets.queries.length, 1);

  // Same secret, another service account: the cached values are refused by PIGGY_ALLOWED_SA.
  context.kube
    .put("pods", podWith({ name: "other-pod", uid: "pod-uid-2", serviceAccountName: "other-sa" }))
    .putToken(
      "token-other-0123456789",
      saUser("default", "other-sa", { name: "other-pod", uid: "pod-uid-2" }),
    );
  const otherBody = { name: "other-pod", uid: "test-uid", signature: SIGNATURE };
  const other = await assertFailure(
    context,
    secretRequest(otherBody, { token: "token-other-0123456789" }),
    403,
    "AccessDenied",
  );
  assert.equal(other.audit.service_account, "default:other-sa");
  // The warm pod with a forged command, a token of another service account, no valid token.
  const forged = { name: "test-pod", uid: "test-uid", signature: "other-command" };
  await assertFailure(context, secretRequest(forged), 403, "AccessDenied");
  context.kube.putToken("token-user-0123456789", saUser("default", "other-sa"));
  await assertFailure(context, secretRequest(undefined, { token: "token-user-0123456789" }), 403);
  await assertFailure(context, secretRequest(undefined, { token: "not-a-token-0000" }), 401);

  const again = await send(context, secretRequest());
  assert.deepEqual(again.body, { DB_PASS: CANARY });
  assert.equal(context.secrets.queries.length, 1, "every answer came from one AWS read");
});

test("createSecretHandler() refuses an unknown uid even with an empty signature (Go Piggy let it through)", async () => {
  const context = setup();
  context.kube.put("pods", podWith({ annotations: { [PIGGY_UID_ANNOTATION]: "{}" } }));
  for (const signature of ["sig", ""]) {
    const body = { name: "test-pod", uid: "some-uid", signature };
    await assertFailure(context, secretRequest(body), 403, "AccessDenied");
  }
  assert.deepEqual(context.secrets.queries, []);
});

test("createSecretHandler() applies PIGGY_ALLOWED_SA with trimmed entries", async () => {
  const context = setup();
  context.secrets.putSecret("default/my-secret", {
    DB_PASS: CANARY,
    [ENV.ALLOWED_SA]: "other:sa, default:test-sa",
  });
  const answer = await send(context, secretRequest());
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body, { DB_PASS: CANARY });
});

test("createSecretHandler() follows PIGGY_ENFORCE_SERVICE_ACCOUNT as allowed-sa", async () => {
  const off = setup();
  off.secrets.putSecret("default/my-secret", { DB_PASS: CANARY });
  assert.equal((await send(off, secretRequest())).status, 200);
  const on = setup({ env: { [ENV.ENFORCE_SERVICE_ACCOUNT]: "true" } });
  on.secrets.putSecret("default/my-secret", { DB_PASS: CANARY });
  const refused = await assertFailure(on, secretRequest(), 403, "AccessDenied");
  assert.match(String(refused.body.message), /PIGGY_SECRET_ACCESS_POLICY=allowed-sa/);
  // A secret that lists the caller passes with enforcement on.
  on.secrets.putSecret("default/my-secret", {
    DB_PASS: CANARY,
    [ENV.ALLOWED_SA]: "default:test-sa",
  });
  assert.equal((await send(on, secretRequest())).status, 200);
});

test("createSecretHandler() applies the policy: each mode × own / other namespace / listed / SSM", async () => {
  // [policy, annotation, value, stored, expected status]
  const listed = { DB_PASS: CANARY, [ENV.ALLOWED_SA]: "default:test-sa" };
  const plain = { DB_PASS: CANARY };
  const cases: Array<[string, string, string, Record<string, string>, number]> = [
    ["namespace", "aws-secret-name", "default/app", plain, 200],
    ["namespace", "aws-secret-name", "team-b/app", plain, 403],
    ["namespace", "aws-secret-name", "team-b/app", listed, 200],
    ["namespace", "aws-ssm-parameter-path", "/default/app", plain, 200],
    ["namespace", "aws-ssm-parameter-path", "/team-b/app", plain, 403],
    ["namespace", "aws-ssm-parameter-path", "/defaultx/app", plain, 403],
    ["allowed-sa", "aws-secret-name", "default/app", plain, 403],
    ["allowed-sa", "aws-secret-name", "team-b/app", listed, 200],
    ["allowed-sa", "aws-ssm-parameter-path", "/default/app", plain, 403],
    ["any", "aws-secret-name", "team-b/app", plain, 200],
    ["any", "aws-ssm-parameter-path", "/team-b/app", plain, 200],
    ["any", "aws-secret-name", "team-b/app", { ...plain, [ENV.ALLOWED_SA]: "x:y" }, 403],
  ];
  for (const [policy, key, value, stored, status] of cases) {
    const context = setup({ env: { PIGGY_SECRET_ACCESS_POLICY: policy } });
    context.kube.put("pods", podWith({ annotations: { [`${ANNOTATION_PREFIX}${key}`]: value } }));
    if (key === "aws-secret-name") context.secrets.putSecret(value, stored);
    else {
      for (const [name, text] of Object.entries(stored)) {
        context.secrets.putParameter(`${value}/${name}`, text);
      }
    }
    const answer = await send(context, secretRequest());
    const label = `${policy} ${key}=${value} ${JSON.stringify(Object.keys(stored))}`;
    assert.equal(answer.status, status, label);
    if (status === 403) {
      assert.match(String(answer.body.message), new RegExp(`POLICY=${policy}`), label);
      assert.ok(!JSON.stringify(answer.body).includes(CANARY), label);
    }
  }
});

test("createSecretHandler() keeps a pod's default-name prefix annotation inside its namespace", async () => {
  const context = setup();
  const unsealed = unsealedPod({
    annotations: { [`${ANNOTATION_PREFIX}piggy-default-secret-name-prefix`]: "team-b/" },
  });
  delete unsealed.metadata?.annotations?.[`${ANNOTATION_PREFIX}aws-secret-name`];
  // Sealed as admitted: the annotations are the pod's own, not an edit.
  const pod = withSeal(unsealed, "default", [TEST_SEAL_KEY]);
  context.kube.put("pods", pod);
  context.secrets.putSecret("team-b/default/test-sa", { DB_PASS: CANARY });
  const answer = await assertFailure(context, secretRequest(), 403, "AccessDenied");
  assert.match(String(answer.body.message), /"team-b\/default\/test-sa"/);
  // The operator's guard prefix is what moves the boundary.
  const guarded = setup({ env: { PIGGY_SECRET_NAME_GUARD_PREFIX: "team-b/" } });
  guarded.kube.put("pods", pod);
  guarded.secrets.putSecret("team-b/default/test-sa", { DB_PASS: CANARY });
  assert.equal((await send(guarded, secretRequest())).status, 200);
});

test("createSecretHandler() answers not found and not allowed alike to a caller the secret must list", async () => {
  const context = setup();
  context.secrets.putSecret("team-b/exists", { DB_PASS: CANARY, [ENV.ALLOWED_SA]: "team-b:api" });
  const answers: Answer[] = [];
  for (const name of ["team-b/exists", "team-b/missing"]) {
    context.kube.put(
      "pods",
      podWith({ annotations: { [`${ANNOTATION_PREFIX}aws-secret-name`]: name } }),
    );
    answers.push(await assertFailure(context, secretRequest(), 403, "AccessDenied"));
  }
  const [exists, missing] = answers.map((answer) =>
    JSON.stringify(answer.body).replaceAll("team-b/exists", "X").replaceAll("team-b/missing", "X")
  );
  assert.equal(exists, missing);
  assert.ok(context.lines.some((line) => line.includes("ResourceNotFoundException")));
});

test("createSecretHandler() never returns reserved keys", async () => {
  const context = setup();
  const values: Record<string, string> = { APP_KEY: "a" };
  for (const key of RESERVED_KEYS) values[key] = "reserved";
  values[ENV.ALLOWED_SA] = "default:test-sa";
  context.secrets.putSecret("default/my-secret", values);
  const answer = await send(context, secretRequest());
  assert.deepEqual(answer.body, { APP_KEY: "a" });
});

test("createSecretHandler() reads SSM when the pod has a parameter path", async () => {
  const context = setup();
  context.kube.put(
    "pods",
    podWith({ annotations: { [`${ANNOTATION_PREFIX}aws-ssm-parameter-path`]: "/default/config" } }),
  );
  context.secrets.putParameter("/default/config/DB_HOST", "localhost");
  const answer = await send(context, secretRequest());
  assert.deepEqual(answer.body, { DB_HOST: "localhost" });
  assert.equal(context.secrets.queries[0]?.kind, "ssm");
  assert.equal(answer.audit.secret_name, "/default/config");
});

// --- Settings on the live pod ---------------------------------------------------------------

test("createSecretHandler() uses the default secret name with prefix and suffix", async () => {
  const cases: Array<[string, Record<string, string>, string]> = [
    ["default", {}, "demo/default"],
    ["sample", { [ENV.DEFAULT_SECRET_NAME_SUFFIX]: "/test" }, "demo/sample/test"],
    ["sample", { [ENV.DEFAULT_SECRET_NAME_PREFIX]: "prod/" }, "prod/demo/sample"],
  ];
  for (const [serviceAccountName, env, expected] of cases) {
    const context = setup({ env });
    const pod = unsealedPod({ namespace: "demo", serviceAccountName, uid: "demo-uid" });
    delete pod.metadata?.annotations?.[`${ANNOTATION_PREFIX}aws-secret-name`];
    context.kube.put("pods", withSeal(pod, "demo", [TEST_SEAL_KEY])).putToken(
      "token-demo-0123456789",
      saUser("demo", serviceAccountName, { name: "test-pod", uid: "demo-uid" }),
    );
    context.secrets.putSecret(expected, { DB_PASS: CANARY });
    const answer = await send(
      context,
      secretRequest(undefined, { token: "token-demo-0123456789" }),
    );
    assert.equal(answer.status, 200, expected);
    assert.equal(queryLabel(context.secrets.queries[0]!), expected);
    assert.equal(answer.audit.secret_name, expected);
  }
});

test("createSecretHandler() passes region and version through, annotation before env", async () => {
  const env = { AWS_REGION: "us-east-1", AWS_SECRET_VERSION: "AWSPENDING" };
  const fromEnv = setup({ env });
  await send(fromEnv, secretRequest());
  assert.deepEqual(
    pick(fromEnv.secrets.queries[0]),
    { region: "us-east-1", version: "AWSPENDING" },
  );
  const annotated = setup({ env });
  annotated.kube.put(
    "pods",
    podWith({
      annotations: {
        [`${ANNOTATION_PREFIX}aws-region`]: "eu-west-1",
        [`${ANNOTATION_PREFIX}aws-secret-version`]: "6f8723a0-5b1c-4b43-9f5a-0123456789ab",
      },
    }),
  );
  await send(annotated, secretRequest());
  assert.deepEqual(pick(annotated.secrets.queries[0]), {
    region: "eu-west-1",
    version: "6f8723a0-5b1c-4b43-9f5a-0123456789ab",
  });
  const bare = setup();
  await send(bare, secretRequest());
  assert.equal(bare.secrets.queries[0]?.region, "");
});

function pick(query: SecretQuery | undefined) {
  return {
    region: query?.region,
    version: query?.kind === "secretsManager" ? query.version : undefined,
  };
}

// --- Identity -------------------------------------------------------------------------------

test("createSecretHandler() never reads a pod of another namespace than the token's", async () => {
  const context = setup();
  context.kube
    .put("pods", podWith({ name: "victim", namespace: "team-b", serviceAccountName: "app" }))
    .putToken("token-other-0123456789", saUser("team-a", "app"));
  const body = { name: "victim", uid: "test-uid", signature: SIGNATURE };
  await assertFailure(
    context,
    secretRequest(body, { token: "token-other-0123456789" }),
    404,
    "NotFound",
  );
  assert.ok(context.kube.calls.includes("pods team-a/victim"));
  assert.ok(!context.kube.calls.some((call) => call.includes("team-b")));
  assert.deepEqual(context.secrets.queries, []);
});

test("createSecretHandler() refuses a bound token used for another pod, without reading it", async () => {
  const context = setup();
  context.kube.put("pods", podWith({ name: "sibling", uid: "pod-uid-9" }));
  const body = { name: "sibling", uid: "test-uid", signature: SIGNATURE };
  const answer = await assertFailure(context, secretRequest(body), 403, "AccessDenied");
  assert.match(String(answer.body.message), /bound to pod "test-pod"/);
  assert.deepEqual(context.kube.calls, ["tokenreviews"]);
});

test("createSecretHandler() refuses a bound token whose pod was replaced (uid mismatch)", async () => {
  const context = setup();
  context.kube.put("pods", podWith({ uid: "pod-uid-2" }));
  await assertFailure(context, secretRequest(), 403, "AccessDenied");
  assert.deepEqual(context.secrets.queries, []);
});

test("createSecretHandler() accepts a legacy token without bound claims by request name", async () => {
  const context = setup();
  const answer = await send(context, secretRequest(undefined, { token: LEGACY_TOKEN }));
  assert.equal(answer.status, 200);
});

test("createSecretHandler() refuses a user that is not a service account", async () => {
  const context = setup();
  context.kube.putToken("token-user-0123456789", {
    authenticated: true,
    user: { username: "alice", groups: ["system:authenticated"] },
  });
  await assertFailure(
    context,
    secretRequest(undefined, { token: "token-user-0123456789" }),
    403,
    "AccessDenied",
  );
  assert.deepEqual(context.kube.calls, ["tokenreviews"]);
});

test("createSecretHandler() checks PIGGY_TOKEN_AUDIENCES against the reviewed audiences", async () => {
  const context = setup({
    env: { [ENV.TOKEN_AUDIENCES]: "piggy, other", PIGGY_LEGACY_PODS: "false" },
  });
  // The fake echoes the requested audiences when the token has none: accepted.
  assert.equal((await send(context, secretRequest())).status, 200);
  const apiOnly = saUser("default", "test-sa", { name: "test-pod", uid: "pod-uid-1" });
  context.kube.putToken(TOKEN, { ...apiOnly, audiences: ["https://kubernetes.default.svc"] });
  await assertFailure(context, secretRequest(), 401, "Unauthenticated");
  context.kube.putToken(TOKEN, { ...apiOnly, audiences: [] });
  await assertFailure(context, secretRequest(), 401, "Unauthenticated");
  context.kube.putToken(TOKEN, { ...apiOnly, audiences: ["other"] });
  assert.equal((await send(context, secretRequest())).status, 200);
});

// --- Kubernetes and AWS failures ------------------------------------------------------------

test("createSecretHandler() answers 503 when TokenReview fails with 500, then recovers", async () => {
  const context = setup();
  context.kube.fail("tokenreviews", new KubeApiError("Internal error", 500));
  await assertFailure(context, secretRequest(), 503, "KubernetesUnavailable");
  context.kube.fail("tokenreviews", new KubeApiError("Too many requests", 429));
  await assertFailure(context, secretRequest(), 503, "KubernetesUnavailable");
  context.kube.fail("tokenreviews", undefined);
  assert.equal((await send(context, secretRequest())).status, 200);
});

test("createSecretHandler() answers 503 when the Kubernetes API is unreachable", async () => {
  const context = setup();
  context.kube.fail("pods", new KubeUnavailableError("connect ECONNREFUSED 127.0.0.1:6443"));
  const answer = await assertFailure(context, secretRequest(), 503, "KubernetesUnavailable");
  assert.equal(answer.audit.level, "error");
  context.kube.fail("tokenreviews", new KubeUnavailableError("timeout"));
  await assertFailure(context, secretRequest(), 503, "KubernetesUnavailable");
});

test("createSecretHandler() answers 502 when the API refuses the webhook itself (RBAC)", async () => {
  const context = setup();
  context.kube.fail("pods", new KubeApiError("pods is forbidden", 403, { reason: "Forbidden" }));
  await assertFailure(context, secretRequest(), 502, "KubernetesApiError");
});

test("createSecretHandler() never echoes the token from an upstream message", async () => {
  const context = setup();
  context.kube.fail("tokenreviews", new KubeApiError(`bad token ${TOKEN}`, 400));
  const answer = await assertFailure(context, secretRequest(), 502);
  assert.ok(!JSON.stringify(answer.body).includes(TOKEN));
});

test("createSecretHandler() answers 502 with the AWS code and no value or cause text", async () => {
  const source: SecretSource = {
    fetchSecret: () =>
      Promise.reject(
        new SecretSourceError(
          `Cannot load secret "default/my-secret": value is not a JSON object`,
          {
            code: "InvalidSecretContent",
            cause: new SyntaxError(`Unexpected token in "${CANARY}"`),
          },
        ),
      ),
  };
  const context = setup({ source });
  const answer = await assertFailure(context, secretRequest(), 502, "SecretFormat");
  assert.equal(answer.audit.secret_name, "default/my-secret");
  assert.equal(answer.audit.error_code, "InvalidSecretContent");
});

test("createSecretHandler() answers 500 for an unexpected error without its text", async () => {
  const source: SecretSource = {
    fetchSecret: () => Promise.reject(new SyntaxError(`Unexpected token in "${CANARY}"`)),
  };
  const context = setup({ source });
  const answer = await assertFailure(context, secretRequest(), 500, "InternalError");
  assert.match(String(answer.audit.error_code), /SyntaxError/);
});

test("createSecretHandler() answers 504 at PIGGY_SECRET_TIMEOUT, naming the step, and aborts it", async () => {
  let aborted: AbortSignal | undefined;
  const source: SecretSource = {
    // Never settles, and ignores the abort: the deadline must answer anyway.
    fetchSecret: (_query, options) => {
      aborted = options?.signal;
      return new Promise(() => {});
    },
  };
  const context = setup({
    source,
    env: {
      PIGGY_SECRET_TIMEOUT: "200ms",
      PIGGY_AWS_ATTEMPT_TIMEOUT: "100ms",
      PIGGY_KUBE_CALL_TIMEOUT: "100ms",
    },
  });
  // Node does not keep the process alive for AbortSignal.timeout (a server would): this timer does.
  const alive = setTimeout(() => {}, 5_000);
  const started = performance.now();
  const answer = await assertFailure(context, secretRequest(), 504, "DeadlineExceeded");
  const ms = performance.now() - started;
  clearTimeout(alive);
  assert.ok(ms >= 150 && ms < 2_000, `answered after ${ms.toFixed(0)} ms`);
  assert.equal(
    answer.body.message,
    "Cannot answer within PIGGY_SECRET_TIMEOUT (200 ms): reading the secret from AWS did not finish",
  );
  assert.equal(answer.audit.secret_name, "default/my-secret");
  assert.equal(aborted?.aborted, true);
});

test("createSecretHandler() keeps the canary out of logs when enforcement refuses values", async () => {
  const context = setup({ env: { [ENV.ENFORCE_SERVICE_ACCOUNT]: "true" } });
  context.secrets.putSecret("default/my-secret", { DB_PASS: CANARY, OTHER: `${CANARY}-2` });
  await assertFailure(context, secretRequest(), 403);
  assert.ok(context.lines.length > 0);
});

// --- Body limits ----------------------------------------------------------------------------

test("createSecretHandler() answers 413 for a body over the limit", async () => {
  const context = setup();
  const big = { name: "test-pod", uid: "test-uid", signature: SIGNATURE, pad: "x".repeat(70_000) };
  await assertFailure(context, secretRequest(big), 413, "PayloadTooLarge");
  const small = setup({ maxBodyBytes: 64 });
  await assertFailure(small, secretRequest(big), 413);
  assert.deepEqual(small.kube.calls, []);
});

test("createSecretHandler() answers 413 for a streamed body without Content-Length", async () => {
  const context = setup({ maxBodyBytes: 1024 });
  const chunk = new TextEncoder().encode("x".repeat(512));
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent++ < 10) controller.enqueue(chunk);
      else controller.close();
    },
  });
  const request = new Request(URL_SECRET, {
    method: "POST",
    headers: { "content-type": "application/json", [TOKEN_HEADER]: TOKEN },
    body: stream,
    duplex: "half",
  } as RequestInit);
  await assertFailure(context, request, 413, "PayloadTooLarge");
  assert.ok(sent < 10, "stopped reading after the limit");
});

// --- Only what the calling container refers to -------------------------------------------------

test("createSecretHandler() answers only the keys the calling container refers to", async () => {
  const context = setup();
  context.secrets.putSecret("default/my-secret", {
    DB_PASS: CANARY,
    UNREFERENCED: `${CANARY}-other`,
    [ENV.ALLOWED_SA]: "default:test-sa",
  });
  const answer = await send(context, secretRequest());
  assert.deepEqual(answer.body, { DB_PASS: CANARY });
});

test("createSecretHandler() follows valueFrom and envFrom references of the container", async () => {
  const context = setup();
  context.kube.put("configmaps", {
    metadata: { name: "refs", namespace: "default" },
    data: { A: "piggy:FROM_CONFIGMAP", B: "not a reference" },
  });
  context.kube.put("secrets", {
    metadata: { name: "more-refs", namespace: "default" },
    data: { C: btoa("piggy:FROM_SECRET\n") },
  });
  context.kube.put(
    "pods",
    podWith({
      container: {
        env: [
          { name: ENV.UID, value: "test-uid" },
          { name: "X", valueFrom: { configMapKeyRef: { name: "refs", key: "A" } } },
        ],
        envFrom: [{ secretRef: { name: "more-refs" } }],
      },
    }),
  );
  context.secrets.putSecret("default/my-secret", {
    FROM_CONFIGMAP: "1",
    FROM_SECRET: "2",
    DB_PASS: CANARY,
    [ENV.ALLOWED_SA]: "default:test-sa",
  });
  const answer = await send(context, secretRequest());
  assert.deepEqual(answer.body, { FROM_CONFIGMAP: "1", FROM_SECRET: "2" });
});

test("createSecretHandler() refuses a uid that no container of the pod runs with", async () => {
  const context = setup();
  context.kube.put(
    "pods",
    podWith({ container: { env: [{ name: "DB_PASS", value: "piggy:DB_PASS" }] } }),
  );
  await assertFailure(context, secretRequest(), 403, "AccessDenied");
  assert.equal(context.secrets.queries.length, 0, "AWS is never asked");
});

test("createSecretHandler() answers 503 when a referenced ConfigMap cannot be read", async () => {
  const context = setup();
  context.kube.put(
    "pods",
    podWith({
      container: {
        env: [
          { name: ENV.UID, value: "test-uid" },
          { name: "X", valueFrom: { configMapKeyRef: { name: "refs", key: "A" } } },
        ],
      },
    }),
  );
  context.kube.fail("configmaps", new KubeUnavailableError("connection refused"));
  await assertFailure(context, secretRequest(), 503, "KubernetesUnavailable");
});

test("createSecretHandler() answers every key when the operator sets PIGGY_ANSWER_ALL_KEYS", async () => {
  const context = setup({ env: { [ENV.ANSWER_ALL_KEYS]: "true" } });
  context.secrets.putSecret("default/my-secret", {
    DB_PASS: CANARY,
    FROM_IMAGE_ENV: "image",
    [ENV.ALLOWED_SA]: "default:test-sa",
  });
  const answer = await send(context, secretRequest());
  assert.deepEqual(answer.body, { DB_PASS: CANARY, FROM_IMAGE_ENV: "image" });
});

test("createSecretHandler() refuses a pod whose piggysec.com/ annotation changed after admission", async () => {
  const context = setup();
  const edited = podWith();
  edited.metadata!.annotations![`${ANNOTATION_PREFIX}piggy-enforce-integrity`] = "false";
  context.kube.put("pods", edited);
  const answer = await assertFailure(context, secretRequest(), 403);
  assert.match(String(answer.body.message), /does not match its admission seal/);
  assert.match(String(answer.audit.message), /was error: Pod "test-pod" does not match/);
  assert.deepEqual(context.secrets.queries, []);
});

test("createSecretHandler() accepts a seal made with the second key (rotation)", async () => {
  const newKey = new TextEncoder().encode("n".repeat(40));
  const context = setup({ sealKeys: [newKey, TEST_SEAL_KEY] });
  assert.equal((await send(context, secretRequest())).status, 200);
  const alone = setup({ sealKeys: [newKey] });
  await assertFailure(alone, secretRequest(), 403);
});

test("createSecretHandler() serves an unsealed pod created before the cutoff, with a warning", async () => {
  const env = { PIGGY_LEGACY_PODS_CREATED_BEFORE: "2026-03-01T00:00:00Z" };
  const context = setup({ env });
  context.kube.put("pods", {
    ...unsealedPod(),
    metadata: { ...unsealedPod().metadata, creationTimestamp: "2026-02-01T00:00:00Z" },
  });
  const before = context.lines.length;
  assert.equal((await send(context, secretRequest())).status, 200);
  const warnings = context.lines.slice(before).filter((line) => line.includes("PIGGY_LEGACY_PODS"));
  assert.equal(warnings.length, 1);

  context.kube.put("pods", {
    ...unsealedPod(),
    metadata: { ...unsealedPod().metadata, creationTimestamp: "2026-03-02T00:00:00Z" },
  });
  const late = await assertFailure(context, secretRequest(), 403);
  assert.match(String(late.body.message), /not before PIGGY_LEGACY_PODS_CREATED_BEFORE/);

  const off = setup({ env: { ...env, PIGGY_LEGACY_PODS: "false" } });
  off.kube.put("pods", {
    ...unsealedPod(),
    metadata: { ...unsealedPod().metadata, creationTimestamp: "2026-02-01T00:00:00Z" },
  });
  await assertFailure(off, secretRequest(), 403);
});

test("createSecretHandler() accepts an API-server token under PIGGY_LEGACY_PODS, warning each time", async () => {
  const context = setup();
  const apiOnly = saUser("default", "test-sa", { name: "test-pod", uid: "pod-uid-1" });
  context.kube.putToken(TOKEN, { ...apiOnly, audiences: ["https://kubernetes.default.svc"] });
  for (let round = 0; round < 2; round++) {
    const before = context.lines.length;
    assert.equal((await send(context, secretRequest())).status, 200);
    const warnings = context.lines.slice(before).filter((line) =>
      line.includes("token for the API server's audience under PIGGY_LEGACY_PODS")
    );
    assert.equal(warnings.length, 1);
  }
  // Reviewed first for piggysec.com (the default), then for the API server.
  assert.deepEqual(context.kube.calls.filter((call) => call === "tokenreviews").length, 4);
});

test("createSecretHandler() refuses an API-server token for a container admitted with Piggy's projected token", async () => {
  // The pod was admitted by this release: its launcher reads PIGGY_TOKEN_FILE and sends the
  // projected piggysec.com token. The pod's default API token is in every container (a sidecar
  // whose image someone with `update pods` swapped, which the seal does not cover): under
  // PIGGY_LEGACY_PODS it must not stand in for the projected one.
  const context = setup();
  const pod = podWith({
    container: {
      env: [
        { name: ENV.UID, value: "test-uid" },
        { name: ENV.TOKEN_FILE, value: `${TOKEN_MOUNT_PATH}/token` },
        { name: "DB_PASS", value: "piggy:DB_PASS" },
      ],
    },
  });
  context.kube.put("pods", pod);
  const apiOnly = saUser("default", "test-sa", { name: "test-pod", uid: "pod-uid-1" });
  context.kube.putToken(TOKEN, { ...apiOnly, audiences: ["https://kubernetes.default.svc"] });
  const before = context.lines.length;
  const answer = await assertFailure(context, secretRequest(), 401, "Unauthenticated");
  assert.match(String(answer.body.message), /PIGGY_TOKEN_FILE/);
  assert.ok(
    !context.lines.slice(before).some((line) => line.includes("Accepting a token")),
    "no line says the token was accepted",
  );
  // The projected token of the same pod is still served.
  context.kube.putToken(TOKEN, apiOnly);
  assert.equal((await send(context, secretRequest())).status, 200);
});

test("createSecretHandler() answers AWS failures with a short code and a generic message", async () => {
  const arn = "arn:aws:sts::210987654321:assumed-role/piggy-webhooks/session";
  const cases: Array<[string, boolean, string]> = [
    ["AccessDeniedException", false, "AwsAccessDenied"],
    ["ThrottlingException", true, "AwsUnavailable"],
    ["ECONNREFUSED", true, "AwsUnavailable"],
    ["ValidationException", false, "AwsError"],
    ["RegionMissing", false, "AwsRegion"],
  ];
  for (const [code, retryable, expected] of cases) {
    const source: SecretSource = {
      fetchSecret: () =>
        Promise.reject(
          new SecretSourceError(
            `Cannot load secret "default/my-secret": User: ${arn} is not authorized`,
            { code, retryable },
          ),
        ),
    };
    const context = setup({ source });
    const answer = await assertFailure(context, secretRequest(), 502, expected);
    const body = JSON.stringify(answer.body);
    assert.ok(!body.includes("arn:"), body);
    assert.ok(!body.includes("210987654321"), body);
    assert.ok(!body.includes(code), body);
    // The webhook's own log keeps the full reason.
    assert.match(String(answer.audit.message), new RegExp(arn.replaceAll("/", "\\/")));
    assert.equal(answer.audit.error_code, code);
  }
});

test("createSecretHandler() names the service account in the audit of a refused bound token", async () => {
  const context = setup();
  // A token bound to "test-pod" replayed with another pod's name.
  const body = { name: "other-pod", uid: "test-uid", signature: SIGNATURE };
  const answer = await assertFailure(context, secretRequest(body), 403, "AccessDenied");
  assert.equal(answer.audit.namespace, "default");
  assert.equal(answer.audit.service_account, "default:test-sa");
  assert.match(String(answer.audit.message), /\[sa=default:test-sa\]/);
});

// --- Throughput: the audit group commit and the shared pod's settings -------------------------

/** A batching sink that records what it has written and how often it was flushed. */
function recordingSink() {
  const state = { written: [] as string[], pending: [] as string[], flushes: 0, fail: false };
  const sink: LogSink = (line) => {
    state.pending.push(line);
  };
  sink.flush = () => {
    state.flushes++;
    if (state.fail) throw new Error("EPIPE: stderr is gone");
    state.written.push(...state.pending);
    state.pending = [];
  };
  return { state, sink };
}

const isAudit = (line: string) => String(JSON.parse(line).message).startsWith("Request from ");

test("createSecretHandler() writes the audit lines of one turn in one write, each before its answer", async () => {
  const { state, sink } = recordingSink();
  const context = setup({ sink });
  let answered = 0;
  const statuses = await Promise.all(Array.from({ length: 20 }, async () => {
    const response = await context.handle(secretRequest());
    answered++;
    // When an answer is handed back, its audit line (and every earlier one) is written already.
    assert.ok(state.written.filter(isAudit).length >= answered, "audit line written first");
    assert.equal(state.pending.filter(isAudit).length, 0);
    return response.status;
  }));
  assert.deepEqual(new Set(statuses), new Set([200]));
  assert.equal(state.written.filter(isAudit).length, 20);
  assert.ok(state.flushes < 20, `20 answers in ${state.flushes} writes`);
});

test("createSecretHandler() does not hold an answer back on a timer while its audit line is written", async () => {
  // The gate flushes at the end of the event-loop turn. A 0 ms timer, which Deno runs ~2 ms later,
  // used to hold every answer that long: a timer armed just before the request fired first.
  const { sink } = recordingSink();
  const context = setup({ sink });
  await context.handle(secretRequest());
  let answeredFirst = 0;
  for (let round = 0; round < 20; round++) {
    const timer = new Promise<"timer">((resolve) => setTimeout(() => resolve("timer"), 0));
    const answer = context.handle(secretRequest()).then((response) => {
      assert.equal(response.status, 200);
      return "answer" as const;
    });
    if (await Promise.race([answer, timer]) === "answer") answeredFirst++;
    await Promise.all([answer, timer]);
  }
  // Timers of one delay fire in the order they were armed, so a gate on a 0 ms timer loses every
  // round, however loaded the machine; an idle machine answers first in every round, and even a
  // loaded one (a round spanning a few ms lets the timer through) in some.
  assert.ok(answeredFirst >= 1, `answered before a 0 ms timer in ${answeredFirst} of 20 rounds`);
});

test("createSecretHandler() answers 500 without the values when the audit line cannot be written", async () => {
  const { state, sink } = recordingSink();
  state.fail = true;
  const context = setup({ sink });
  const response = await context.handle(secretRequest());
  const text = await response.text();
  assert.equal(response.status, 500);
  assert.ok(!text.includes(CANARY), text);
  assert.deepEqual(JSON.parse(text), { error: "InternalError", message: "Internal error" });
});

test("createSecretHandler() answers 500 without the values when the sink counts a failed write", async () => {
  // The webhook's stderr sink does not throw: it drops the batch and counts the failure.
  const state = { written: [] as string[], pending: [] as string[], failures: 0, fail: true };
  const sink: LogSink = (line) => {
    state.pending.push(line);
  };
  sink.flush = () => {
    if (state.pending.length > 0 && state.fail) state.failures++;
    else state.written.push(...state.pending);
    state.pending = [];
  };
  sink.writeFailures = () => state.failures;
  const reasons: string[] = [];
  const context = setup({ sink, onAnswer: (_status, reason) => reasons.push(reason) });
  const response = await context.handle(secretRequest());
  const text = await response.text();
  assert.equal(response.status, 500);
  assert.ok(!text.includes(CANARY), text);
  assert.deepEqual(reasons, ["audit_failed"]);
  // Once the writes work again, the same request is served.
  state.fail = false;
  const served = await context.handle(secretRequest());
  assert.equal(served.status, 200);
  assert.ok((await served.text()).includes(CANARY));
  assert.deepEqual(reasons, ["audit_failed", "served"]);
  assert.equal(state.written.filter(isAudit).length, 1);
});

test("createSecretHandler() resolves a shared (deep-frozen) pod's settings once, a new pod anew", async () => {
  const base = parseWebhookOptions(() => undefined);
  let lookups = 0;
  // Counts every read of the webhook's setting env (one per setting a resolution looks at).
  const settingEnv = new Proxy({ ...base.settingEnv }, {
    getOwnPropertyDescriptor(target, key) {
      lookups++;
      return Reflect.getOwnPropertyDescriptor(target, key);
    },
  });
  let shared = deepFreeze(podWith());
  const context = setup({
    webhookOptions: { ...base, settingEnv },
    readBoundPod: () => Promise.resolve(shared),
  });
  context.secrets.putSecret("default/other-secret", {
    DB_PASS: "other-value",
    [ENV.ALLOWED_SA]: "default:test-sa",
  });
  assert.equal((await send(context, secretRequest())).status, 200);
  const once = lookups;
  assert.ok(once > 0);
  const second = await send(context, secretRequest());
  assert.equal(second.status, 200);
  assert.equal(second.body.DB_PASS, CANARY);
  assert.equal(lookups, once, "the same frozen pod: its settings are not resolved again");
  // The pod read anew (another object, here re-admitted with another secret): resolved anew.
  shared = deepFreeze(
    podWith({ annotations: { [`${ANNOTATION_PREFIX}aws-secret-name`]: "default/other-secret" } }),
  );
  const third = await send(context, secretRequest());
  assert.equal(third.status, 200);
  assert.equal(third.body.DB_PASS, "other-value");
  assert.equal(lookups, once * 2);
});

test("createSecretHandler() on a shared (deep-frozen) pod still reads the ConfigMaps a container names, every time", async () => {
  const container = {
    env: [
      { name: ENV.UID, value: "test-uid" },
      { name: "X", valueFrom: { configMapKeyRef: { name: "refs", key: "A" } } },
      { name: "DB_PASS", value: "piggy:DB_PASS" },
    ],
  };
  const withRefs = deepFreeze(podWith({ container }));
  const plain = deepFreeze(podWith());
  let shared = withRefs;
  const context = setup({ readBoundPod: () => Promise.resolve(shared) });
  context.kube.put("configmaps", {
    metadata: { name: "refs", namespace: "default" },
    data: { A: "piggy:FROM_CONFIGMAP" },
  });
  context.secrets.putSecret("default/my-secret", {
    FROM_CONFIGMAP: "1",
    OTHER: "2",
    DB_PASS: CANARY,
    [ENV.ALLOWED_SA]: "default:test-sa",
  });
  const reads = () => context.kube.calls.filter((call) => call.startsWith("configmaps")).length;
  assert.deepEqual((await send(context, secretRequest())).body, {
    FROM_CONFIGMAP: "1",
    DB_PASS: CANARY,
  });
  // The ConfigMap changes under the same frozen pod: the next answer follows it at once.
  context.kube.put("configmaps", {
    metadata: { name: "refs", namespace: "default" },
    data: { A: "piggy:OTHER" },
  });
  assert.deepEqual((await send(context, secretRequest())).body, { OTHER: "2", DB_PASS: CANARY });
  assert.equal(reads(), 2, "read for each request");
  // A container that names no ConfigMap or Secret: the same keys each time, nothing read.
  shared = plain;
  for (let i = 0; i < 2; i++) {
    assert.deepEqual((await send(context, secretRequest())).body, { DB_PASS: CANARY });
  }
  assert.equal(reads(), 2);
});
