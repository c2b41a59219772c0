import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { type KubeApiStandIn, startKubeApi } from "../../testing/kube_api.ts";
import { CachingKubeClient, type ReviewCacheResult, tokenExpiryMs } from "./caching_client.ts";
import { createKubeClient, type HttpKubeClient } from "./http_client.ts";
import { parseKubeConfig } from "./kubeconfig.ts";
import { FakeKubeClient } from "./fake.ts";

let api: KubeApiStandIn;
let http: HttpKubeClient;

before(async () => {
  api = await startKubeApi();
  api.put("pods", {
    metadata: { namespace: "ns", name: "web-0" },
    spec: { serviceAccountName: "app", containers: [{ name: "app", image: "busybox" }] },
  });
  const readFile = (path: string) => readFileSync(path, "utf8");
  const path = api.kubeconfigPath;
  http = createKubeClient(parseKubeConfig(readFile(path), { path, readFile }), {
    timeoutMs: 10_000,
  });
});

after(async () => {
  http?.close();
  await api?.close();
});

/** A caching client over the real HTTPS client, with a clock the test moves. */
function caching(options: { ttlMs?: number; maxEntries?: number } = {}) {
  const clock = { now: Date.now() };
  const lookups: ReviewCacheResult[] = [];
  const client = new CachingKubeClient(http, {
    clock: () => clock.now,
    onTokenReview: (result) => lookups.push(result),
    ...(options.ttlMs === undefined ? {} : { tokenReviewTtlMs: options.ttlMs }),
    ...(options.maxEntries === undefined ? {} : { tokenReviewMaxEntries: options.maxEntries }),
  });
  return { client, clock, lookups };
}

function podToken(options: { expiresInSeconds?: number; audiences?: string[] } = {}): string {
  return api.issueToken({ namespace: "ns", serviceAccount: "app", podName: "web-0", ...options });
}

test("CachingKubeClient.reviewToken() reuses an authenticated review for the TTL only", async () => {
  const { client, clock, lookups } = caching({ ttlMs: 5_000 });
  const token = podToken();
  const before = api.counts.tokenreviews;
  const first = await client.reviewToken(token, []);
  assert.equal(first.authenticated, true);
  assert.equal(first.user?.username, "system:serviceaccount:ns:app");
  clock.now += 4_999;
  const second = await client.reviewToken(token, []);
  assert.deepEqual(second, first);
  assert.notEqual(second, first, "each caller gets its own copy");
  assert.equal(api.counts.tokenreviews - before, 1);
  clock.now += 1;
  assert.equal((await client.reviewToken(token, [])).authenticated, true);
  assert.equal(api.counts.tokenreviews - before, 2, "asked again once the TTL is over");
  assert.deepEqual(lookups, ["miss", "hit", "miss"]);
});

test("CachingKubeClient.reviewToken() keys on the audiences too", async () => {
  const { client } = caching();
  const token = podToken({ audiences: ["piggy.test"] });
  const before = api.counts.tokenreviews;
  assert.equal((await client.reviewToken(token, ["piggy.test"])).authenticated, true);
  const other = await client.reviewToken(token, ["other.test"]);
  assert.notEqual(other.authenticated, true, "a review for another audience is not reused");
  assert.equal(api.counts.tokenreviews - before, 2);
});

test("CachingKubeClient.reviewToken() never keeps a review past the token's exp", async () => {
  const { client, clock } = caching({ ttlMs: 10_000 });
  clock.now = Date.now();
  const token = podToken({ expiresInSeconds: 3 });
  const exp = tokenExpiryMs(token);
  assert.ok(typeof exp === "number" && exp > clock.now + 2_000 && exp <= clock.now + 3_000);
  const before = api.counts.tokenreviews;
  await client.reviewToken(token, []);
  clock.now += 1_500;
  await client.reviewToken(token, []);
  assert.equal(api.counts.tokenreviews - before, 1, "reused before exp");
  clock.now = exp;
  await client.reviewToken(token, []);
  assert.equal(api.counts.tokenreviews - before, 2, "asked again at exp, well within the TTL");
});

