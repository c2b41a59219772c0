import { test } from "node:test";
import assert from "node:assert/strict";
import { formatUidAnnotation, parseUidAnnotation } from "./piggy_uid.ts";

test("parseUidAnnotation() reads the compact uid → signature map", () => {
  const { signatures, problem } = parseUidAnnotation('{"a":"sig-a","b":"sig-b"}');
  assert.deepEqual([...signatures], [["a", "sig-a"], ["b", "sig-b"]]);
  assert.equal(problem, undefined);
});

test("parseUidAnnotation() treats unusable text as an empty map with a problem", () => {
  for (const text of ["{bad", "[]", '"text"', "null"]) {
    const { signatures, problem } = parseUidAnnotation(text);
    assert.equal(signatures.size, 0, text);
    assert.match(problem ?? "", /piggy-uid/, text);
  }
  const mixed = parseUidAnnotation('{"a":"sig-a","b":1}');
  assert.deepEqual([...mixed.signatures], [["a", "sig-a"]]);
  assert.match(mixed.problem ?? "", /non-string/);
  assert.equal(parseUidAnnotation(undefined).signatures.size, 0);
});

test("parseUidAnnotation() reads an annotation written by Go Piggy's json.Marshal", () => {
  // Go escapes <, > and & as \u003c, \u003e, \u0026 and writes no spaces.
  const text = '{"0a1b":"1de700c2","u\\u003c1\\u0026":"sig"}';
  const { signatures, problem } = parseUidAnnotation(text);
  assert.deepEqual([...signatures], [["0a1b", "1de700c2"], ["u<1&", "sig"]]);
  assert.equal(problem, undefined);
  assert.equal(parseUidAnnotation("").signatures.size, 0);
  assert.equal(parseUidAnnotation("").problem, undefined);
});

test("formatUidAnnotation() writes what Go's json.Marshal writes: keys sorted, no spaces", () => {
  const text = formatUidAnnotation({ b2: "sig-b", a1: "sig-a" });
  assert.equal(text, '{"a1":"sig-a","b2":"sig-b"}');
  assert.deepEqual([...parseUidAnnotation(text).signatures], [["a1", "sig-a"], ["b2", "sig-b"]]);
  assert.equal(formatUidAnnotation({}), "{}");
});
