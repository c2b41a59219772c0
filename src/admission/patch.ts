/**
 * The JSON Patch of a mutation: an RFC 6902 diff of the raw request object against the mutated
 * copy, so fields Piggy does not model survive untouched (Go Piggy diffed a typed round-trip and lost them).
 *
 * @module
 */

import jsonPatch from "fast-json-patch";
import type { Operation } from "fast-json-patch";

/**
 * Diffs two JSON documents. Keys containing `/` or `~` are escaped (`~1`, `~0`).
 *
 * @param raw the object as received
 * @param mutated the mutated copy
 * @returns the operations turning `raw` into `mutated` (empty when equal)
 */
export function createPatch(raw: unknown, mutated: unknown): Operation[] {
  return jsonPatch.compare(raw as object, mutated as object);
}

/**
 * Applies a patch to a copy of `document` (used by tests and for self-checks).
 *
 * @throws {Error} when an operation does not apply (fast-json-patch `JsonPatchError`)
 */
export function applyJsonPatch<T>(document: T, patch: readonly Operation[]): T {
  const copy = structuredClone(document);
  return jsonPatch.applyPatch(copy, patch as Operation[], true, true).newDocument;
}
