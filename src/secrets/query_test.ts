import { test } from "node:test";
import assert from "node:assert/strict";
import { queryKey, queryLabel, querySubject, secretQueryOf } from "./query.ts";

const NONE = { awsSecretName: "", awsSsmParameterPath: "", awsRegion: "", awsSecretVersion: "" };

test("secretQueryOf() prefers the SSM path, then the secret name, else no query", () => {
  assert.deepEqual(
    secretQueryOf({
      ...NONE,
      awsSecretName: "app/db",
      awsSsmParameterPath: "/app",
      awsRegion: "r",
    }),
    { kind: "ssm", path: "/app", region: "r" },
  );
  assert.deepEqual(
    secretQueryOf({ ...NONE, awsSecretName: "app/db", awsSecretVersion: "AWSPREVIOUS" }),
    { kind: "secretsManager", name: "app/db", version: "AWSPREVIOUS", region: "" },
  );
  assert.equal(secretQueryOf(NONE), undefined);
});

test("queryLabel() and querySubject() name what each kind reads", () => {
  const secret = secretQueryOf({ ...NONE, awsSecretName: "app/db" })!;
  const ssm = secretQueryOf({ ...NONE, awsSsmParameterPath: "/app" })!;
  assert.equal(queryLabel(secret), "app/db");
  assert.equal(queryLabel(ssm), "/app");
  assert.equal(querySubject(secret), 'Cannot load secret "app/db"');
  assert.equal(querySubject(ssm), 'Cannot load parameters under "/app"');
});

test("queryKey() ignores field order and tells kinds and every field apart", () => {
  assert.equal(
    queryKey({ kind: "secretsManager", name: "a", version: "", region: "r" }),
    queryKey({ region: "r", version: "", name: "a", kind: "secretsManager" }),
  );
  const keys = new Set([
    queryKey({ kind: "secretsManager", name: "/a", version: "", region: "" }),
    queryKey({ kind: "ssm", path: "/a", region: "" }),
    queryKey({ kind: "secretsManager", name: "/a", version: "v", region: "" }),
    queryKey({ kind: "secretsManager", name: "/a", version: "", region: "r" }),
  ]);
  assert.equal(keys.size, 4);
});
