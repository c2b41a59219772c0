import { test } from "node:test";
import assert from "node:assert/strict";
import {
  checkAtAdmission,
  mayRead,
  parseAccessPolicy,
  parseGuardPrefix,
  placeQuery,
  secretNameOf,
  ssmPathSegments,
} from "./access_policy.ts";
import type { SecretQuery } from "./source.ts";

const ACCOUNT = "123456789012";

function secret(name: string): SecretQuery {
  return { kind: "secretsManager", name, version: "", region: "" };
}

function ssm(path: string): SecretQuery {
  return { kind: "ssm", path, region: "" };
}

test("secretNameOf() reduces a full secret ARN to its name and refuses other ARNs", () => {
  const cases: Array<[string, string | undefined]> = [
    ["team-a/app", "team-a/app"],
    [`arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:team-a/app-AbC123`, "team-a/app"],
    [`arn:aws-cn:secretsmanager:cn-north-1:${ACCOUNT}:secret:team-a/x-y-000000`, "team-a/x-y"],
    [`arn:aws-us-gov:secretsmanager:us-gov-west-1:${ACCOUNT}:secret:a/b-zzzzzz`, "a/b"],
    // Partial ARN (no 6-character suffix): AWS would match by prefix, so it is refused.
    [`arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:team-a/app`, undefined],
    [`arn:aws:ssm:us-east-1:${ACCOUNT}:parameter/team-a/app-AbC123`, undefined],
    [`arn:aws:secretsmanager:us-east-1:12345:secret:team-a/app-AbC123`, undefined],
    [`ARN:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:team-a/app`, undefined],
    [`arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:team-a/a pp-AbC123`, undefined],
    ["arn:", undefined],
  ];
  for (const [id, name] of cases) assert.equal(secretNameOf(id), name, id);
});

test("ssmPathSegments() refuses relative paths and empty, . or .. segments", () => {
  assert.deepEqual(ssmPathSegments("/team-a/web"), ["team-a", "web"]);
  assert.deepEqual(ssmPathSegments("/team-a/web/"), ["team-a", "web"]);
  for (const path of ["team-a/web", "/team-a//web", "/team-a/../b", "/team-a/./b", "//", "/"]) {
    assert.equal(ssmPathSegments(path), undefined, path);
  }
});

test("placeQuery() compares names by prefix and SSM paths segment by segment", () => {
  const cases: Array<[SecretQuery, string, boolean]> = [
    [secret("team-a/app"), "", true],
    [secret("team-a"), "", false],
    [secret("team-ab/app"), "", false],
    [secret("team-b/team-a/app"), "", false],
    [secret("piggy/team-a/app"), "piggy/", true],
    [secret("team-a/app"), "piggy/", false],
    [ssm("/team-a"), "", true],
    [ssm("/team-a/web"), "", true],
    [ssm("/team-ab/web"), "", false],
    [ssm("/piggy/team-a/web"), "piggy/", true],
    [ssm("/piggy/team-ab"), "piggy/", false],
    [ssm("/piggy-team-a/x"), "piggy-", true],
  ];
  for (const [query, prefix, inside] of cases) {
    assert.equal(placeQuery(query, "team-a", prefix).inNamespace, inside, JSON.stringify(query));
  }
  assert.throws(() => placeQuery(ssm("/team-a/../team-b"), "team-a", ""), RangeError);
  assert.throws(
    () => placeQuery(secret(`arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:x`), "a", ""),
    /not a secret name or a full Secrets Manager secret ARN/,
  );
});

test("mayRead() lets PIGGY_ALLOWED_SA decide when present, else the policy", () => {
  const base = { serviceAccount: "a:web" };
  assert.equal(mayRead("any", { ...base, allowed: ["b:x"], inNamespace: true }), false);
  assert.equal(mayRead("allowed-sa", { ...base, allowed: ["a:web"], inNamespace: false }), true);
  assert.equal(mayRead("allowed-sa", { ...base, allowed: undefined, inNamespace: true }), false);
  assert.equal(mayRead("namespace", { ...base, allowed: undefined, inNamespace: true }), true);
  assert.equal(mayRead("namespace", { ...base, allowed: undefined, inNamespace: false }), false);
  assert.equal(mayRead("any", { ...base, allowed: undefined, inNamespace: false }), true);
});

test("checkAtAdmission() denies what /secret always refuses and warns when a listing is needed", () => {
  const guard = { policy: "namespace", prefix: "" } as const;
  assert.deepEqual(checkAtAdmission(guard, secret("team-a/x"), "team-a:web"), {});
  assert.match(
    checkAtAdmission(guard, secret("team-b/x"), "team-a:web").warning ?? "",
    /"team-b\/x" is served only if its PIGGY_ALLOWED_SA lists "team-a:web".*POLICY=namespace/,
  );
  assert.match(
    checkAtAdmission(guard, ssm("/team-a/../x"), "team-a:web").denial ?? "",
    /PIGGY_SECRET_ACCESS_POLICY=namespace refuses it/,
  );
  assert.ok(
    checkAtAdmission({ policy: "allowed-sa", prefix: "" }, secret("team-a/x"), "team-a:web")
      .warning,
  );
  assert.deepEqual(
    checkAtAdmission({ policy: "any", prefix: "" }, secret("b/x"), "team-a:web"),
    {},
  );
});

test("parseAccessPolicy() and parseGuardPrefix() accept only valid values", () => {
  assert.equal(parseAccessPolicy(" allowed-sa "), "allowed-sa");
  assert.throws(() => parseAccessPolicy("Namespace"), SyntaxError);
  assert.equal(parseGuardPrefix("piggy/"), "piggy/");
  assert.equal(parseGuardPrefix("org/piggy-"), "org/piggy-");
  for (const bad of ["/x", "x//y", "./", "x/../", "a b", "x\n"]) {
    assert.throws(() => parseGuardPrefix(bad), SyntaxError, bad);
  }
});
