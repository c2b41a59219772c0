import assert from "node:assert/strict";
import { test } from "node:test";
import { LAUNCHER_ONLY_KEYS, RESERVED_KEYS } from "../constants.ts";
import { referenceKey } from "../pod/container_refs.ts";
import { buildChildEnvironment, type EnvEntries } from "./resolve.ts";

const keys: Array<[string, string | undefined]> = [
  ["piggy:DB_PASS", "DB_PASS"],
  ["piggy:TEST_ENV\n", "TEST_ENV"],
  ["piggy:TEST_ENV\r\n", "TEST_ENV"],
  ["piggy:A\npiggy:B", "A"],
  ["piggy:", ""],
  ["piggy:\nX", ""],
  ["piggy:with space", "with space"],
  ["PIGGY:DB_PASS", undefined],
  ["value", undefined],
  [" piggy:X", undefined],
];

for (const [value, key] of keys) {
  test(`referenceKey() of ${JSON.stringify(value)} is ${JSON.stringify(key)}`, () => {
    assert.equal(referenceKey(value), key);
  });
}

test("buildChildEnvironment() keeps a plain variable", () => {
  const child = buildChildEnvironment([["MY_VAR", "my-value"]], {});
  assert.deepEqual(child.env, [["MY_VAR", "my-value"]]);
  assert.deepEqual(child.unresolved, []);
});

test("buildChildEnvironment() drops reserved names", () => {
  const child = buildChildEnvironment([["PIGGY_AWS_REGION", "us-east-1"], ["A", "1"]], {});
  assert.deepEqual(child.env, [["A", "1"]]);
});

test("buildChildEnvironment() replaces references and keeps other values", () => {
  const child = buildChildEnvironment(
    [["DB_PASS", "piggy:db-pass"], ["API_KEY", "piggy:api-key"], ["NORMAL", "value"]],
    { "db-pass": "secret123", "api-key": "key456" },
  );
  assert.deepEqual(child.env, [["DB_PASS", "secret123"], ["API_KEY", "key456"], [
    "NORMAL",
    "value",
  ]]);
  assert.deepEqual(child.resolved, ["DB_PASS", "API_KEY"]);
  assert.deepEqual(child.unresolved, []);
});

test("buildChildEnvironment() removes every reserved and launcher-only name, PIGGY_UID included", () => {
  const env: Array<[string, string]> = [...RESERVED_KEYS, ...LAUNCHER_ONLY_KEYS].map((
    name,
  ) => [name, "x"]);
  env.push(["PIGGY_OTHER", "kept"], ["PATH", "/bin"]);
  const child = buildChildEnvironment(env, {});
  assert.deepEqual(child.env, [["PIGGY_OTHER", "kept"], ["PATH", "/bin"]]);
  assert.ok(LAUNCHER_ONLY_KEYS.has("PIGGY_UID"));
});

test("buildChildEnvironment() resolves the key up to the first newline", () => {
  const child = buildChildEnvironment([["T", "piggy:TEST_ENV\n"], ["U", "piggy:A\npiggy:B"]], {
    TEST_ENV: "t",
    A: "a",
    B: "b",
  });
  assert.deepEqual(child.env, [["T", "t"], ["U", "a"]]);
});

test("buildChildEnvironment() reports a missing key, an empty key and any-case leftovers", () => {
  const child = buildChildEnvironment(
    [
      ["MISSING", "piggy:NOPE"],
      ["EMPTY", "piggy:"],
      ["UPPER", "PIGGY:DB"],
      ["MIXED", "Piggy:DB"],
      ["OK", "piggy:DB"],
      ["TEXT", "not piggy:DB"],
    ],
    { DB: "d" },
  );
  assert.deepEqual(child.unresolved, ["MISSING", "EMPTY", "UPPER", "MIXED"]);
  assert.deepEqual(child.resolved, ["OK"]);
  assert.deepEqual(child.env.find(([name]) => name === "MISSING"), ["MISSING", "piggy:NOPE"]);
});

test("buildChildEnvironment() does not flag a secret value that itself starts with piggy:", () => {
  const child = buildChildEnvironment([["A", "piggy:X"]], { X: "piggy:literal" });
  assert.deepEqual(child.env, [["A", "piggy:literal"]]);
  assert.deepEqual(child.unresolved, []);
});

test("buildChildEnvironment() never resolves a reserved key such as PIGGY_ALLOWED_SA", () => {
  const child = buildChildEnvironment([["SA", "piggy:PIGGY_ALLOWED_SA"]], {
    PIGGY_ALLOWED_SA: "demo:app",
  });
  assert.deepEqual(child.env, [["SA", "piggy:PIGGY_ALLOWED_SA"]]);
  assert.deepEqual(child.unresolved, ["SA"]);
});

test("buildChildEnvironment() keeps the original order and does not modify its inputs", () => {
  const env: EnvEntries = [["Z", "piggy:K"], ["A", "1"], ["PIGGY_UID", "u"], ["M", "2"]];
  const secrets = { K: "k" };
  const before = JSON.stringify([env, secrets]);
  const child = buildChildEnvironment(env, secrets);
  assert.deepEqual(child.env.map(([name]) => name), ["Z", "A", "M"]);
  assert.equal(JSON.stringify([env, secrets]), before);
});

test("buildChildEnvironment() ignores inherited object keys such as toString", () => {
  const child = buildChildEnvironment([["A", "piggy:toString"]], {});
  assert.deepEqual(child.unresolved, ["A"]);
});

test("buildChildEnvironment() never passes a secret value holding a NUL byte", () => {
  const child = buildChildEnvironment([["DB", "piggy:DB"], ["OK", "piggy:OK"]], {
    DB: "hunter2\0tail",
    OK: "fine",
  });
  assert.deepEqual(child.env, [["DB", "piggy:DB"], ["OK", "fine"]]);
  assert.deepEqual(child.invalid, ["DB"]);
  assert.deepEqual(child.unresolved, ["DB"]);
  assert.deepEqual(child.resolved, ["OK"]);
});
