/**
 * The admission seal: an HMAC-SHA256, made by `/mutate` with a key only the webhook holds, over
 * what `/secret` later authorizes from the live pod, stored in the `piggysec.com/piggy-seal`
 * annotation. Annotations and container images of a running pod can be updated; container env,
 * command, volumes and `creationTimestamp` cannot. So the seal covers the mutable inputs of the
 * decision:
 *
 * - the namespace and the service account;
 * - every `piggysec.com/` annotation as written (not resolved through the webhook's env, so a
 *   changed cluster-wide default does not break running pods), except the seal itself: the
 *   `piggy-uid` map included;
 * - each wrapped container's kind (init or app), name, `PIGGY_UID`, signature and image.
 *
 * Admission sees no pod name, uid or `creationTimestamp`: they are not sealed.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash, timingSafeEqual } from "node:crypto";
import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import {
  ANNOTATION_PREFIX,
  ENV,
  PIGGY_SEAL_ANNOTATION,
  PIGGY_UID_ANNOTATION,
} from "../constants.ts";
import { isWrapped } from "./container_refs.ts";
import { parseUidAnnotation } from "./piggy_uid.ts";

/** Fewest bytes a sealing key must have. */
export const MIN_SEAL_KEY_BYTES = 32;

/** Most keys accepted at once: the signing key and the one being rotated out. */
export const MAX_SEAL_KEYS = 2;

/** Version prefix of the annotation value. */
const SEAL_VERSION = "v1";

/**
 * The first item of the material. Joined, not a template literal: a template makes a V8 cons
 * string, which sends `JSON.stringify` of the material off its fast path.
 */
const MATERIAL_TAG = ["piggy-seal", SEAL_VERSION].join("-");

/** A sealing key: its bytes. */
export type SealKey = Uint8Array;

/** What {@link checkSeal} found. */
export type SealState =
  /** The seal matches the pod under one of the keys (`keyIndex`: 0 is the signing key). */
  | { state: "valid"; keyIndex: number }
  /** The pod carries no seal annotation. */
  | { state: "missing" }
  /** The seal does not match the pod under any key, or is not a seal. */
  | { state: "mismatch" };

/**
 * Turns a key file's text into a key: surrounding whitespace (a final newline) is dropped.
 *
 * @throws {RangeError} fewer than {@link MIN_SEAL_KEY_BYTES} bytes remain
 */
export function sealKeyFromText(text: string): SealKey {
  const bytes = new TextEncoder().encode(text.trim());
  if (bytes.byteLength < MIN_SEAL_KEY_BYTES) {
    throw new RangeError(
      `the key has ${bytes.byteLength} bytes, at least ${MIN_SEAL_KEY_BYTES} are needed`,
    );
  }
  return bytes;
}

/** A new random key, for a webhook run without key files (one process only). */
export function randomSealKey(): SealKey {
  return crypto.getRandomValues(new Uint8Array(MIN_SEAL_KEY_BYTES));
}

/** The service account a pod runs as: the API server defaults an empty one to `default`. */
function serviceAccountOf(pod: Pod): string {
  return pod.spec?.serviceAccountName || "default";
}

/** Appends the entry of each wrapped container of `containers` to `entries`, in pod order. */
function addWrappedEntries(
  entries: string[][],
  kind: "init" | "app",
  containers: readonly Container[] | undefined,
  uids: ReadonlyMap<string, string>,
): void {
  for (const container of containers ?? []) {
    if (!container || !isWrapped(container)) continue;
    const uid = container.env?.find((entry) => entry?.name === ENV.UID)?.value ?? "";
    entries.push([kind, container.name, uid, uids.get(uid) ?? "", container.image ?? ""]);
  }
}

/**
 * The `piggy-uid` annotation as the mutation wrote it: its text and the map it was formatted from,
 * so that sealing the pod it just mutated does not parse the text back.
 */
export interface KnownUidAnnotation {
  /** The annotation's text ({@link formatUidAnnotation} of `signatures`). */
  text: string;
  /** UID → signature. */
  signatures: ReadonlyMap<string, string>;
}

/** What {@link sealMaterial}, {@link sealPod} and {@link withSeal} may be told. */
export interface SealOptions {
  /**
   * The `piggy-uid` annotation as written: its map is used when the pod's annotation is exactly
   * its text (else the annotation is parsed, as without it). @default none: parsed
   */
  knownUids?: KnownUidAnnotation;
}

/**
 * The sealed text of a pod: a JSON array of the namespace, the service account, the sorted
 * `piggysec.com/` annotations (without the seal) and the wrapped containers in pod order.
 *
 * @param pod the mutated pod at admission, or the live pod at `/secret`
 * @param namespace the admission request's namespace, or the token's at `/secret`
 */
