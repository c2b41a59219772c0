import { test } from "node:test";
import assert from "node:assert/strict";
import { basicAuthorization, credentialFingerprint, parseChallenges, TokenCache } from "./auth.ts";

test("parseChallenges() reads Bearer realm, service and scope, quoted or not", () => {
  assert.deepEqual(
    parseChallenges(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
    ),
    [{
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/nginx:pull",
      },
    }],
  );
  assert.deepEqual(parseChallenges('Basic realm="Registry Realm"'), [
    { scheme: "basic", params: { realm: "Registry Realm" } },
  ]);
  assert.deepEqual(
    parseChallenges('Basic realm="a, \\"b\\"", Bearer realm=https://t/x, service=s'),
    [
      { scheme: "basic", params: { realm: 'a, "b"' } },
      { scheme: "bearer", params: { realm: "https://t/x", service: "s" } },
    ],
  );
  assert.deepEqual(parseChallenges(""), []);
});

test("basicAuthorization() and fingerprints never show the password", () => {
  const credential = { username: "AWS", password: "p:ss" };
  assert.equal(basicAuthorization(credential), `Basic ${btoa("AWS:p:ss")}`);
  const fingerprint = credentialFingerprint(credential);
  assert.doesNotMatch(fingerprint, /p:ss|AWS/);
  assert.notEqual(fingerprint, credentialFingerprint({ username: "AWS", password: "other" }));
  assert.equal(credentialFingerprint(undefined), "anonymous");
});

test("TokenCache keeps tokens until shortly before they expire, bounded", () => {
  let now = 0;
  const cache = new TokenCache({ max: 2, now: () => now });
  cache.set("a", "ta", 60);
  cache.set("short", "ts", 5); // shorter than the margin: not kept
  assert.equal(cache.get("a"), "ta");
  assert.equal(cache.get("short"), undefined);
  now = 49_000;
  assert.equal(cache.get("a"), "ta");
  now = 50_000;
  assert.equal(cache.get("a"), undefined);
  cache.set("x", "1", 60);
  cache.set("y", "2", 60);
  cache.set("z", "3", 60);
  assert.equal(cache.get("x"), undefined);
  assert.equal(cache.get("z"), "3");
});
