import { test } from "node:test";
import assert from "node:assert/strict";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { PIGGY_SEAL_ANNOTATION } from "../constants.ts";
import { AccessDeniedError } from "../errors.ts";
import { sealKeyFromText, withSeal } from "../pod/seal.ts";
import { requireAdmissionSeal, type SealPolicy } from "./seal_check.ts";
import { deepFreeze } from "../lookup_cache.ts";

const KEY = sealKeyFromText("k".repeat(40));
const CUTOFF = Date.parse("2026-03-01T00:00:00Z");
const POLICY: SealPolicy = { keys: [KEY], legacyPods: true, legacyPodsCreatedBefore: CUTOFF };

function pod(created = "2026-02-01T00:00:00Z"): Pod {
  return {
    metadata: {
      name: "web-1",
      creationTimestamp: created,
      annotations: { "piggysec.com/aws-secret-name": "team-a/web" },
    },
    spec: { serviceAccountName: "web", containers: [] },
  };
}

function refusal(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    assert.ok(error instanceof AccessDeniedError, String(error));
    return error.message;
  }
  assert.fail("expected a refusal");
}

test("requireAdmissionSeal() passes a sealed pod whatever its age or the legacy option", () => {
  const sealed = withSeal(pod("2026-09-01T00:00:00Z"), "team-a", [KEY]);
  assert.equal(requireAdmissionSeal(sealed, "team-a", POLICY), "sealed");
  assert.equal(
    requireAdmissionSeal(sealed, "team-a", { ...POLICY, legacyPods: false }),
    "sealed",
  );
});

test("requireAdmissionSeal() refuses a pod edited after admission, naming the seal", () => {
  const sealed = withSeal(pod(), "team-a", [KEY]);
  sealed.metadata!.annotations!["piggysec.com/aws-secret-name"] = "team-b/web";
  // Created before the cutoff: a broken seal never falls back to the legacy path.
  assert.match(
    refusal(() => requireAdmissionSeal(sealed, "team-a", POLICY)),
    new RegExp(`Pod "web-1" does not match its admission seal "${PIGGY_SEAL_ANNOTATION}"`),
  );
});

test("requireAdmissionSeal() serves an unsealed pod created before the cutoff as legacy", () => {
  assert.equal(requireAdmissionSeal(pod("2026-02-28T23:59:59Z"), "team-a", POLICY), "legacy");
});

test("requireAdmissionSeal() refuses an unsealed pod created at or after the cutoff", () => {
  assert.equal(
    refusal(() => requireAdmissionSeal(pod("2026-03-01T00:00:00Z"), "team-a", POLICY)),
    `Pod "web-1" has no admission seal "${PIGGY_SEAL_ANNOTATION}" and was created at ` +
      "2026-03-01T00:00:00Z, not before PIGGY_LEGACY_PODS_CREATED_BEFORE (2026-03-01T00:00:00Z)",
  );
});

test("requireAdmissionSeal() refuses unsealed pods without the option or the cutoff", () => {
  assert.match(
    refusal(() => requireAdmissionSeal(pod(), "team-a", { ...POLICY, legacyPods: false })),
    /and PIGGY_LEGACY_PODS is off$/,
  );
  assert.match(
    refusal(() =>
      requireAdmissionSeal(pod(), "team-a", { ...POLICY, legacyPodsCreatedBefore: undefined })
    ),
    /and PIGGY_LEGACY_PODS_CREATED_BEFORE is not set$/,
  );
  const undated = pod();
  Reflect.deleteProperty(undated.metadata!, "creationTimestamp");
  assert.match(
    refusal(() => requireAdmissionSeal(undated, "team-a", POLICY)),
    /and no valid creationTimestamp$/,
  );
});

test("requireAdmissionSeal() checks a deep-frozen pod once per namespace and key list", () => {
  const key = sealKeyFromText("m".repeat(40));
  const keys = [key];
  const policy: SealPolicy = { ...POLICY, keys };
  const frozen = deepFreeze(withSeal(pod(), "team-a", keys)) as Pod;
  assert.equal(requireAdmissionSeal(frozen, "team-a", policy), "sealed");
  // The key's bytes change under the same list: the frozen pod's result is the one kept, while an
  // equal pod that is not frozen is checked again (and no longer matches).
  key.fill(0);
  assert.equal(requireAdmissionSeal(frozen, "team-a", policy), "sealed");
  assert.match(
    refusal(() => requireAdmissionSeal(structuredClone(frozen), "team-a", policy)),
    /seal/,
  );
  // Another namespace or another key list is checked anew.
  assert.match(refusal(() => requireAdmissionSeal(frozen, "team-b", policy)), /seal/);
  assert.match(
    refusal(() => requireAdmissionSeal(frozen, "team-a", { ...policy, keys: [key] })),
    /seal/,
  );
  // A refusal is kept the same way: the frozen object cannot come to match later.
  const tampered = structuredClone(withSeal(pod(), "team-a", [KEY]));
  tampered.metadata!.annotations!["piggysec.com/aws-secret-name"] = "team-b/web";
  deepFreeze(tampered);
  assert.match(refusal(() => requireAdmissionSeal(tampered, "team-a", POLICY)), /seal/);
  assert.match(refusal(() => requireAdmissionSeal(tampered, "team-a", POLICY)), /seal/);
});