export function sealMaterial(pod: Pod, namespace: string, options: SealOptions = {}): string {
  const all = pod.metadata?.annotations ?? {};
  const annotations: [string, string][] = [];
  for (const key of Object.keys(all)) {
    const value = all[key];
    if (
      key.startsWith(ANNOTATION_PREFIX) && key !== PIGGY_SEAL_ANNOTATION &&
      typeof value === "string"
    ) {
      annotations.push([key, value]);
    }
  }
  annotations.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const text = all[PIGGY_UID_ANNOTATION];
  const known = options.knownUids;
  // The map the text was formatted from is the map parsing it gives (a property test holds
  // `parseUidAnnotation` and `formatUidAnnotation` to that).
  const uids = known !== undefined && text === known.text
    ? known.signatures
    : parseUidAnnotation(text).signatures;
  const containers: string[][] = [];
  addWrappedEntries(containers, "init", pod.spec?.initContainers, uids);
  addWrappedEntries(containers, "app", pod.spec?.containers, uids);
  return JSON.stringify([MATERIAL_TAG, namespace, serviceAccountOf(pod), annotations, containers]);
}

/** SHA-256's block size: an HMAC key is padded (or first hashed) to it. */
const BLOCK_BYTES = 64;

/** A key's HMAC pads (RFC 2104), made once per key, beside a copy of the bytes they were made of. */
const padsOfKey = new WeakMap<
  SealKey,
  { bytes: Uint8Array; inner: Uint8Array; outer: Uint8Array }
>();

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let index = 0; index < a.byteLength; index++) if (a[index] !== b[index]) return false;
  return true;
}

function padsOf(key: SealKey): { inner: Uint8Array; outer: Uint8Array } {
  let pads = padsOfKey.get(key);
  // Made again when the key's bytes changed since (keys are read once, but a caller may reuse
  // its array): the pads always follow the bytes.
  if (pads === undefined || !sameBytes(pads.bytes, key)) {
    const block = new Uint8Array(BLOCK_BYTES);
    block.set(key.byteLength > BLOCK_BYTES ? createHash("sha256").update(key).digest() : key);
    pads = {
      bytes: key.slice(),
      inner: block.map((byte) => byte ^ 0x36),
      outer: block.map((byte) => byte ^ 0x5c),
    };
    padsOfKey.set(key, pads);
  }
  return pads;
}

/**
 * HMAC-SHA256 (RFC 2104) as two SHA-256 hashes over the key's pads, made once per key: the same
 * bytes as `createHmac("sha256", key)` (its tests hold it to that), in half the time under Deno,
 * whose `createHmac` prepares the key again on every call (~20 µs against ~9 µs per seal).
 */
function mac(key: SealKey, material: string): Buffer {
  const { inner, outer } = padsOf(key);
  const innerHash = createHash("sha256").update(inner).update(material, "utf8").digest();
  return createHash("sha256").update(outer).update(innerHash).digest();
}

/**
 * The seal annotation value of a pod: `v1.` and the base64url HMAC under the signing key.
 *
 * @param keys the webhook's keys; the first signs
 * @throws {RangeError} no key is given
 */
export function sealPod(
  pod: Pod,
  namespace: string,
  keys: readonly SealKey[],
  options: SealOptions = {},
): string {
  const key = keys[0];
  if (key === undefined) throw new RangeError("Cannot seal a pod without a key");
  const material = sealMaterial(pod, namespace, options);
  // Joined, not a template literal: see `formatUidAnnotation` (a flat string for the patch).
  return [SEAL_VERSION, mac(key, material).toString("base64url")].join(".");
}

/**
 * A copy of the pod with its seal annotation set (the input is not modified; the copy shares all
 * but its metadata with it).
 *
 * @param keys the webhook's keys; the first signs
 */
export function withSeal(
  pod: Pod,
  namespace: string,
  keys: readonly SealKey[],
  options: SealOptions = {},
): Pod {
  // Copy-on-write: the pod and its metadata are new objects, the rest is shared with the input.
  return {
    ...pod,
    metadata: {
      ...pod.metadata,
      annotations: {
        ...pod.metadata?.annotations,
        [PIGGY_SEAL_ANNOTATION]: sealPod(pod, namespace, keys, options),
      },
    },
  };
}

/**
 * Checks the live pod's seal against every key, in time independent of where the MACs differ.
 *
 * @param keys the webhook's keys (any of them may have sealed the pod)
 */
export function checkSeal(pod: Pod, namespace: string, keys: readonly SealKey[]): SealState {
  const value = pod.metadata?.annotations?.[PIGGY_SEAL_ANNOTATION];
  if (value === undefined) return { state: "missing" };
  const prefix = `${SEAL_VERSION}.`;
  if (typeof value !== "string" || !value.startsWith(prefix)) return { state: "mismatch" };
  const given = Buffer.from(value.slice(prefix.length), "base64url");
  const material = sealMaterial(pod, namespace);
  let found = -1;
  keys.forEach((key, index) => {
    const expected = mac(key, material);
    if (given.byteLength === expected.byteLength && timingSafeEqual(given, expected)) {
      if (found === -1) found = index;
    }
  });
  return found === -1 ? { state: "mismatch" } : { state: "valid", keyIndex: found };
}
