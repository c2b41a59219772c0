/**
 * `admit()` writes nothing into the request: every step (mutation, projected token, command
 * templates, seal) copies what it writes and shares the rest. The request object is deep-frozen,
 * so a write anywhere into it throws.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { admit } from "./admit.ts";
import { withCommandTemplates } from "./command_templates.ts";
import { withProjectedToken } from "./projected_token.ts";
import { checkSeal, sealPod, withSeal } from "../pod/seal.ts";
import { PIGGY_SEAL_ANNOTATION } from "../constants.ts";
import { settingLookup } from "../config/webhook_options.ts";
import { parseWebhookOptions } from "../config/webhook_options.ts";
import { FakeKubeClient } from "../k8s/fake.ts";
import type { AdmissionRequest } from "./types.ts";
import {
  applyReview,
  captureLogger,
  CHART_ENV,
  envOf,
  type FixtureName,
  podWith,
  reviewOf,
  sequentialUids,
  TEST_SEAL_KEY,
} from "../../testing/fixtures/pods/_support.ts";

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

async function admitFrozen(pod: Pod, env: Record<string, string>) {
  const request = deepFreeze(
    reviewOf(structuredClone(pod), { namespace: "team-a" }).request,
  ) as AdmissionRequest;
  const options = parseWebhookOptions(envOf(env));
  const review = await admit(request, {
    kube: new FakeKubeClient(),
    settingEnv: settingLookup(options),
    log: captureLogger().logger,
    newUid: sequentialUids(),
    sealKeys: [TEST_SEAL_KEY],
    tokenAudience: "piggysec.com",
    accessGuard: options.accessGuard,
    allowedAddresses: options.allowedAddresses,
  });
  assert.deepEqual(request.object, pod, "the request object is unchanged");
  return review;
}

const cases: { name: string; fixture: FixtureName; annotations?: Record<string, string> }[] = [
  { name: "proxy mode", fixture: "app" },
  { name: "controller pod", fixture: "controller" },
  { name: "sidecars and init containers", fixture: "sidecar" },
  { name: "unknown fields", fixture: "unknown_fields" },
  { name: "wrapped by Go Piggy", fixture: "wrapped_by_go" },
  {
    name: "standalone mode",
    fixture: "sidecar",
    annotations: { "piggysec.com/standalone": "true", "piggysec.com/aws-secret-name": "a/b" },
  },
];

for (const { name, fixture, annotations } of cases) {
  test(`admit() leaves a deep-frozen request untouched and is idempotent: ${name}`, async () => {
    const pod = podWith(fixture, annotations ? { annotations } : {});
    const first = await admitFrozen(pod, CHART_ENV);
    assert.equal(first.response.allowed, true, JSON.stringify(first.response.status));
    assert.ok(first.response.patch, "the pod is mutated");
    const mutated = applyReview(pod, first);
    const second = await admitFrozen(mutated, CHART_ENV);
    assert.equal(second.response.allowed, true);
    assert.equal(second.response.patch, undefined, "a second pass changes nothing");
    // Each step on its own, over a frozen wrapped pod (which each of them writes into a copy of).
    const frozen = deepFreeze(structuredClone(mutated));
    const token = withProjectedToken(frozen, "piggysec.com");
    const templated = withCommandTemplates(token, { enforceIntegrity: false }).pod;
    assert.deepEqual(withSeal(templated, "team-a", [TEST_SEAL_KEY]), mutated);
    assert.deepEqual(frozen, mutated);
  });
}

test("admit() writes no command template into a frozen pod whose command uses $(VAR)", async () => {
  const pod = podWith("app");
  const container = pod.spec!.containers[0]!;
  container.command = ["/bin/app", "--name=$(POD_NAME)"];
  container.env = [...(container.env ?? []), { name: "POD_NAME", value: "web" }];
  const review = await admitFrozen(pod, CHART_ENV);
  const mutated = applyReview(pod, review);
  const env = mutated.spec?.containers[0]?.env ?? [];
  assert.ok(env.some((entry) => entry.name === "PIGGY_COMMAND_TEMPLATE"), "template set");
  const again = await admitFrozen(mutated, CHART_ENV);
  assert.equal(again.response.patch, undefined);
});

/**
 * Pods of many shapes: several containers, init containers, env and volumes already there, other
 * annotations (a stale piggy-uid among them), commands the kubelet expands, standalone mode, a
 * pod wrapped by Go Piggy. The fast paths of the admission steps are compared against their
 * general forms over these.
 */
function variedPods(): { name: string; pod: Pod }[] {
  const pods: { name: string; pod: Pod }[] = [];
  for (
    const fixture of ["app", "controller", "sidecar", "unknown_fields", "wrapped_by_go"] as const
  ) {
    pods.push({ name: fixture, pod: podWith(fixture) });
  }
  pods.push({
    name: "standalone",
    pod: podWith("sidecar", {
      annotations: { "piggysec.com/standalone": "true", "piggysec.com/aws-secret-name": "a/b" },
    }),
  });
  pods.push({
    name: "other annotations",
    pod: podWith("app", {
      annotations: {
        "piggysec.com/piggy-uid": '{"stale":"x"}',
        "piggysec.com/aws-region": "eu-west-1",
        "example.com/z": "q",
      },
    }),
  });
  const templated = podWith("sidecar");
  for (const container of templated.spec!.containers) {
    container.command = ["/bin/app", "--name=$(POD_NAME)", "$$literal"];
    container.env = [...(container.env ?? []), { name: "POD_NAME", value: "web" }];
  }
  pods.push({ name: "templated commands", pod: templated });
  const several = podWith("app");
  const first = several.spec!.containers[0]!;
  several.spec!.containers = ["a", "b", "c"].map((name) => ({ ...structuredClone(first), name }));
  several.spec!.initContainers = [{
    name: "init",
    image: "busybox:1",
    command: ["sh", "-c", "true"],
    env: [{ name: "S", value: "piggy:S" }],
    volumeMounts: [{ name: "data", mountPath: "/data" }],
  }];
  several.spec!.volumes = [{ name: "data", emptyDir: {} }];
  pods.push({ name: "several containers and an init container", pod: several });
  return pods;
}

for (const imageVolume of [false, true]) {
  test(`admit() seals what sealing the answered pod again gives${imageVolume ? " (image volume)" : ""}`, async () => {
    for (const { name, pod } of variedPods()) {
      const options = parseWebhookOptions(envOf(CHART_ENV));
      const request = reviewOf(structuredClone(pod), { namespace: "team-a" }).request;
      const review = await admit(request as AdmissionRequest, {
        kube: new FakeKubeClient(),
        settingEnv: settingLookup(options),
        log: captureLogger().logger,
        newUid: sequentialUids(),
        sealKeys: [TEST_SEAL_KEY],
        tokenAudience: "piggysec.com",
        accessGuard: options.accessGuard,
        allowedAddresses: options.allowedAddresses,
        launcherImageVolume: imageVolume,
      });
      assert.ok(review.response.patch, `${name}: mutated`);
      const mutated = applyReview(pod, review);
      // The seal made from the mutation's own uid map is the one made by parsing the annotation.
      assert.equal(
        mutated.metadata?.annotations?.[PIGGY_SEAL_ANNOTATION],
        sealPod(mutated, "team-a", [TEST_SEAL_KEY]),
        name,
      );
      assert.equal(checkSeal(mutated, "team-a", [TEST_SEAL_KEY]).state, "valid", name);
    }
  });
}
