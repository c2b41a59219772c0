/**
 * The JSON Patch of a mutation: an RFC 6902 diff of the raw request object against the mutated
 * copy, so fields Piggy does not model survive untouched (Go Piggy diffed a typed round-trip and lost them).
 * The diff is our own: it skips subtrees the mutated copy shares with the raw object (every step
 * of the admission copies only what it writes) and copies nothing. A changed array of scalars
 * (`command`, `args`) is replaced whole, in one operation instead of one per item: the wrapped
 * command of a container is 2 operations instead of ~11. With `scalarArrays: "items"` the output
 * is exactly `fast-json-patch`'s `compare`, which the tests use as the oracle.
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

/** How {@link createPatch} writes a changed array whose items are all scalars. */
export type ScalarArrays = "whole" | "items";

/** True for an array whose items are all strings, numbers, booleans or null. */
function isScalarArray(value: unknown[]): boolean {
  for (const item of value) {
    if (typeof item === "object" && item !== null) return false;
  }
  return true;
}

/** True for two arrays of the same scalars in the same order. */
function sameScalars(a: unknown[], b: unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}

/**
 * A JSON Pointer: its text and the pointers below it by (escaped) key. Its text is made by
 * `Array.prototype.join`, a flat (sequential) string where `+` and template literals make a rope
 * (a V8 cons string): one rope anywhere in the operations sends `JSON.stringify` of the whole
 * patch off its fast path (about twice the time).
 */
interface Pointer {
  /** e.g. `/spec/containers/0/env`; `""` at the root. */
  readonly text: string;
  /** Kept for the next patches (see {@link below}); only a kept pointer keeps its children. */
  readonly kept: boolean;
  /** The pointers below it kept so far. */
  children?: Map<string, Pointer>;
}

/** The root of the pointers kept across patches. */
const ROOT: Pointer = { text: "", kept: true };

/** Most pointers kept, and the longest key kept (pod keys are the client's: their memory is capped). */
const MAX_KEPT_POINTERS = 4096;
const MAX_KEPT_KEY_LENGTH = 64;
let keptPointers = 0;

/**
 * The pointer of `key` below `pointer`. Pointers are kept and reused by the next patches (their
 * text depends on nothing but the keys: a mutation writes into the same few places of every
 * pod), up to {@link MAX_KEPT_POINTERS}; past that, for a long key or below a pointer not kept,
 * one is made each time.
 */
function below(pointer: Pointer, key: string): Pointer {
  const found = pointer.children?.get(key);
  if (found !== undefined) return found;
  const kept = pointer.kept && keptPointers < MAX_KEPT_POINTERS &&
    key.length <= MAX_KEPT_KEY_LENGTH;
  const child: Pointer = { text: [pointer.text, key].join("/"), kept };
  if (kept) {
    (pointer.children ??= new Map()).set(key, child);
    keptPointers++;
  }
  return child;
}

/**
 * The operations of {@link createPatch} below `pointer`, in the order and shape of
 * `fast-json-patch`'s `compare`: removals and replacements walking the old keys from the last,
 * then additions in the new keys' order. Subtrees that are the same object are skipped.
 */
function diff(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  pointer: Pointer,
  operations: Operation[],
  whole: boolean,
): void {
  if (before === after) return;
  if (Array.isArray(before) && Array.isArray(after)) {
    if (whole && isScalarArray(before) && isScalarArray(after)) {
      if (!sameScalars(before, after)) {
        operations.push({ op: "replace", path: pointer.text, value: after });
      }
      return;
    }
    diffArrays(before, after, pointer, operations, whole);
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
    if (
      Object.hasOwn(after, key) &&
      !(after[key] === undefined && oldValue !== undefined && !Array.isArray(after))
    ) {
      // The same value (or subtree): nothing to walk, no path to build.
      const newValue = after[key];
      if (oldValue !== newValue) {
        compareValues(oldValue, newValue, below(pointer, escapeKey(key)), operations, whole);
      }
    } else if (Array.isArray(before) === Array.isArray(after)) {
      operations.push({ op: "remove", path: below(pointer, escapeKey(key)).text });
      deleted = true;
    } else {
      operations.push({ op: "replace", path: pointer.text, value: after });
    }
  }
  if (!deleted && newKeys.length === oldKeys.length) return;
  for (const key of newKeys) {
    if (!Object.hasOwn(before, key) && after[key] !== undefined) {
      operations.push({ op: "add", path: below(pointer, escapeKey(key)).text, value: after[key] });
    }
  }
}

/** {@link diff} of two arrays, by index (no key lists built). */
function diffArrays(
  before: unknown[],
  after: unknown[],
  pointer: Pointer,
  operations: Operation[],
  whole: boolean,
): void {
  let deleted = false;
  for (let index = before.length - 1; index >= 0; index--) {
    if (index < after.length) {
      if (before[index] !== after[index]) {
        compareValues(
          before[index],
          after[index],
          below(pointer, String(index)),
          operations,
          whole,
        );
      }
    } else {
      operations.push({ op: "remove", path: below(pointer, String(index)).text });
      deleted = true;
    }
  }
  if (!deleted && after.length === before.length) return;
  for (let index = before.length; index < after.length; index++) {
    if (after[index] !== undefined) {
      operations.push({ op: "add", path: below(pointer, String(index)).text, value: after[index] });
    }
  }
}

/** Recurses into two objects (or two arrays), or replaces a value that differs. */
function compareValues(
  oldValue: unknown,
  newValue: unknown,
  pointer: Pointer,
  operations: Operation[],
  whole: boolean,
): void {
  if (
    isContainer(oldValue) && isContainer(newValue) &&
    Array.isArray(oldValue) === Array.isArray(newValue)
  ) {
    diff(oldValue, newValue, pointer, operations, whole);
  } else if (oldValue !== newValue) {
    operations.push({ op: "replace", path: pointer.text, value: newValue });
  }
}

/**
 * Diffs two JSON documents. Keys containing `/` or `~` are escaped (`~1`, `~0`). The result is
 * what `fast-json-patch`'s `compare` returns (its tests hold it to that) except that a changed
 * array of scalars is one `replace` of the whole array (`scalarArrays: "items"` turns that off);
 * and without its copies: the values of the operations are parts of `mutated`, and subtrees `raw`
 * and `mutated` share are not walked. Serialise the operations before changing `mutated`.
 *
 * @param raw the object as received
 * @param mutated the mutated copy
 * @param options `scalarArrays`: `whole` (default) or `items` (one operation per item, as `compare`)
 * @returns the operations turning `raw` into `mutated` (empty when equal)
 */
export function createPatch(
  raw: unknown,
  mutated: unknown,
  options: { scalarArrays?: ScalarArrays } = {},
): Operation[] {
  const operations: Operation[] = [];
  const whole = (options.scalarArrays ?? "whole") === "whole";
  if (isContainer(raw) && isContainer(mutated)) diff(raw, mutated, ROOT, operations, whole);
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
