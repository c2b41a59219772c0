import { test } from "node:test";
import assert from "node:assert/strict";
import { formatGoDuration, parseGoDuration } from "./duration.ts";

const VALID: [string, number][] = [
  ["0", 0],
  ["+0", 0],
  ["0s", 0],
  ["300ms", 300],
  ["1.5s", 1500],
  ["1m30s", 90_000],
  ["1h", 3_600_000],
  ["2h45m", 9_900_000],
  [".5s", 500],
  ["1.s", 1000],
  ["1500us", 1.5],
  ["1500\u00b5s", 1.5],
  ["1500\u03bcs", 1.5],
  ["2000000ns", 2],
  ["+5s", 5000],
  ["1h1m1s1ms", 3_661_001],
];

for (const [text, ms] of VALID) {
  test(`parseGoDuration() parses ${JSON.stringify(text)} as ${ms} ms`, () => {
    assert.ok(Math.abs(parseGoDuration(text) - ms) < 1e-9);
  });
}

const INVALID = [
  "",
  "-",
  "-1s",
  "-0",
  "5",
  "1",
  "s",
  "1S",
  "1d",
  "1 s",
  " 1s",
  "1s ",
  "1h-5m",
  ".s",
  "1..5s",
  "abc",
  "1sec",
];

for (const text of INVALID) {
  test(`parseGoDuration() rejects ${JSON.stringify(text)} with a SyntaxError`, () => {
    assert.throws(() => parseGoDuration(text), SyntaxError);
  });
}

test("formatGoDuration() formats whole and sub-second durations as Go does", () => {
  assert.equal(formatGoDuration(0), "0s");
  assert.equal(formatGoDuration(250), "250ms");
  assert.equal(formatGoDuration(1500), "1.5s");
  assert.equal(formatGoDuration(90_000), "1m30s");
  assert.equal(formatGoDuration(3_600_000), "1h0m0s");
});

test("formatGoDuration() output parses back to the same value", () => {
  for (const ms of [0, 1, 999, 1000, 61_000, 3_723_500]) {
    assert.equal(parseGoDuration(formatGoDuration(ms)), ms);
  }
});

test("formatGoDuration() rejects negative durations", () => {
  assert.throws(() => formatGoDuration(-1), RangeError);
});

test("parseGoDuration() refuses long texts without scanning them", () => {
  // The annotation value comes from any pod author: 60k digits used to backtrack for seconds.
  const started = performance.now();
  assert.throws(() => parseGoDuration("1".repeat(60_000)), /longer than 64 characters/);
  assert.throws(() => parseGoDuration(`${"1".repeat(63)}x`), SyntaxError);
  assert.ok(performance.now() - started < 1000);
  assert.equal(parseGoDuration("1.5s"), 1500);
  assert.equal(parseGoDuration("2.s"), 2000);
});

test("parseGoDuration() refuses durations no timer can wait for", () => {
  assert.equal(parseGoDuration("596h31m23s"), 2_147_483_000);
  assert.throws(() => parseGoDuration("600h"), /out of range/);
});
