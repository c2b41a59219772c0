/**
 * The JSON Patch of a mutation: an RFC 6902 diff of the raw request object against the mutated
 * copy, so fields Piggy does not model survive untouched (Go Piggy diffed a typed round-trip and lost them).
 * The diff is our own (same output as `fast-json-patch`'s `compare`, which the tests use as the
 * oracle): it skips subtrees the mutated copy shares with the raw object and copies nothing.
 *
 * @module
 */

import jsonPatch from "fast-json-patch";
import type { Operation } from "fast-json-patch";

/** `/` and `~` of a key escaped for a JSON Pointer (RFC 6901). */
function escapeKey(key: string): string {
  return key.indexOf("/") === -1 && key.indexOf("~") === -1
    ? key
    : key.replaceAll("~", "~0").replaceAll("/", "~1");
}

function isContainer(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/**
 * The operations of {@link createPatch} below `path`, in the order and shape of
 * `fast-json-patch`'s `compare`: removals and replacements walking the old keys from the last,
 * then additions in the new keys' order. Subtrees that are the same object are skipped.
 */
function diff(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  path: string,
  operations: Operation[],
): void {
  if (before === after) return;
  if (Array.isArray(before) && Array.isArray(after)) {
    diffArrays(before, after, path, operations);
    return;
  }
  const oldKeys = Array.isArray(before)
    ? before.map((_, index) => String(index))
    : Object.keys(before);
  const newKeys = Array.isArray(after)
    ? after.map((_, index) => String(index))
    : Object.keys(after);
  let deleted = false;
  for (let index = oldKeys.length - 1; index >= 0; index--) {
    const key = oldKeys[index]!;
    const oldValue = before[key];
    const keyPath = `${path}/${escapeKey(key)}`;
    if (
      Object.hasOwn(after, key) &&
      !(after[key] === undefined && oldValue !== undefined && !Array.isArray(after))
    ) {
      compareValues(oldValue, after[key], keyPath, operations);
    } else if (Array.isArray(before) === Array.isArray(after)) {
      operations.push({ op: "remove", path: keyPath });
      deleted = true;
    } else {
      operations.push({ op: "replace", path, value: after });
    }
  }
  if (!deleted && newKeys.length === oldKeys.length) return;
  for (const key of newKeys) {
    if (!Object.hasOwn(before, key) && after[key] !== undefined) {
      operations.push({ op: "add", path: `${path}/${escapeKey(key)}`, value: after[key] });
    }
  }
}

/** {@link diff} of two arrays, by index (no key lists built). */
function diffArrays(
  before: unknown[],
  after: unknown[],
  path: string,
  operations: Operation[],
): void {
  let deleted = false;
  for (let index = before.length - 1; index >= 0; index--) {
    if (index < after.length) {
      compareValues(before[index], after[index], `${path}/${index}`, operations);
    } else {
      operations.push({ op: "remove", path: `${path}/${index}` });
      deleted = true;
    }
  }
  if (!deleted && after.length === before.length) return;
  for (let index = before.length; index < after.length; index++) {
    if (after[index] !== undefined) {
      operations.push({ op: "add", path: `${path}/${index}`, value: after[index] });
    }
  }
}

/** Recurses into two objects (or two arrays), or replaces a value that differs. */
function compareValues(
  oldValue: unknown,
  newValue: unknown,
  path: string,
  operations: Operation[],
): void {
  if (
    isContainer(oldValue) && isContainer(newValue) &&
    Array.isArray(oldValue) === Array.isArray(newValue)
  ) {
    diff(oldValue, newValue, path, operations);
  } else if (oldValue !== newValue) {
    operations.push({ op: "replace", path, value: newValue });
  }
}

/**
 * Diffs two JSON documents. Keys containing `/` or `~` are escaped (`~1`, `~0`). The result is
 * what `fast-json-patch`'s `compare` returns (its tests hold it to that), without its copies: the
 * values of the operations are parts of `mutated`, and subtrees `raw` and `mutated` share are not
 * walked. Serialise the operations before changing `mutated`.
 *
 * @param raw the object as received
 * @param mutated the mutated copy
 * @returns the operations turning `raw` into `mutated` (empty when equal)
 */
export function createPatch(raw: unknown, mutated: unknown): Operation[] {
  const operations: Operation[] = [];
  if (isContainer(raw) && isContainer(mutated)) diff(raw, mutated, "", operations);
  else if (raw !== mutated) operations.push({ op: "replace", path: "", value: mutated });
  return operations;
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
