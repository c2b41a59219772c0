/**
 * The /mutate handler as an HTTP endpoint: methods, content types, body limits, malformed reviews,
 * request filtering, namespaces, dry-run, logging and failure handling, compared with Go Piggy.
 */
import { parseWebhookOptions } from "../config/webhook_options.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { createMutateHandler, MAX_BODY_BYTES, randomUid } from "./mutate_handler.ts";
import { KubeApiError } from "../errors.ts";
import { FakeKubeClient } from "../k8s/fake.ts";
import {
  applyReview,
  captureLogger,
  CHART_ENV,
  envOf,
  loadPod,
  mutateRequest,
  patchOf,
  podWith,
  readJson,
  reviewOf,
  sequentialUids,
  TEST_SEAL_KEY,
} from "../../testing/fixtures/pods/_support.ts";

function handler(
  options: {
    env?: Record<string, string>;
    kube?: FakeKubeClient;
    maxBodyBytes?: number;
    newUid?: () => string;
  } = {},
) {
  const { logger, lines } = captureLogger();
  const mutate = createMutateHandler({
    kube: options.kube ?? new FakeKubeClient(),
    options: parseWebhookOptions(envOf(options.env ?? CHART_ENV)),
    logger,
    newUid: options.newUid ?? sequentialUids(),
    sealKeys: [TEST_SEAL_KEY],
    ...(options.maxBodyBytes ? { maxBodyBytes: options.maxBodyBytes } : {}),
  });
  return { mutate, lines };
}

function trackedStream(
  text: string,
): { stream: ReadableStream<Uint8Array>; pulled: () => boolean } {
  let pulled = false;
  const bytes = new TextEncoder().encode(text);
  // highWaterMark 0: the stream is pulled only when someone reads it.
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled = true;
      controller.enqueue(bytes);
      controller.close();
    },
  }, { highWaterMark: 0 });
  return { stream, pulled: () => pulled };
}

function streamRequest(body: ReadableStream<Uint8Array>, headers: Record<string, string>): Request {
  return new Request("https://piggy/mutate", {
    method: "POST",
    headers,
    body,
    duplex: "half",
  } as RequestInit);
}

test("/mutate answers GET with 405 and Allow: POST", async () => {
  const { mutate } = handler();
  const response = await mutate(mutateRequest(undefined, { method: "GET" }));
  assert.equal(response.status, 405);
  assert.equal(response.headers.get("allow"), "POST");
  const { body } = await readJson(response);
  assert.equal(body.error, "MethodNotAllowed");
  assert.match(String(body.message), /GET/);
});

test("/mutate answers a text/plain body with 415 instead of Go's 400", async () => {
  const { mutate } = handler();
  const response = await mutate(mutateRequest("{}", { contentType: "text/plain" }));
  assert.equal(response.status, 415);
  assert.equal(response.headers.get("content-type"), "application/json");
  assert.equal((await readJson(response)).body.error, "UnsupportedMediaType");
});

test("/mutate answers a missing content type with 415", async () => {
  const { mutate } = handler();
  assert.equal((await mutate(mutateRequest("{}", { contentType: null }))).status, 415);
});

test("/mutate checks the content type before reading the body", async () => {
  const { mutate } = handler();
  const { stream, pulled } = trackedStream("{}");
  const response = await mutate(streamRequest(stream, { "content-type": "text/xml" }));
  assert.equal(response.status, 415);
  assert.equal(pulled(), false);
  await stream.cancel();
});

test("/mutate accepts application/json with parameters and any case (Go required the exact text)", async () => {
  const { mutate } = handler();
  for (const contentType of ["application/json; charset=utf-8", "Application/JSON"]) {
    const response = await mutate(mutateRequest(reviewOf(loadPod("app")), { contentType }));
    assert.equal(response.status, 200, contentType);
    assert.equal((await readJson(response)).body.response.allowed, true);
  }
});

test("/mutate refuses a declared Content-Length over 3 MiB with 413 before reading", async () => {
  const { mutate } = handler();
  const { stream, pulled } = trackedStream("{}");
  const response = await mutate(streamRequest(stream, {
    "content-type": "application/json",
    "content-length": String(MAX_BODY_BYTES + 1),
  }));
  assert.equal(response.status, 413);
  assert.equal((await readJson(response)).body.error, "PayloadTooLarge");
  assert.equal(pulled(), false);
});

