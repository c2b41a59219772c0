import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { credentialsFor, parsePullSecret } from "./docker_config.ts";
import { parseImageReference } from "./reference.ts";

const b64 = (text: string) => Buffer.from(text).toString("base64");

test("parsePullSecret() reads dockerconfigjson and dockercfg, username/password or auth", () => {
  const json = parsePullSecret("kubernetes.io/dockerconfigjson", {
    ".dockerconfigjson": b64(JSON.stringify({
      auths: {
        "ghcr.io": { username: "u1", password: "p1" },
        "registry.example.com:5000": { auth: b64("u2:p:2") },
        "empty.example.com": {},
      },
    })),
  });
  assert.deepEqual(json, [
    { key: "ghcr.io", credential: { username: "u1", password: "p1" } },
    { key: "registry.example.com:5000", credential: { username: "u2", password: "p:2" } },
  ]);
  const cfg = parsePullSecret("kubernetes.io/dockercfg", {
    ".dockercfg": b64(JSON.stringify({ "https://index.docker.io/v1/": { auth: b64("hub:pw") } })),
  });
  assert.deepEqual(cfg, [{
    key: "https://index.docker.io/v1/",
    credential: { username: "hub", password: "pw" },
  }]);
  assert.deepEqual(parsePullSecret("Opaque", { ".dockerconfigjson": b64("{}") }), []);
  assert.deepEqual(
    parsePullSecret("kubernetes.io/dockerconfigjson", { ".dockerconfigjson": "!!" }),
    [],
  );
  assert.deepEqual(parsePullSecret("kubernetes.io/dockerconfigjson", undefined), []);
});

test("credentialsFor() matches host, port, globs, path prefixes and Docker Hub aliases", () => {
  const entry = (key: string, username: string) => ({
    key,
    credential: { username, password: "x" },
  });
  const entries = [
    entry("https://index.docker.io/v1/", "hub"),
    entry("*.example.com", "glob"),
    entry("registry.example.com:5000", "port"),
    entry("registry.example.com/team", "team"),
    entry("registry.example.com", "host"),
    entry("ghcr.io", "ghcr"),
  ];
  const users = (image: string) =>
    credentialsFor(entries, parseImageReference(image)).map((c) => c.username);
  assert.deepEqual(users("nginx:1"), ["hub"]);
  assert.deepEqual(users("docker.io/bitnami/redis"), ["hub"]);
  assert.deepEqual(users("registry.example.com/team/app:1"), ["team", "host", "glob"]);
  assert.deepEqual(users("registry.example.com/other/app:1"), ["host", "glob"]);
  assert.deepEqual(users("registry.example.com/teamster/app"), ["host", "glob"]);
  assert.deepEqual(users("registry.example.com:5000/app"), ["port"]);
  assert.deepEqual(users("a.b.example.com/app"), []);
  assert.deepEqual(users("ghcr.io.evil.com/app"), []);
  assert.deepEqual(users("quay.io/app"), []);
});
