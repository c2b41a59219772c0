import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { type KubeApiStandIn, startKubeApi } from "../../testing/kube_api.ts";
import { CachingKubeClient, tokenExpiryMs } from "./caching_client.ts";
import type { LoadResult } from "../lookup_cache.ts";
import { createKubeClient, type HttpKubeClient } from "./http_client.ts";
import { parseKubeConfig } from "./kubeconfig.ts";
import { FakeKubeClient } from "./fake.ts";
import { KubeUnavailableError } from "../errors.ts";

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
  const lookups: LoadResult[] = [];
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
  const snapshot = structuredClone(first);
  // A caller that tries to change its answer cannot: the kept answer is deep-frozen.
  assert.throws(() => {
    (first as { authenticated?: boolean }).authenticated = false;
  }, TypeError);
  assert.throws(() => {
    (first.user?.groups as string[]).push("system:masters");
  }, TypeError);
  assert.throws(() => {
    (first.user as { username?: string }).username = "system:serviceaccount:kube-system:admin";
  }, TypeError);
  const second = await client.reviewToken(token, []);
  assert.equal(second, first, "every caller gets the same frozen answer, no copy");
  assert.deepEqual(second, snapshot, "unchanged by the first caller's attempts");
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

test("CachingKubeClient.reviewToken() makes at most maxTokenReviewsInFlight API calls at once", async () => {
  const client = new CachingKubeClient(http, { tokenReviewTtlMs: 0, maxTokenReviewsInFlight: 3 });
  const before = api.counts.tokenreviews;
  api.setLatency(200);
  let settled: PromiseSettledResult<unknown>[];
  try {
    // Six different (made-up and real) tokens at once: three reach the API, three are refused.
    const tokens = [podToken(), "made-up-1", "made-up-2", podToken(), "made-up-3", "made-up-4"];
    settled = await Promise.allSettled(tokens.map((token) => client.reviewToken(token, [])));
  } finally {
    api.setLatency(0);
  }
  assert.equal(api.counts.tokenreviews - before, 3);
  const refused = settled.filter((result) => result.status === "rejected");
  assert.equal(refused.length, 3);
  for (const result of refused) {
    const error = (result as PromiseRejectedResult).reason;
    assert.ok(error instanceof KubeUnavailableError, String(error));
    assert.match(error.message, /3 TokenReviews are in flight already \(PIGGY_MAX_TOKEN_REVIEWS\)/);
  }
  // Once they are answered, the slots are free again.
  const again = await client.reviewToken(podToken(), []);
  assert.equal(again.authenticated, true);
  assert.equal(api.counts.tokenreviews - before, 4);
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

test("CachingKubeClient.getBoundPod() reuses a read for the pod TTL, for the bound UID only", async () => {
  const clock = { now: 1_000_000 };
  const client = new CachingKubeClient(http, { podTtlMs: 2_000, clock: () => clock.now });
  const stored = api.put("pods", {
    metadata: { namespace: "ns", name: "db-0" },
    spec: { serviceAccountName: "app", containers: [{ name: "db", image: "busybox" }] },
  });
  const uid = stored.metadata.uid;
  const before = api.counts.pods;
  const first = await client.getBoundPod("ns", "db-0", uid);
  assert.equal(first?.metadata?.uid, uid);
  clock.now += 1_999;
  const snapshot = structuredClone(first);
  // A caller that tries to change the pod it got cannot: the kept read is deep-frozen.
  assert.throws(() => {
    (first!.spec as { serviceAccountName?: string }).serviceAccountName = "admin";
  }, TypeError);
  assert.throws(() => {
    (first!.spec!.containers as unknown[]).push({ name: "extra" });
  }, TypeError);
  assert.throws(() => {
    (first!.spec!.containers[0] as { image?: string }).image = "evil";
  }, TypeError);
  const second = await client.getBoundPod("ns", "db-0", uid);
  assert.equal(second, first, "every caller gets the same frozen pod, no copy");
  assert.deepEqual(second, snapshot, "unchanged by the first caller's attempts");
  assert.equal(api.counts.pods - before, 1);
  await client.getBoundPod("ns", "db-0", undefined);
  assert.equal(api.counts.pods - before, 2, "a legacy token (no bound UID) reads the API");
  await client.getPod("ns", "db-0");
  assert.equal(api.counts.pods - before, 3, "getPod always reads the API");
  clock.now += 1;
  await client.getBoundPod("ns", "db-0", uid);
  assert.equal(api.counts.pods - before, 4, "read again once the TTL is over");
});

test("CachingKubeClient.getBoundPod() reads a replaced pod at once and never keeps a missing one", async () => {
  const clock = { now: 1_000_000 };
  const client = new CachingKubeClient(http, { podTtlMs: 5_000, clock: () => clock.now });
  const pod = {
    metadata: { namespace: "ns", name: "api-0" },
    spec: { serviceAccountName: "app", containers: [{ name: "api", image: "busybox" }] },
  };
  const old = api.put("pods", structuredClone(pod)).metadata.uid;
  const before = api.counts.pods;
  assert.equal((await client.getBoundPod("ns", "api-0", old))?.metadata?.uid, old);
  // Deleted: the cached read is the documented bound (at most the TTL late).
  api.delete("pods", "ns", "api-0");
  assert.equal((await client.getBoundPod("ns", "api-0", old))?.metadata?.uid, old);
  clock.now += 5_000;
  assert.equal(await client.getBoundPod("ns", "api-0", old), null, "gone after the TTL");
  assert.equal(await client.getBoundPod("ns", "api-0", old), null, "a missing pod is not kept");
  assert.equal(api.counts.pods - before, 3);
  // Replaced under the same name: a token bound to the new UID never gets the old pod.
  const replaced = api.put("pods", structuredClone(pod)).metadata.uid;
  assert.notEqual(replaced, old);
  await client.getBoundPod("ns", "api-0", replaced);
  const again = await client.getBoundPod("ns", "api-0", old);
  assert.equal(again?.metadata?.uid, replaced, "the old token sees the new pod (then refused)");
  assert.equal(api.counts.pods - before, 5, "an entry of another UID is read again");
});

test("CachingKubeClient.getBoundPod() shares one read among concurrent callers", async () => {
  const client = new CachingKubeClient(http, { podTtlMs: 2_000 });
  const uid = api.put("pods", {
    metadata: { namespace: "ns", name: "web-9" },
    spec: { serviceAccountName: "app", containers: [{ name: "web", image: "busybox" }] },
  }).metadata.uid;
  const before = api.counts.pods;
  api.failNext("pods", { status: 500 });
  await assert.rejects(client.getBoundPod("ns", "web-9", uid));
  const pods = await Promise.all(
    Array.from({ length: 20 }, () => client.getBoundPod("ns", "web-9", uid)),
  );
  for (const pod of pods) assert.equal(pod?.metadata?.uid, uid);
  assert.equal(api.counts.pods - before, 2, "the failure was not kept; 20 callers, one read");
  assert.throws(() => new CachingKubeClient(http, { podTtlMs: 5_001 }), RangeError);
});