test("/mutate refuses a streamed body over 3 MiB with 413", async () => {
  const { mutate } = handler();
  const chunk = new Uint8Array(1024 * 1024).fill(0x20);
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= 4) controller.close();
      else {
        sent++;
        controller.enqueue(chunk);
      }
    },
  });
  const response = await mutate(streamRequest(stream, { "content-type": "application/json" }));
  assert.equal(response.status, 413);
  assert.ok(sent <= 4);
});

test("/mutate accepts a body of exactly the limit", async () => {
  const body = JSON.stringify(reviewOf(loadPod("app")));
  const { mutate } = handler({ maxBodyBytes: body.length + 10 });
  const exact = await mutate(mutateRequest(body.padEnd(body.length + 10, " ")));
  assert.equal(exact.status, 200);
  const over = await mutate(mutateRequest(body.padEnd(body.length + 11, " ")));
  assert.equal(over.status, 413);
});

test("/mutate answers malformed JSON with 400 and a JSON error body", async () => {
  const { mutate } = handler();
  const response = await mutate(mutateRequest("{invalid"));
  assert.equal(response.status, 400);
  const { body } = await readJson(response);
  assert.equal(body.error, "BadRequest");
  assert.match(String(body.message), /Cannot decode AdmissionReview/);
});

test("/mutate answers a null request with 400", async () => {
  const { mutate } = handler();
  const response = await mutate(mutateRequest({ request: null }));
  assert.equal(response.status, 400);
  assert.match(String((await readJson(response)).body.message), /request is missing/);
});

test("/mutate answers a bad review with a readable uid as a 400 AdmissionReview denial", async () => {
  const { mutate } = handler();
  const response = await mutate(mutateRequest({
    apiVersion: "admission.k8s.io/v1beta1",
    kind: "AdmissionReview",
    request: { uid: "old-uid" },
  }));
  assert.equal(response.status, 400);
  const { body } = await readJson(response);
  assert.equal(body.apiVersion, "admission.k8s.io/v1");
  assert.equal(body.kind, "AdmissionReview");
  assert.equal(body.response.uid, "old-uid");
  assert.equal(body.response.allowed, false);
  assert.equal(body.response.status?.code, 400);
});

test("/mutate answers a body that is not UTF-8 with 400", async () => {
  const { mutate } = handler();
  const response = await mutate(
    new Request("https://piggy/mutate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
    }),
  );
  assert.equal(response.status, 400);
});

test("/mutate keeps serving after bad requests", async () => {
  const { mutate } = handler();
  await mutate(mutateRequest("{invalid"));
  await mutate(mutateRequest(undefined, { method: "GET" }));
  await mutate(mutateRequest("x".repeat(10), { contentType: "text/plain" }));
  const response = await mutate(mutateRequest(reviewOf(loadPod("app"))));
  assert.equal(response.status, 200);
  assert.ok((await readJson(response)).body.response.patch);
});

test("/mutate mutates a review without apiVersion and kind", async () => {
  const { mutate } = handler();
  const review = reviewOf(loadPod("app"), { uid: "test-uid" });
  delete review.apiVersion;
  delete review.kind;
  const { status, body } = await readJson(await mutate(mutateRequest(review)));
  assert.equal(status, 200);
  assert.equal(body.apiVersion, "admission.k8s.io/v1");
  assert.equal(body.kind, "AdmissionReview");
  assert.equal(body.response.uid, "test-uid");
  assert.equal(body.response.allowed, true);
  assert.equal(body.response.patchType, "JSONPatch");
  assert.ok(patchOf(body).length > 0);
});

test("/mutate answers a pod without piggy settings with an AdmissionReview, not an empty body as Go Piggy did", async () => {
  const { mutate } = handler({ env: {} });
  const pod = podWith("app", { annotations: { "piggysec.com/aws-secret-name": null } });
  const response = await mutate(mutateRequest(reviewOf(pod, { uid: "u-empty" })));
  assert.equal(response.status, 200);
  const { body } = await readJson(response);
  assert.deepEqual(body, {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    response: { uid: "u-empty", allowed: true },
  });
});

test("/mutate warns about a mistyped annotation on a pod it does not mutate", async () => {
  const { mutate } = handler({ env: {} });
  const pod = podWith("app", {
    annotations: { "piggysec.com/aws-secret-name": null, "piggysec.com/aws-secret-nmae": "x" },
  });
  const { body } = await readJson(await mutate(mutateRequest(reviewOf(pod))));
  assert.equal(body.response.allowed, true);
  assert.equal(body.response.patch, undefined);
  assert.deepEqual(body.response.warnings, [
    'Ignoring unknown annotation "piggysec.com/aws-secret-nmae"',
  ]);
});

