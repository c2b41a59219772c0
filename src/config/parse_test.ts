import { test } from "node:test";
import assert from "node:assert/strict";
import { parseGoBool, parseGoInt, parseMedium, parsePullPolicy, parseQuantity } from "./parse.ts";

test("parseGoBool() accepts exactly Go's ParseBool words", () => {
  for (const word of ["1", "t", "T", "TRUE", "true", "True"]) assert.equal(parseGoBool(word), true);
  for (const word of ["0", "f", "F", "FALSE", "false", "False"]) {
    assert.equal(parseGoBool(word), false);
  }
});

test("parseGoBool() rejects yes, no, mixed case, padding and empty text", () => {
  for (const word of ["yes", "no", "on", "tRUE", " true", "true ", "", "2"]) {
    assert.throws(() => parseGoBool(word), SyntaxError, word);
  }
});

test("parseGoInt() parses signed base-10 integers", () => {
  assert.equal(parseGoInt("123"), 123);
  assert.equal(parseGoInt("+7"), 7);
  assert.equal(parseGoInt("-3"), -3);
  assert.equal(parseGoInt("007"), 7);
});

test("parseGoInt() rejects non-integers", () => {
  for (const text of ["abc", "1.5", "1e3", "", " 1", "0x10", "1_000"]) {
    assert.throws(() => parseGoInt(text), SyntaxError, text);
  }
  assert.throws(() => parseGoInt("99999999999999999999"), RangeError);
});

const QUANTITIES: [string, number][] = [
  ["50m", 0.05],
  ["200m", 0.2],
  ["64Mi", 64 * 2 ** 20],
  ["1Gi", 2 ** 30],
  ["0.5", 0.5],
  ["1e3", 1000],
  ["1E3", 1000],
  ["128974848", 128974848],
  ["129M", 129e6],
  ["1.5Gi", 1.5 * 2 ** 30],
  [".5", 0.5],
  ["1k", 1000],
  ["0", 0],
  ["+1", 1],
];

for (const [text, value] of QUANTITIES) {
  test(`parseQuantity() parses ${JSON.stringify(text)}`, () => {
    assert.ok(Math.abs(parseQuantity(text) - value) < 1e-9 * Math.max(1, value));
  });
}

test("parseQuantity() rejects malformed and negative quantities", () => {
  for (
    const text of ["", "abc", "64MB", "1mi", "1e", "-1", "-64Mi", "1 Gi", "Mi", "1.2.3", "5KiB"]
  ) {
    assert.throws(() => parseQuantity(text), SyntaxError, text);
  }
});

test("parsePullPolicy() accepts the three Kubernetes policies only", () => {
  for (const policy of ["Always", "IfNotPresent", "Never"]) {
    assert.equal(parsePullPolicy(policy), policy);
  }
  for (const policy of ["always", "", "IfNotExists"]) {
    assert.throws(() => parsePullPolicy(policy), SyntaxError);
  }
});

test('parseMedium() accepts "" and Memory only', () => {
  assert.equal(parseMedium(""), "");
  assert.equal(parseMedium("Memory"), "Memory");
  for (const medium of ["memory", "HugePages", "Disk"]) {
    assert.throws(() => parseMedium(medium), SyntaxError);
  }
});

test("parseQuantity() gives the same answers from its memory of recent quantities", () => {
  // Many distinct quantities (more than it keeps), each read twice, with bad ones between.
  for (let round = 0; round < 2; round++) {
    for (let index = 0; index < 200; index++) {
      assert.equal(parseQuantity(`${index}Mi`), index * 2 ** 20);
      assert.equal(parseQuantity(`${index}m`), index * 1e-3);
      assert.throws(() => parseQuantity(`-${index + 1}Mi`), SyntaxError);
      assert.throws(() => parseQuantity(`${index}Xi`), SyntaxError);
    }
  }
});
