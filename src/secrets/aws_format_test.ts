import assert from "node:assert/strict";
import { test } from "node:test";
import { SecretSourceError } from "../errors.ts";
import { addParameters, parseSecretString, versionSelector } from "./aws_format.ts";

test("versionSelector() tells version ids from stages", () => {
  const cases: [string, ReturnType<typeof versionSelector>][] = [
    ["", { VersionStage: "AWSCURRENT" }],
    ["   ", { VersionStage: "AWSCURRENT" }],
    ["AWSCURRENT", { VersionStage: "AWSCURRENT" }],
    ["AWSPREVIOUS", { VersionStage: "AWSPREVIOUS" }],
    ["v2", { VersionStage: "v2" }],
    ["6f8723a0-bd71-4a5a-9a5d-7f6f2e2bd3c1", {
      VersionId: "6f8723a0-bd71-4a5a-9a5d-7f6f2e2bd3c1",
    }],
    [" 6F8723A0-BD71-4A5A-9A5D-7F6F2E2BD3C1 ", {
      VersionId: "6F8723A0-BD71-4A5A-9A5D-7F6F2E2BD3C1",
    }],
    ["6f8723a0bd714a5a9a5d7f6f2e2bd3c1", { VersionId: "6f8723a0bd714a5a9a5d7f6f2e2bd3c1" }],
    ["a".repeat(64), { VersionId: "a".repeat(64) }],
    // too short, too long, not hex, or not enough hex digits: a stage label
    ["6f8723a0bd714a5a9a5d7f6f2e2bd3c", { VersionStage: "6f8723a0bd714a5a9a5d7f6f2e2bd3c" }],
    ["a".repeat(65), { VersionStage: "a".repeat(65) }],
    ["6f8723a0-bd71-4a5a-9a5d-7f6f2e2bd3cz", {
      VersionStage: "6f8723a0-bd71-4a5a-9a5d-7f6f2e2bd3cz",
    }],
    ["-".repeat(40), { VersionStage: "-".repeat(40) }],
    ["0123456789abcdef-0123456789abcde", { VersionStage: "0123456789abcdef-0123456789abcde" }],
  ];
  for (const [input, expected] of cases) {
    assert.deepEqual(versionSelector(input), expected, JSON.stringify(input));
  }
});

test("parseSecretString() keeps strings and the JSON text of other values", () => {
  assert.deepEqual(parseSecretString("s", '{"DB_USER":"admin","DB_PASS":"secret"}'), {
    DB_USER: "admin",
    DB_PASS: "secret",
  });
  assert.deepEqual(parseSecretString("s", '{"N":1e3,"T":false,"Z":null,"O":{"a":[1,"b"]}}'), {
    N: "1e3",
    T: "false",
    Z: "null",
    O: '{"a":[1,"b"]}',
  });
  assert.deepEqual(parseSecretString("s", "{}"), {});
});

test("parseSecretString() rejects non-objects without quoting the text", () => {
  const canary = "CANARY-parse-5e1";
  const cases: [string, RegExp][] = [
    [`{"K":"${canary}"`, /SecretString is not valid JSON$/],
    [canary, /SecretString is not valid JSON$/],
    [JSON.stringify(canary), /must be a JSON object, got a string$/],
    [`["${canary}"]`, /must be a JSON object, got an array$/],
    ["42", /must be a JSON object, got a number$/],
    ["null", /must be a JSON object, got null$/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseSecretString("app/db", text), (error: unknown) => {
      assert.ok(error instanceof SecretSourceError);
      assert.equal(error.code, "InvalidSecretFormat");
      assert.match(error.message, /^Cannot load secret "app\/db": /);
      assert.match(error.message, message);
      assert.ok(!error.message.includes(canary));
      assert.equal(error.cause, undefined);
      return true;
    }, text);
  }
});

test("addParameters() keys parameters by the last path element", () => {
  const into = { values: {} as Record<string, string>, origins: new Map<string, string>() };
  addParameters("/config", [
    { Name: "/config/DB_HOST", Value: "localhost" },
    { Name: "/config/nested/deeper/PORT", Value: "5432" },
    { Name: "/config/LIST", Value: "a,b" },
    { Name: "/config/NO_VALUE" },
    { Name: "/config/trailing/", Value: "ignored" },
  ], into);
  addParameters("/config", [{ Name: "/config/DB_HOST", Value: "localhost" }], into);
  assert.deepEqual(into.values, { DB_HOST: "localhost", PORT: "5432", LIST: "a,b" });
});

test("addParameters() names both parameters of a collision", () => {
  const into = { values: {} as Record<string, string>, origins: new Map<string, string>() };
  addParameters("/a", [{ Name: "/a/c/X", Value: "1" }], into);
  assert.throws(
    () => addParameters("/a", [{ Name: "/a/b/X", Value: "2" }], into),
    (error: unknown) => {
      assert.ok(error instanceof SecretSourceError);
      assert.equal(error.code, "ParameterNameCollision");
      assert.equal(
        error.message,
        `Cannot load parameters under "/a": "/a/b/X" and "/a/c/X" both map to key "X"`,
      );
      return true;
    },
  );
});

test("parseSecretString() keeps the exact JSON text of non-string values", () => {
  const text = '{ "ID" : 12345678901234567890, "V":1.10,"E":1e3 ,"N":{"x":1.0, "s":"a,}\\"b"},' +
    '"A":[1, 2],"B":true,"Z":null,"S":"x\\u0041","K\\"Q":-0.0 }';
  assert.deepEqual(parseSecretString("s", text), {
    ID: "12345678901234567890",
    V: "1.10",
    E: "1e3",
    N: '{"x":1.0, "s":"a,}\\"b"}',
    A: "[1, 2]",
    B: "true",
    Z: "null",
    S: "xA",
    'K"Q': "-0.0",
  });
});

test("parseSecretString() takes the last of duplicate keys, like JSON.parse", () => {
  assert.deepEqual(parseSecretString("s", '{"A":1.50,"A":2.50}'), { A: "2.50" });
});