test("CachingKubeClient.reviewToken() never caches failures or unauthenticated answers", async () => {
  const { client } = caching();
  const token = podToken();
  const before = api.counts.tokenreviews;
  api.failNext("tokenreviews", { status: 500 });
  await assert.rejects(client.reviewToken(token, []));
  assert.equal((await client.reviewToken(token, [])).authenticated, true, "error not kept");
  assert.equal(api.counts.tokenreviews - before, 2);

  const revoked = podToken();
  api.revokeToken(revoked);
  for (let i = 0; i < 3; i++) {
    assert.notEqual((await client.reviewToken(revoked, [])).authenticated, true);
  }
  assert.equal(api.counts.tokenreviews - before, 5, "each unauthenticated review asked the API");
  assert.equal(client.size, 1);
});

test("CachingKubeClient.reviewToken() shares one call among concurrent reviews of a token", async () => {
  const { client, lookups } = caching({ ttlMs: 0 });
  const token = podToken();
  const before = api.counts.tokenreviews;
  api.setLatency(200);
  try {
    const aborter = new AbortController();
    const reviews = Array.from(
      { length: 50 },
      (_, i) => client.reviewToken(token, [], i === 0 ? { signal: aborter.signal } : {}),
    );
    aborter.abort(new Error("caller gone"));
    const settled = await Promise.allSettled(reviews);
    assert.equal(settled[0]?.status, "rejected", "the aborted caller is rejected");
    for (const result of settled.slice(1)) {
      assert.equal(result.status === "fulfilled" && result.value.authenticated, true);
    }
  } finally {
    api.setLatency(0);
  }
  assert.equal(api.counts.tokenreviews - before, 1);
  assert.deepEqual(lookups.filter((result) => result === "miss"), ["miss"]);
  assert.equal(lookups.filter((result) => result === "coalesced").length, 49);
  await client.reviewToken(token, []);
  assert.equal(api.counts.tokenreviews - before, 2, "TTL 0: nothing kept afterwards");
  assert.equal(client.size, 0);
});

test("CachingKubeClient keeps at most tokenReviewMaxEntries reviews, least recently used out", async () => {
  const { client } = caching({ maxEntries: 2 });
  const [a, b, c] = [podToken(), podToken(), podToken()] as [string, string, string];
  const before = api.counts.tokenreviews;
  await client.reviewToken(a, []);
  await client.reviewToken(b, []);
  await client.reviewToken(a, []); // a is now the most recently used
  await client.reviewToken(c, []); // evicts b
  assert.equal(client.size, 2);
  assert.equal(api.counts.tokenreviews - before, 3);
  await client.reviewToken(a, []);
  assert.equal(api.counts.tokenreviews - before, 3, "a was kept");
  await client.reviewToken(b, []);
  assert.equal(api.counts.tokenreviews - before, 4, "b was evicted");
});

test("CachingKubeClient does not cache a token whose payload cannot be read", async () => {
  const fake = new FakeKubeClient().putToken("opaque-token-0123456789", {
    authenticated: true,
    user: { username: "system:serviceaccount:ns:app" },
  });
  const client = new CachingKubeClient(fake);
  await client.reviewToken("opaque-token-0123456789", []);
  await client.reviewToken("opaque-token-0123456789", []);
  assert.deepEqual(fake.calls, ["tokenreviews", "tokenreviews"]);
});

test("CachingKubeClient passes other reads through", async () => {
  const { client } = caching();
  const before = api.counts.pods;
  assert.equal((await client.getPod("ns", "web-0"))?.metadata?.name, "web-0");
  assert.equal((await client.getPod("ns", "web-0"))?.metadata?.name, "web-0");
  assert.equal(api.counts.pods - before, 2);
});

test("CachingKubeClient refuses a TTL above 10 s", () => {
  assert.throws(() => new CachingKubeClient(http, { tokenReviewTtlMs: 10_001 }), RangeError);
  assert.throws(() => new CachingKubeClient(http, { tokenReviewMaxEntries: 0 }), RangeError);
});

test("tokenExpiryMs() reads exp from the payload, or says why not", () => {
  const jwt = (payload: unknown) =>
    `e30.${btoa(JSON.stringify(payload)).replaceAll("=", "").replaceAll("+", "-")}.sig`;
  assert.equal(tokenExpiryMs(jwt({ exp: 1_700_000_000 })), 1_700_000_000_000);
  assert.equal(tokenExpiryMs(jwt({ sub: "x" })), undefined);
  assert.equal(tokenExpiryMs(jwt({ exp: "soon" })), null);
  assert.equal(tokenExpiryMs(jwt([1])), null);
  assert.equal(tokenExpiryMs("not-a-jwt"), null);
  assert.equal(tokenExpiryMs("a.%%%.c"), null);
  assert.equal(tokenExpiryMs("a..c"), null);
});
