/**
 * `/secret` serves only what admission decided: the live pod's seal must match (see
 * `src/pod/seal.ts`). A pod without a seal is served only under the compatibility option
 * `PIGGY_LEGACY_PODS`, and only when it was created before `PIGGY_LEGACY_PODS_CREATED_BEFORE`:
 * deleting the seal annotation of a pod admitted later does not reach that path, because
 * `creationTimestamp` cannot be changed.
 *
 * The HMAC over a pod is computed once per pod object when that object is deep-frozen (a pod read
 * kept by the `/secret` pod cache and shared by every request within `PIGGY_POD_CACHE_TTL`): such
 * an object cannot change, so neither can the result for it, its namespace and the same key list.
 * The result is held beside the object (a `WeakMap`) and goes when the cache drops the pod; a pod
 * read anew is a new object and is checked anew.
 *
 * @module
 */

import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { PIGGY_SEAL_ANNOTATION } from "../constants.ts";
import { AccessDeniedError } from "../errors.ts";
import { checkSeal, type SealKey, type SealState } from "../pod/seal.ts";
import { isDeepFrozen } from "../lookup_cache.ts";

/** What {@link requireAdmissionSeal} needs. */
export interface SealPolicy {
  /** The webhook's sealing keys (any of them may have sealed the pod). */
  keys: readonly SealKey[];
  /** `PIGGY_LEGACY_PODS`: unsealed pods created before the cutoff are served. */
  legacyPods: boolean;
  /** `PIGGY_LEGACY_PODS_CREATED_BEFORE` in epoch milliseconds; unset serves no unsealed pod. */
  legacyPodsCreatedBefore: number | undefined;
}

/** How the pod passed: sealed, or unsealed under the compatibility option. */
export type SealOutcome = "sealed" | "legacy";

/** The seal state of each deep-frozen pod object, for the namespace and keys it was checked with. */
const checkedPods = new WeakMap<
  object,
  { namespace: string; keys: readonly SealKey[]; found: SealState }
>();

/** {@link checkSeal}, once per deep-frozen pod object (and namespace and key list). */
function sealStateOf(pod: Pod, namespace: string, keys: readonly SealKey[]): SealState {
  if (!isDeepFrozen(pod)) return checkSeal(pod, namespace, keys);
  const known = checkedPods.get(pod);
  if (known && known.namespace === namespace && known.keys === keys) return known.found;
  const found = checkSeal(pod, namespace, keys);
  checkedPods.set(pod, { namespace, keys, found });
  return found;
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, "Z");
}

/**
 * Refuses a live pod that does not match its admission seal, or that has none and may not be
 * served without one.
 *
 * @param pod the live pod
 * @param namespace the token's namespace (the pod's)
 * @returns `legacy` when an unsealed pod is served under `PIGGY_LEGACY_PODS` (warn about it)
 * @throws {AccessDeniedError} with the reason
 */
export function requireAdmissionSeal(
  pod: Pod,
  namespace: string,
  policy: SealPolicy,
): SealOutcome {
  const name = pod.metadata?.name ?? "";
  const found = sealStateOf(pod, namespace, policy.keys);
  if (found.state === "valid") return "sealed";
  if (found.state === "mismatch") {
    throw new AccessDeniedError(
      `Pod "${name}" does not match its admission seal "${PIGGY_SEAL_ANNOTATION}": a ` +
        "piggysec.com/ annotation, a wrapped container's image or the service account changed " +
        "after admission, or the seal was made with a key this webhook does not hold",
    );
  }
  const unsealed = `Pod "${name}" has no admission seal "${PIGGY_SEAL_ANNOTATION}"`;
  if (!policy.legacyPods) {
    throw new AccessDeniedError(`${unsealed} and PIGGY_LEGACY_PODS is off`);
  }
  const cutoff = policy.legacyPodsCreatedBefore;
  if (cutoff === undefined) {
    throw new AccessDeniedError(`${unsealed} and PIGGY_LEGACY_PODS_CREATED_BEFORE is not set`);
  }
  const createdText = pod.metadata?.creationTimestamp;
  const created = typeof createdText === "string" ? Date.parse(createdText) : NaN;
  if (Number.isNaN(created)) {
    throw new AccessDeniedError(`${unsealed} and no valid creationTimestamp`);
  }
  if (created >= cutoff) {
    throw new AccessDeniedError(
      `${unsealed} and was created at ${isoTime(created)}, not before ` +
        `PIGGY_LEGACY_PODS_CREATED_BEFORE (${isoTime(cutoff)})`,
    );
  }
  return "legacy";
}
