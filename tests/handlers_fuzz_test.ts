/**
 * Property tests: thousands of mangled AdmissionReviews and `/secret` bodies (seeded PRNG, so every
 * run is the same) never make a handler throw; every answer is well formed, and every patch
 * applies to the pod it came with.
 */

import { parseWebhookOptions } from "../src/config/webhook_options.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import jsonpatch from "fast-json-patch";
import { createMutateHandler } from "../src/admission/mutate_handler.ts";
import { createSecretHandler } from "../src/authz/secret_handler.ts";
import { FakeKubeClient } from "../src/k8s/fake.ts";
import { Logger } from "../src/log.ts";
import { MemorySecretSource } from "../src/secrets/memory_source.ts";
import { withSeal } from "../src/pod/seal.ts";
import {
  CHART_ENV,
  envOf,
  loadPod,
  reviewOf,
  TEST_SEAL_KEY,
} from "../testing/fixtures/pods/_support.ts";

/** mulberry32: a small seeded PRNG. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ODD_VALUES: unknown[] = [
  null,
  0,
  -1,
  1e308,
  true,
  "",
  "piggy:",
  "piggy:X\n\r",
  "$(A)$$(B)",
  "x".repeat(5000),
  [],
  [null],
  {},
  { "": "" },
  "\u0000",
  "🐷",
];

/** Replaces, deletes or retypes one random node of a JSON value (in place). */
function mangle(value: unknown, next: () => number): unknown {
  if (next() < 0.15 || value === null || typeof value !== "object") {
    return structuredClone(ODD_VALUES[Math.floor(next() * ODD_VALUES.length)]);
  }
  const container = value as Record<string, unknown>;
  const keys = Object.keys(container);
  if (keys.length === 0) return value;
  const key = keys[Math.floor(next() * keys.length)]!;
  const roll = next();
  if (roll < 0.2 && !Array.isArray(container)) delete container[key];
  else container[key] = mangle(container[key], next);
  return value;
}

const silent = new Logger({ sink: () => {} });

test("the /mutate handler answers every mangled review with a well-formed response", async () => {
  const kube = new FakeKubeClient().put("configmaps", {
    metadata: { name: "cm", namespace: "default" },
    data: { K: "piggy:K" },
  });
  const handle = createMutateHandler({
    kube,
    options: parseWebhookOptions(envOf(CHART_ENV)),
    logger: silent,
    sealKeys: [TEST_SEAL_KEY],
  });
  const next = random(20261126);
  const fixtures = ["app", "controller", "sidecar", "unknown_fields", "wrapped_by_go"] as const;
  let patched = 0;
  for (let i = 0; i < 1500; i++) {
    const pod = loadPod(fixtures[i % fixtures.length]!);
    const review = reviewOf(pod, { uid: `fuzz-${i}` });
    const rounds = 1 + Math.floor(next() * 4);
    for (let r = 0; r < rounds; r++) mangle(review, next);
    const response = await handle(
      new Request("https://piggy/mutate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(review),
      }),
    );
    assert.ok([200, 400].includes(response.status), `status ${response.status} for case ${i}`);
    const answer = await response.json();
    if (response.status === 400 && !answer.response) {
      assert.equal(typeof answer.message, "string");
      continue;
    }
    assert.equal(answer.apiVersion, "admission.k8s.io/v1");
    assert.equal(answer.kind, "AdmissionReview");
    assert.equal(typeof answer.response.allowed, "boolean");
    assert.equal(
      "patch" in answer.response,
      "patchType" in answer.response,
      "patch and patchType together or not at all",
    );
    if (answer.response.patch) {
      const object = (review as { request: { object: unknown } }).request.object;
      const operations = JSON.parse(atob(answer.response.patch));
      jsonpatch.applyPatch(structuredClone(object), operations, true, false);
      patched++;
    }
  }
  assert.ok(patched > 100, `only ${patched} mangled pods were still mutated`);
});

test("the /secret handler answers every mangled body with a JSON error or values", async () => {
  const kube = new FakeKubeClient()
    .putToken("token-123456789", {
      authenticated: true,
      user: { username: "system:serviceaccount:default:app" },
    })
    .put(
      "pods",
      withSeal(
        {
          metadata: {
            name: "app-1",
            namespace: "default",
            annotations: { "piggysec.com/piggy-uid": '{"u":"s"}' },
          },
          spec: {
            serviceAccountName: "app",
            containers: [{
              name: "app",
              env: [{ name: "PIGGY_UID", value: "u" }, { name: "DB", value: "piggy:DB" }],
            }],
          },
        },
        "default",
        [TEST_SEAL_KEY],
      ),
    );
  let answered = 0;
  const handle = createSecretHandler({
    kube,
    secrets: new MemorySecretSource().putSecret("default/app", { DB: "value", OTHER: "x" }),
    options: parseWebhookOptions(() => undefined),
    logger: silent,
    sealKeys: [TEST_SEAL_KEY],
  });
  const next = random(4242);
  for (let i = 0; i < 1000; i++) {
    const body = mangle(
      { resources: "pods", name: "app-1", uid: "u", signature: "s", extra: { a: [1] } },
      next,
    );
    const response = await handle(
      new Request("https://piggy/secret", {
        method: "POST",
        headers: { "content-type": "application/json", "x-token": "token-123456789" },
        body: JSON.stringify(body),
      }),
    );
    const answer = await response.json();
    if (response.status === 200) {
      assert.deepEqual(answer, { DB: "value" });
      answered++;
      continue;
    }
    assert.ok(response.status >= 400 && response.status < 500, `status ${response.status}`);
    assert.equal(typeof answer.error, "string");
    assert.equal(typeof answer.message, "string");
  }
  assert.ok(answered > 50, `only ${answered} requests got through`);
});
