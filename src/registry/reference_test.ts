import { test } from "node:test";
import assert from "node:assert/strict";
import { formatImageReference, manifestReference, parseImageReference } from "./reference.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;

test("Docker Hub names get docker.io, library/ and latest", () => {
  assert.deepEqual(parseImageReference("nginx"), {
    registry: "docker.io",
    apiHost: "registry-1.docker.io",
    repository: "library/nginx",
    tag: "latest",
  });
  assert.equal(
    formatImageReference(parseImageReference("bitnami/redis:7")),
    "docker.io/bitnami/redis:7",
  );
  assert.equal(
    formatImageReference(parseImageReference("index.docker.io/nginx:1")),
    "docker.io/library/nginx:1",
  );
  assert.equal(
    formatImageReference(parseImageReference("docker.io/nginx")),
    "docker.io/library/nginx:latest",
  );
});

test("registries with ports, localhost, IPs and upper case are registries", () => {
  const cases: Array<[string, string, string, string | undefined]> = [
    ["ghcr.io/org/app:v1", "ghcr.io", "org/app", "v1"],
    ["registry.example.com:5000/team/app", "registry.example.com:5000", "team/app", "latest"],
    ["localhost/app:dev", "localhost", "app", "dev"],
    ["localhost:5000/app", "localhost:5000", "app", "latest"],
    ["127.0.0.1:5000/a/b/c:1.2.3", "127.0.0.1:5000", "a/b/c", "1.2.3"],
    ["[::1]:5000/app:v1", "[::1]:5000", "app", "v1"],
    ["Example/app", "Example", "app", "latest"],
    [
      "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v1",
      "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
      "app",
      "v1",
    ],
  ];
  for (const [image, registry, repository, tag] of cases) {
    const ref = parseImageReference(image);
    assert.equal(ref.registry, registry, image);
    assert.equal(ref.apiHost, registry, image);
    assert.equal(ref.repository, repository, image);
    assert.equal(ref.tag, tag, image);
  }
});

test("digests: with and without a tag, fetched by digest", () => {
  const only = parseImageReference(`ghcr.io/org/app@${DIGEST}`);
  assert.equal(only.tag, undefined);
  assert.equal(only.digest, DIGEST);
  assert.equal(manifestReference(only), DIGEST);
  const both = parseImageReference(`app:v1@${DIGEST}`);
  assert.equal(both.tag, "v1");
  assert.equal(manifestReference(both), DIGEST);
  assert.equal(formatImageReference(both), `docker.io/library/app:v1@${DIGEST}`);
  assert.equal(manifestReference(parseImageReference("app:v2")), "v2");
});

test("invalid references are SyntaxErrors naming the image", () => {
  for (
    const image of [
      "",
      " nginx",
      "::invalid::",
      "UPPER",
      "app:",
      "app:-bad",
      `app@sha256:${"a".repeat(10)}`,
      "app@md5:abc",
      "ghcr.io/",
      "ghcr.io//app",
      "host:99999/app",
      "bad_host.com/app",
      `a/${"b".repeat(300)}`,
    ]
  ) {
    assert.throws(() => parseImageReference(image), SyntaxError, image);
  }
  assert.throws(() => parseImageReference("app:-bad"), /Image "app:-bad"/);
});
