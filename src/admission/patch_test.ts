import { test } from "node:test";
import assert from "node:assert/strict";
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
