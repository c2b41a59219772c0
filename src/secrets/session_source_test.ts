import { test } from "node:test";
import assert from "node:assert/strict";
import { roleSessionName, SessionSecretSource } from "./session_source.ts";
import { IAM_ROLE_ARN_PATTERN } from "../constants.ts";

test("roleSessionName() is namespace@serviceaccount when it fits", () => {
  assert.equal(roleSessionName("team-a", "web"), "team-a@web");
  assert.equal(roleSessionName("a", "b"), "a@b");
});

test("roleSessionName() cuts long identities to 64 characters with a hash of the whole", () => {
  const ns = "n".repeat(63);
  const a = roleSessionName(ns, "s".repeat(200));
  const b = roleSessionName(ns, `${"s".repeat(199)}t`);
  for (const name of [a, b]) {
    assert.equal(name.length, 64);
    assert.match(name, /^[\w+=,.@-]{2,64}$/);
  }
  assert.notEqual(a, b);
  assert.equal(roleSessionName(ns, "s".repeat(200)), a);
});

test("roleSessionName() replaces characters AWS refuses and keeps names distinct", () => {
  const odd = roleSessionName("team a", "x/y");
  assert.match(odd, /^[\w+=,.@-]{2,64}$/);
  assert.notEqual(odd, roleSessionName("team-a", "x-y"));
});

test("IAM_ROLE_ARN_PATTERN accepts IAM role ARNs of every partition, with paths", () => {
  for (
    const arn of [
      "arn:aws:iam::123456789012:role/piggy",
      "arn:aws-us-gov:iam::123456789012:role/piggy",
      "arn:aws-cn:iam::123456789012:role/team/sub/piggy-reader",
    ]
  ) assert.ok(IAM_ROLE_ARN_PATTERN.test(arn), arn);
  for (
    const arn of [
      "arn:aws:iam::12345678901:role/piggy",
      "arn:aws:iam::123456789012:user/piggy",
      "arn:aws:sts::123456789012:role/piggy",
      "arn:aws:iam::123456789012:role/",
      "arn:aws:iam::123456789012:role/piggy\n",
      "piggy",
    ]
  ) assert.ok(!IAM_ROLE_ARN_PATTERN.test(arn), arn);
});

test("SessionSecretSource refuses a bad role, duration or size, and reads without identity", async () => {
  const base = { roleArn: "arn:aws:iam::123456789012:role/piggy", stsRegion: "us-east-1" };
  assert.throws(() => new SessionSecretSource({ ...base, roleArn: "piggy" }), /not an IAM role/);
  assert.throws(() => new SessionSecretSource({ ...base, durationSeconds: 899 }), /900..43200/);
  assert.throws(() => new SessionSecretSource({ ...base, maxSessions: 0 }), /maxSessions/);
  const source = new SessionSecretSource(base);
  try {
    for (const identity of [undefined, "", "team-a", ":web", "team-a:", "Team:web"]) {
      await assert.rejects(
        source.fetchSecret(
          { kind: "secretsManager", name: "team-a/app", version: "", region: "us-east-1" },
          identity === undefined ? {} : { identity },
        ),
        { code: "SessionIdentityMissing" },
      );
    }
    assert.equal(source.sessionCount, 0);
  } finally {
    source.destroy();
  }
});
