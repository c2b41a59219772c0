/**
 * The image-config client against Debian's real `docker-registry` (CNCF distribution) on loopback
 * with TLS from a test CA: htpasswd (Basic) and token (Bearer, through the token stand-in)
 * registries, images pushed with skopeo (Entrypoint only / Cmd only / both / neither, a multi-arch
 * index), wrong credentials, an untrusted certificate, a registry that never answers, caching and
 * single-flight counted in the registry's own request log, forbidden addresses, and (with a small
 * HTTPS stand-in) redirects that leave the registry's origin and content that does not match its
 * digest.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server } from "node:https";
import { type AddressInfo, createServer as createNetServer, type Socket } from "node:net";
import { RegistryClient, type RegistryClientOptions } from "../src/registry/client.ts";
import { ImageLookupError } from "../src/registry/errors.ts";
import { createTestCa, type TestCa } from "../testing/pki.ts";
import { startRegistry, type TestRegistry } from "../testing/registry.ts";

const ALICE = { username: "alice", password: "wonderland" };
const WRONG = { username: "alice", password: "nope" };
const ARM64 = { os: "linux", architecture: "arm64" };
const AMD64 = { os: "linux", architecture: "amd64" };

let ca: TestCa;
let basic: TestRegistry;
let bearer: TestRegistry;
const clients: RegistryClient[] = [];

function client(options: RegistryClientOptions = {}): RegistryClient {
  const created = new RegistryClient({ caCertificates: ca.cert, allowLoopback: true, ...options });
  clients.push(created);
  return created;
}

async function failure(promise: Promise<unknown>): Promise<ImageLookupError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ImageLookupError, `not an ImageLookupError: ${error}`);
    return error;
  }
  assert.fail("the lookup succeeded");
}

async function manifestGets(registry: TestRegistry, repository: string): Promise<number> {
  await registry.settled();
  return registry.requests().filter((r) =>
    r.method === "GET" && r.uri.startsWith(`/v2/${repository}/manifests/`)
  ).length;
}

before(async () => {
  ca = createTestCa("registry-test");
  [basic, bearer] = await Promise.all([
    startRegistry({ ca, auth: { kind: "htpasswd", users: { alice: ALICE.password } } }),
    startRegistry({ ca, auth: { kind: "token", users: { alice: ALICE.password } } }),
  ]);
  await Promise.all([
    basic.push("app/both", "v1", { entrypoint: ["/bin/app"], cmd: ["--serve", "x y"] }),
    basic.push("app/entrypoint", "v1", { entrypoint: ["/bin/app"] }),
    basic.push("app/cmd", "v1", { cmd: ["/bin/sh", "-c", "echo hi"] }),
    basic.push("app/neither", "v1", {}),
    basic.push("app/multi", "v1", {
      index: [
        { architecture: "amd64", entrypoint: ["/bin/app"], cmd: ["amd"] },
        { architecture: "arm64", variant: "v8", entrypoint: ["/bin/app"], cmd: ["arm"] },
      ],
    }),
    basic.push("app/same", "v1", {
      index: [
        { architecture: "amd64", entrypoint: ["/bin/same"] },
        { architecture: "arm64", entrypoint: ["/bin/same"] },
      ],
    }),
    basic.push("app/cached", "v1", { entrypoint: ["/bin/cached"] }),
    basic.push("app/cached", "latest", { entrypoint: ["/bin/cached"] }),
    basic.push("app/many", "v1", { entrypoint: ["/bin/many"] }),
    bearer.push("team/app", "v1", { entrypoint: ["/bin/bearer"], cmd: ["run"] }),
    bearer.push("team/app", "v2", { entrypoint: ["/bin/bearer"], cmd: ["run2"] }),
  ]);
});

after(async () => {
  clients.forEach((c) => c.close());
  await Promise.all([basic?.stop(), bearer?.stop()]);
});

test("Basic registry: Entrypoint and Cmd, each alone, both and neither", async () => {
  const registry = client();
  const look = (repo: string) =>
    registry.lookup(`${basic.host}/${repo}:v1`, { credentials: [ALICE] });
  assert.deepEqual(await look("app/both"), { entrypoint: ["/bin/app"], cmd: ["--serve", "x y"] });
  assert.deepEqual(await look("app/entrypoint"), { entrypoint: ["/bin/app"], cmd: [] });
  assert.deepEqual(await look("app/cmd"), { entrypoint: [], cmd: ["/bin/sh", "-c", "echo hi"] });
  assert.deepEqual(await look("app/neither"), { entrypoint: [], cmd: [] });
});

test("Basic registry: wrong or missing credentials fail; the first accepted credential is used", async () => {
  const image = `${basic.host}/app/both:v1`;
  const wrong = await failure(client().lookup(image, { credentials: [WRONG] }));
  assert.equal(wrong.failure, "unauthorized");
  assert.match(wrong.message, /refused the pull-secret credentials/);
  assert.doesNotMatch(wrong.message, /nope/);
  const none = await failure(client().lookup(image));
  assert.equal(none.failure, "unauthorized");
  assert.match(none.message, /requires credentials/);
  assert.deepEqual(
    await client().lookup(image, { credentials: [WRONG, ALICE] }),
    { entrypoint: ["/bin/app"], cmd: ["--serve", "x y"] },
  );
  const missing = await failure(
    client().lookup(`${basic.host}/app/absent:v1`, { credentials: [ALICE] }),
  );
  assert.equal(missing.failure, "not_found");
});

test("Bearer registry: token from the realm with the pull scope, reused for the next lookup", async () => {
  const registry = client();
  const before = bearer.tokenRequests().length;
  assert.deepEqual(
    await registry.lookup(`${bearer.host}/team/app:v1`, { credentials: [ALICE] }),
    { entrypoint: ["/bin/bearer"], cmd: ["run"] },
  );
  assert.deepEqual(
    await registry.lookup(`${bearer.host}/team/app:v2`, { credentials: [ALICE] }),
    { entrypoint: ["/bin/bearer"], cmd: ["run2"] },
  );
  assert.deepEqual(bearer.tokenRequests().slice(before), ["repository:team/app:pull"]);
  const wrong = await failure(
    client().lookup(`${bearer.host}/team/app:v1`, { credentials: [WRONG] }),
  );
  assert.equal(wrong.failure, "unauthorized");
  assert.match(wrong.message, /token service/);
  const anonymous = await failure(client().lookup(`${bearer.host}/team/app:v1`));
  assert.equal(anonymous.failure, "unauthorized");
});

test("multi-arch index: the pod's platform, a missing platform, and platforms that disagree", async () => {
  const registry = client();
  const image = `${basic.host}/app/multi:v1`;
  const credentials = [ALICE];
  assert.deepEqual((await registry.lookup(image, { credentials })).cmd, ["amd"]);
  assert.deepEqual((await registry.lookup(image, { credentials, platforms: [ARM64] })).cmd, [
    "arm",
  ]);
  const missing = await failure(
    registry.lookup(image, { credentials, platforms: [{ os: "linux", architecture: "s390x" }] }),
  );
  assert.equal(missing.failure, "platform");
  assert.match(
    missing.message,
    /no linux\/s390x variant \(it has linux\/amd64, linux\/arm64\/v8\)/,
  );
  const disagree = await failure(
    registry.lookup(image, { credentials, platforms: [AMD64, ARM64] }),
  );
  assert.equal(disagree.failure, "platform");
  assert.match(disagree.message, /different Entrypoint\/Cmd for linux\/amd64 and linux\/arm64/);
  assert.deepEqual(
    await registry.lookup(`${basic.host}/app/same:v1`, { credentials, platforms: [AMD64, ARM64] }),
    { entrypoint: ["/bin/same"], cmd: [] },
  );
});

test("cache: tags reused within the TTL, never latest or Always; digests kept", async () => {
  let now = 1_000_000;
  const registry = client({ now: () => now, tagTtlMs: 60_000 });
  const credentials = [ALICE];
  const count = () => manifestGets(basic, "app/cached");
  const start = await count();
  await registry.lookup(`${basic.host}/app/cached:v1`, { credentials });
  await registry.lookup(`${basic.host}/app/cached:v1`, { credentials });
  assert.equal(await count() - start, 1, "a tag is cached");
  await registry.lookup(`${basic.host}/app/cached:v1`, { credentials, pullAlways: true });
  assert.equal(await count() - start, 2, "imagePullPolicy Always is not cached");
  await registry.lookup(`${basic.host}/app/cached:latest`, { credentials });
  await registry.lookup(`${basic.host}/app/cached:latest`, { credentials });
  assert.equal(await count() - start, 4, "latest is not cached");
  now += 60_000;
  await registry.lookup(`${basic.host}/app/cached:v1`, { credentials });
  assert.equal(await count() - start, 5, "the tag TTL expired");
  // Look the image up by digest: the manifest's digest is its sha256.
  const manifest = await fetchManifestDigest(registry, "app/cached", "v1");
  await registry.lookup(`${basic.host}/app/cached@${manifest}`, { credentials });
  now += 365 * 24 * 3600_000;
  await registry.lookup(`${basic.host}/app/cached@${manifest}`, { credentials });
  assert.equal(await count() - start, 6, "a digest is kept without expiry");
  // Other credentials do not share the cached result.
  await failure(registry.lookup(`${basic.host}/app/cached:v1`, { credentials: [WRONG] }));
});

/** The digest of a tag's manifest, read from the registry's `Docker-Content-Digest` via HEAD. */
async function fetchManifestDigest(_registry: RegistryClient, repo: string, tag: string) {
  const https = await import("node:https");
  return await new Promise<string>((resolve, reject) => {
    const req = https.request({
      host: "127.0.0.1",
      port: Number(basic.host.split(":")[1]),
      method: "HEAD",
      path: `/v2/${repo}/manifests/${tag}`,
      ca: ca.cert,
      headers: {
        accept: "application/vnd.oci.image.manifest.v1+json",
        authorization: `Basic ${
          Buffer.from(`${ALICE.username}:${ALICE.password}`).toString("base64")
        }`,
      },
    }, (res) => {
      res.resume();
      const digest = res.headers["docker-content-digest"];
      typeof digest === "string" ? resolve(digest) : reject(new Error("no digest header"));
    });
    req.on("error", reject);
    req.end();
  });
}