const NOT_MUTATED: [string, Parameters<typeof reviewOf>[1]][] = [
  ["a ConfigMap", { resource: { group: "", version: "v1", resource: "configmaps" } }],
  ["a pod UPDATE", { operation: "UPDATE" }],
  ["a pod DELETE", { operation: "DELETE" }],
  ["the ephemeralcontainers subresource", {
    subResource: "ephemeralcontainers",
    operation: "UPDATE",
  }],
  ["a pods resource of another group", {
    resource: { group: "example.com", version: "v1", resource: "pods" },
  }],
];

for (const [what, options] of NOT_MUTATED) {
  test(`/mutate allows ${what} unchanged`, async () => {
    const { mutate } = handler();
    const { status, body } = await readJson(
      await mutate(mutateRequest(reviewOf(loadPod("app"), { uid: "u9", ...options }))),
    );
    assert.equal(status, 200);
    assert.deepEqual(body.response, { uid: "u9", allowed: true });
  });
}

test("/mutate denies a pod when a ConfigMap read fails with other than NotFound (not a 500)", async () => {
  const kube = new FakeKubeClient().fail("configmaps", new KubeApiError("k8s error", 403));
  const { mutate, lines } = handler({ kube });
  const pod = loadPod("app");
  pod.spec!.containers[0]!.env = [];
  pod.spec!.containers[0]!.envFrom = [{ configMapRef: { name: "app-config" } }];
  const response = await mutate(mutateRequest(reviewOf(pod, { uid: "u7" })));
  assert.equal(response.status, 200);
  const { body } = await readJson(response);
  assert.equal(body.response.uid, "u7");
  assert.equal(body.response.allowed, false);
  assert.equal(body.response.status?.code, 502);
  assert.match(body.response.status?.message ?? "", /ConfigMap "app-config".*"default".*k8s error/);
  assert.ok(lines.some((line) => line.level === "error"));
});

test("/mutate reads ConfigMaps from request.namespace, not from the object's namespace", async () => {
  const kube = new FakeKubeClient().put("configmaps", {
    metadata: { name: "app-config", namespace: "team-a" },
    data: { DB: "piggy:db" },
  });
  const { mutate } = handler({ kube });
  const pod = loadPod("app");
  pod.metadata!.namespace = "other";
  pod.spec!.containers[0]!.env = [];
  pod.spec!.containers[0]!.envFrom = [{ configMapRef: { name: "app-config" } }];
  const { body } = await readJson(
    await mutate(mutateRequest(reviewOf(pod, { namespace: "team-a" }))),
  );
  assert.deepEqual(kube.calls, ["configmaps team-a/app-config"]);
  assert.ok(patchOf(body).length > 0);
});

test("/mutate denies a triggered pod when request.namespace is empty", async () => {
  const { mutate } = handler();
  const review = reviewOf(loadPod("app"));
  (review.request as Record<string, unknown>).namespace = "";
  const { body } = await readJson(await mutate(mutateRequest(review)));
  assert.equal(body.response.allowed, false);
  assert.match(body.response.status?.message ?? "", /request\.namespace is empty/);
});

test("/mutate gives a dry-run request the same answer, with no side effect", async () => {
  const kube = new FakeKubeClient();
  const first = handler({ kube });
  const second = handler({ kube });
  const wet = await readJson(await first.mutate(mutateRequest(reviewOf(loadPod("app")))));
  const dry = await readJson(
    await second.mutate(mutateRequest(reviewOf(loadPod("app"), { dryRun: true }))),
  );
  assert.deepEqual(dry.body, wet.body);
  assert.ok(second.lines.some((line) => line.dry_run === true));
});

test("/mutate logs a controller pod by its owner (as Go Piggy)", async () => {
  const { mutate, lines } = handler({ env: { ...CHART_ENV, AWS_SECRET_NAME: "team-a/web" } });
  const { body } = await readJson(
    await mutate(mutateRequest(reviewOf(loadPod("controller"), { uid: "u-ctl" }))),
  );
  assert.ok(patchOf(body).length > 0);
  const done = lines.find((line) => /^Pod .* has been mutated/.test(String(line.message)));
  assert.ok(done, JSON.stringify(lines));
  assert.match(
    String(done.message),
    /^Pod of ReplicaSet 'web-7c9d5f' has been mutated \(took \d+ms\)$/,
  );
  assert.equal(done.owner, "ReplicaSet/web-7c9d5f");
  assert.equal(done.uid, "u-ctl");
  assert.equal(done.namespace, "team-a");
  assert.equal(done.pod_name, undefined);
});

