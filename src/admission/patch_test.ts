import { test } from "node:test";
import assert from "node:assert/strict";
import jsonPatch from "fast-json-patch";
import { applyJsonPatch, createPatch } from "./patch.ts";

test("createPatch() escapes / in keys as ~1 and ~ as ~0", () => {
  const raw = { metadata: { annotations: { "a~b": "1" } } };
  const mutated = { metadata: { annotations: { "a~b": "2", "piggysec.com/piggy-uid": "{}" } } };
  assert.deepEqual(createPatch(raw, mutated), [
    { op: "replace", path: "/metadata/annotations/a~0b", value: "2" },
    { op: "add", path: "/metadata/annotations/piggysec.com~1piggy-uid", value: "{}" },
  ]);
});

test("createPatch() adds a whole annotations map when it was absent", () => {
  const ops = createPatch({ metadata: { name: "p" } }, {
    metadata: { name: "p", annotations: { "piggysec.com/piggy-uid": "{}" } },
  });
  assert.deepEqual(ops, [
    { op: "add", path: "/metadata/annotations", value: { "piggysec.com/piggy-uid": "{}" } },
  ]);
});

test("createPatch() is empty for equal documents and keeps unknown fields", () => {
  const raw = { spec: { futureField: [1, 2], containers: [] } };
  assert.deepEqual(createPatch(raw, structuredClone(raw)), []);
  const mutated = { spec: { futureField: [1, 2], containers: [{ name: "a" }] } };
  const patched = applyJsonPatch(raw, createPatch(raw, mutated));
  assert.deepEqual(patched, mutated);
});

test("applyJsonPatch() leaves its input unchanged and rejects a bad operation", () => {
  const doc = { a: 1 };
  applyJsonPatch(doc, [{ op: "replace", path: "/a", value: 2 }]);
  assert.deepEqual(doc, { a: 1 });
  assert.throws(() => applyJsonPatch(doc, [{ op: "replace", path: "/missing/x", value: 2 }]));
});

/** A small seeded PRNG, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function randomJson(next: () => number, depth: number): unknown {
  const pick = next();
  if (depth <= 0 || pick < 0.3) {
    return [0, 1, "x", "a/b", "", true, null][Math.floor(next() * 7)];
  }
  if (pick < 0.65) {
    return Array.from({ length: Math.floor(next() * 4) }, () => randomJson(next, depth - 1));
  }
  const object: Record<string, unknown> = {};
  for (let i = Math.floor(next() * 4); i > 0; i--) {
    object[["a", "b", "c/d", "e~f", "0"][Math.floor(next() * 5)]!] = randomJson(next, depth - 1);
  }
  return object;
}

/** A changed copy that shares some subtrees with `value`, as the mutation's copy does. */
function edited(value: unknown, next: () => number, depth: number): unknown {
  const pick = next();
  if (pick < 0.25) return value; // shared
  if (typeof value !== "object" || value === null || pick < 0.35) return randomJson(next, depth);
  if (Array.isArray(value)) {
    const copy = value.map((item) => edited(item, next, depth - 1));
    if (next() < 0.3) copy.push(randomJson(next, depth - 1));
    if (next() < 0.3) copy.splice(Math.floor(next() * (copy.length + 1)), 1);
    return copy;
  }
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const roll = next();
    if (roll < 0.15) continue; // removed
    copy[key] = roll < 0.2 ? undefined : edited(item, next, depth - 1);
  }
  if (next() < 0.3) copy[`new/${Math.floor(next() * 3)}`] = randomJson(next, depth - 1);
  return copy;
}

/** Raw and mutated documents of case `seed`: random JSON, the mutated one sharing subtrees. */
function randomCase(
  seed: number,
): { raw: Record<string, unknown>; mutated: Record<string, unknown> } {
  const next = random(seed);
  const raw = { metadata: randomJson(next, 4), spec: randomJson(next, 4) };
  // Documents stay objects at the top, as pods do; anything goes below.
  const mutated: Record<string, unknown> = { metadata: edited(raw.metadata, next, 4) };
  if (next() < 0.8) mutated.spec = edited(raw.spec, next, 4);
  return { raw, mutated };
}

test("createPatch() returns what fast-json-patch's compare returns (the oracle), 2000 cases", () => {
  for (let seed = 1; seed <= 2000; seed++) {
    const { raw, mutated } = randomCase(seed);
    const snapshot = JSON.stringify(raw);
    const expected = jsonPatch.compare(raw, mutated);
    const actual = createPatch(raw, mutated, { scalarArrays: "items" });
    assert.equal(JSON.stringify(raw), snapshot, `seed ${seed}: raw unchanged`);
    assert.deepEqual(JSON.parse(JSON.stringify(actual)), expected, `seed ${seed}`);
    assert.deepEqual(
      applyJsonPatch(raw, JSON.parse(JSON.stringify(actual))),
      JSON.parse(JSON.stringify(mutated)),
      `seed ${seed}: the patch gives the mutated document`,
    );
  }
});

test("createPatch() replaces a changed array of scalars whole, 2000 cases against the oracle", () => {
  let fewer = 0;
  for (let seed = 1; seed <= 2000; seed++) {
    const { raw, mutated } = randomCase(seed);
    const snapshot = JSON.stringify(raw);
    const expected = jsonPatch.compare(raw, mutated);
    const actual = JSON.parse(JSON.stringify(createPatch(raw, mutated)));
    assert.equal(JSON.stringify(raw), snapshot, `seed ${seed}: raw unchanged`);
    assert.deepEqual(
      applyJsonPatch(raw, actual),
      applyJsonPatch(raw, expected),
      `seed ${seed}: the same document as the oracle's patch`,
    );
    assert.ok(actual.length <= expected.length, `seed ${seed}: never more operations`);
    if (actual.length < expected.length) fewer++;
  }
  assert.ok(fewer > 30, `the whole replacement happens (${fewer} cases with fewer operations)`);
});

test("createPatch() rewrites a wrapped command and args in two operations", () => {
  const raw = { spec: { containers: [{ name: "a", command: ["/app", "-v"], args: ["x"] }] } };
  const mutated = {
    spec: {
      containers: [{ name: "a", command: ["/piggy/piggy-env"], args: ["--", "/app", "-v", "x"] }],
    },
  };
  assert.deepEqual(createPatch(raw, mutated), [
    { op: "replace", path: "/spec/containers/0/args", value: ["--", "/app", "-v", "x"] },
    { op: "replace", path: "/spec/containers/0/command", value: ["/piggy/piggy-env"] },
  ]);
  assert.deepEqual(createPatch(raw, structuredClone(raw)), []);
});

test("createPatch() gives the same paths once its kept pointers are full, and for long keys", () => {
  // Far more distinct keys than pointers are kept (4,096), long keys (not kept) and keys that
  // need escaping; each patch is compared with the oracle, before and after the store is full.
  for (let round = 0; round < 3; round++) {
    const raw: Record<string, unknown> = {};
    const mutated: Record<string, unknown> = {};
    for (let index = 0; index < 2500; index++) {
      const key = index % 7 === 0 ? `k/${index}~${"x".repeat(70)}` : `key-${round}-${index}`;
      raw[key] = { value: index, list: [index] };
      mutated[key] = { value: index + 1, list: [index, index], added: "a" };
    }
    const expected = jsonPatch.compare(raw, mutated);
    assert.deepEqual(
      JSON.parse(JSON.stringify(createPatch(raw, mutated, { scalarArrays: "items" }))),
      expected,
      `round ${round}`,
    );
  }
});