test("50 simultaneous lookups of one image make one registry round trip", async () => {
  const registry = client();
  const start = await manifestGets(basic, "app/many");
  const results = await Promise.all(
    Array.from(
      { length: 50 },
      () => registry.lookup(`${basic.host}/app/many:v1`, { credentials: [ALICE] }),
    ),
  );
  assert.ok(results.every((r) => r.entrypoint[0] === "/bin/many"));
  assert.equal(await manifestGets(basic, "app/many") - start, 1);
});

test("TLS: an untrusted certificate fails unless verification is skipped explicitly", async () => {
  const untrusting = new RegistryClient({ allowLoopback: true });
  clients.push(untrusting);
  const error = await failure(
    untrusting.lookup(`${basic.host}/app/both:v1`, { credentials: [ALICE] }),
  );
  assert.equal(error.failure, "tls");
  assert.match(error.message, /not trusted/);
  assert.deepEqual(
    (await untrusting.lookup(`${basic.host}/app/both:v1`, {
      credentials: [ALICE],
      skipVerify: true,
    }))
      .entrypoint,
    ["/bin/app"],
  );
});

test("a registry that never answers fails at the caller's deadline", async () => {
  const sockets: Socket[] = [];
  const silent = createNetServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = silent.address() as AddressInfo;
    const started = Date.now();
    const error = await failure(
      client().lookup(`127.0.0.1:${port}/app:v1`, { signal: AbortSignal.timeout(300) }),
    );
    assert.equal(error.failure, "timeout");
    assert.match(error.message, /deadline/);
    assert.ok(Date.now() - started < 5_000, "the deadline ended the wait");
    // The webhook's own bound ends the shared lookup too.
    const bounded = await failure(
      client({ lookupTimeoutMs: 300 }).lookup(`127.0.0.1:${port}/app:v2`),
    );
    assert.equal(bounded.failure, "timeout");
  } finally {
    sockets.forEach((s) => s.destroy());
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

test("forbidden addresses: metadata, loopback without the allowance, plain HTTP; allow-list", async () => {
  const strict = new RegistryClient({ caCertificates: ca.cert });
  clients.push(strict);
  for (
    const image of [
      `${basic.host}/app/both:v1`,
      "localhost:1/app:v1",
      "169.254.169.254/app:v1",
      "[fd00:ec2::254]/app:v1",
    ]
  ) {
    const error = await failure(strict.lookup(image));
    assert.equal(error.failure, "forbidden_host", image);
  }
  const listed = client({ allowedRegistries: ["ghcr.io"] });
  const error = await failure(listed.lookup(`${basic.host}/app/both:v1`, { credentials: [ALICE] }));
  assert.equal(error.failure, "forbidden_host");
  assert.match(error.message, /allow-list/);
  const invalid = await failure(client().lookup("::invalid::"));
  assert.equal(invalid.failure, "invalid_reference");
});

/** A small HTTPS registry stand-in: one image whose config blob redirects to another origin. */
async function startRedirectingRegistry(options: { badDigest?: boolean; httpRedirect?: boolean }) {
  const seenByStorage: Array<string | undefined> = [];
  const storage = createHttpsServer(ca.issue("storage"), (req, res) => {
    seenByStorage.push(req.headers.authorization);
    res.writeHead(200).end(config);
  });
  await new Promise<void>((resolve) => storage.listen(0, "127.0.0.1", resolve));
  const storagePort = (storage.address() as AddressInfo).port;
  const config = JSON.stringify({ config: { Entrypoint: ["/bin/redirected"] } });
  const configDigest = `sha256:${createHash("sha256").update(config).digest("hex")}`;
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.length,
    },
    layers: [],
  });
  const manifestDigest = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;
  const seenByRegistry: Array<string | undefined> = [];
  const registry: Server = createHttpsServer(
    ca.issue("fake-registry"),
    (req: IncomingMessage, res: ServerResponse) => {
      seenByRegistry.push(req.headers.authorization);
      if (req.headers.authorization === undefined) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="fake"' }).end();
      } else if (req.url?.includes("/manifests/")) {
        const body = options.badDigest ? manifest.replace("[]", "[ ]") : manifest;
        res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" }).end(
          body,
        );
      } else {
        const scheme = options.httpRedirect ? "http" : "https";
        res.writeHead(307, { location: `${scheme}://127.0.0.1:${storagePort}/blob?signed=1` })
          .end();
      }
    },
  );
  await new Promise<void>((resolve) => registry.listen(0, "127.0.0.1", resolve));
  const port = (registry.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    manifestDigest,
    seenByRegistry,
    seenByStorage,
    async stop() {
      await Promise.all([registry, storage].map((s) =>
        new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        })
      ));
    },
  };
}