test("/mutate logs a named pod by name and never logs env values", async () => {
  const { mutate, lines } = handler();
  await mutate(mutateRequest(reviewOf(loadPod("app"))));
  const done = lines.find((line) => /^Pod .* has been mutated/.test(String(line.message)));
  assert.equal(done?.pod_name, "test-pod");
  assert.match(String(done?.message), /^Pod 'test-pod' has been mutated/);
  assert.ok(!JSON.stringify(lines).includes("piggy:secret-key"));
});

test("/mutate never throws: an unexpected failure is a 500 denial with a generic message", async () => {
  const { mutate, lines } = handler({
    newUid: () => {
      throw new TypeError("boom");
    },
  });
  const response = await mutate(mutateRequest(reviewOf(loadPod("app"), { uid: "u-boom" })));
  assert.equal(response.status, 200);
  const { body } = await readJson(response);
  assert.equal(body.response.uid, "u-boom");
  assert.equal(body.response.allowed, false);
  assert.equal(body.response.status?.code, 500);
  assert.doesNotMatch(body.response.status?.message ?? "", /boom/);
  assert.ok(lines.some((line) => line.level === "error" && String(line.error).includes("boom")));
});

test("/mutate denies a pod whose request.object is not an object", async () => {
  const { mutate } = handler();
  const review = reviewOf(loadPod("app"));
  (review.request as Record<string, unknown>).object = "pod";
  const { status, body } = await readJson(await mutate(mutateRequest(review)));
  assert.equal(status, 200);
  assert.equal(body.response.allowed, false);
  assert.equal(body.response.status?.code, 400);
});

test("/mutate answers the patched pod consistently with the request object", async () => {
  const { mutate } = handler();
  const pod = loadPod("app");
  const { body } = await readJson(await mutate(mutateRequest(reviewOf(pod))));
  const patched = applyReview(pod, body);
  assert.deepEqual(patched.spec?.containers[0]?.command, ["/piggy/piggy-env"]);
});

test("/mutate reports a bad security setting together with another denial reason", async () => {
  const { mutate } = handler();
  const pod = podWith("app", { annotations: { "piggysec.com/piggy-enforce-integrity": "yes" } });
  delete pod.spec!.containers[0]!.command;
  const { body } = await readJson(await mutate(mutateRequest(reviewOf(pod))));
  assert.equal(body.response.allowed, false);
  assert.match(
    body.response.status?.message ?? "",
    /piggy-enforce-integrity.*; .*has no "command"/,
  );
});

test("/mutate passes a deadline to the Kubernetes reads", async () => {
  const signals: (AbortSignal | undefined)[] = [];
  const kube = new FakeKubeClient();
  const original = kube.getConfigMap.bind(kube);
  kube.getConfigMap = (namespace, name, options) => {
    signals.push(options?.signal);
    return original(namespace, name, options);
  };
  const { logger } = captureLogger();
  const mutate = createMutateHandler({
    kube,
    options: parseWebhookOptions(envOf({ ...CHART_ENV, PIGGY_ADMISSION_TIMEOUT: "1234ms" })),
    logger,
    sealKeys: [TEST_SEAL_KEY],
  });
  const pod = loadPod("app");
  pod.spec!.containers[0]!.env = [];
  pod.spec!.containers[0]!.envFrom = [{ configMapRef: { name: "cm" } }];
  await mutate(mutateRequest(reviewOf(pod)));
  assert.equal(signals.length, 1);
  assert.ok(signals[0] instanceof AbortSignal);
  assert.equal(signals[0]?.aborted, false);
});

test("randomUid() makes a UUIDv4 in 32 lowercase hex characters, different each time", () => {
  // Past the 64 UIDs of one draw of random bytes.
  const uids = new Set(Array.from({ length: 300 }, () => randomUid()));
  assert.equal(uids.size, 300);
  // The form of crypto.randomUUID() without its dashes: version 4, variant 10.
  for (const uid of uids) assert.match(uid, /^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
});