test("redirects off the registry's origin drop Authorization; http redirects are refused", async () => {
  const fake = await startRedirectingRegistry({});
  try {
    const result = await client().lookup(`${fake.host}/app:v1`, { credentials: [ALICE] });
    assert.deepEqual(result, { entrypoint: ["/bin/redirected"], cmd: [] });
    assert.deepEqual(fake.seenByStorage, [undefined], "no Authorization reached the other origin");
    assert.ok(fake.seenByRegistry.some((a) => a?.startsWith("Basic ")));
  } finally {
    await fake.stop();
  }
  const plain = await startRedirectingRegistry({ httpRedirect: true });
  try {
    const error = await failure(client().lookup(`${plain.host}/app:v1`, { credentials: [ALICE] }));
    assert.equal(error.failure, "forbidden_host");
    assert.deepEqual(plain.seenByStorage, []);
  } finally {
    await plain.stop();
  }
});

test("content fetched by digest must match the digest", async () => {
  const fake = await startRedirectingRegistry({ badDigest: true });
  try {
    const error = await failure(
      client().lookup(`${fake.host}/app@${fake.manifestDigest}`, { credentials: [ALICE] }),
    );
    assert.equal(error.failure, "invalid_response");
    assert.match(error.message, /does not match digest/);
  } finally {
    await fake.stop();
  }
});
