import assert from "node:assert/strict";
import { test } from "node:test";
import { SecretSourceError } from "../errors.ts";
import { secretQuery, withAwsSource } from "../../testing/aws_source.ts";
import { CachingSecretSource } from "./caching_source.ts";
import { MemorySecretSource } from "./memory_source.ts";
import type { SecretQuery, SecretSource } from "./source.ts";

/** Holds every fetch until `release()`, so concurrent callers really overlap. */
class GatedSource implements SecretSource {
  readonly inner = new MemorySecretSource();
  #waiting: (() => void)[] = [];

  get calls(): number {
    return this.inner.queries.length;
  }

  async fetchSecret(query: SecretQuery): Promise<Record<string, string>> {
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
    return this.inner.fetchSecret(query);
  }

  /** Lets every waiting fetch go on; resolves once they had the chance to finish. */
  async release(): Promise<void> {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const resolve of waiting) resolve();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

test("CachingSecretSource coalesces 100 concurrent identical queries into one AWS call", async () => {
  await withAwsSource(async (aws, awsSource) => {
    aws.putSecret("app/db", { string: '{"DB_USER":"admin"}' });
    const source = new CachingSecretSource(awsSource);
    const answers = await Promise.all(
      Array.from({ length: 100 }, () => source.fetchSecret(secretQuery())),
    );
    for (const answer of answers) assert.deepEqual(answer, { DB_USER: "admin" });
    assert.notEqual(answers[0], answers[1], "each caller gets its own copy");
    assert.equal(aws.count("GetSecretValue"), 1);
    // TTL 0: nothing is kept once the call is over.
    await source.fetchSecret(secretQuery());
    assert.equal(aws.count("GetSecretValue"), 2);
  });
});

test("CachingSecretSource does not share different queries", async () => {
  const gated = new GatedSource();
  gated.inner.putSecret("a", { K: "a" }).putSecret("b", { K: "b" }).putParameter("/p/K", "p");
  const source = new CachingSecretSource(gated, { ttlMs: 60_000 });
  const queries = [
    secretQuery({ secretName: "a" }),
    secretQuery({ secretName: "b" }),
    secretQuery({ secretName: "a", version: "AWSPREVIOUS" }),
    secretQuery({ secretName: "a", region: "eu-west-1" }),
    secretQuery({ secretName: "a", ssmParameterPath: "/p" }),
  ];
  const pending = Promise.all(
    queries.flatMap((q) => [source.fetchSecret(q), source.fetchSecret(q)]),
  );
  await gated.release();
  const answers = await pending;
  assert.equal(gated.calls, queries.length);
  assert.deepEqual(answers.map((a) => a.K), ["a", "a", "b", "b", "a", "a", "a", "a", "p", "p"]);
  assert.equal(source.size, queries.length);
});

test("CachingSecretSource keeps reads made with different identities apart", async () => {
  const memory = new MemorySecretSource().putSecret("app/db", { K: "v" });
  const identities: (string | undefined)[] = [];
  const recording: SecretSource = {
    fetchSecret(query, options = {}) {
      identities.push(options.identity);
      return memory.fetchSecret(query);
    },
  };
  const source = new CachingSecretSource(recording, { ttlMs: 60_000 });
  for (const identity of [undefined, "team-a:web", "team-b:api", undefined, "team-a:web"]) {
    const options = identity === undefined ? {} : { identity };
    assert.deepEqual(await source.fetchSecret(secretQuery(), options), { K: "v" });
  }
  assert.deepEqual(identities, [undefined, "team-a:web", "team-b:api"], "one read per identity");
  assert.equal(source.size, 3);
});

test("CachingSecretSource serves from the cache until the TTL expires", async () => {
  let now = 1_000_000;
  const memory = new MemorySecretSource().putSecret("app/db", { K: "v1" });
  const source = new CachingSecretSource(memory, { ttlMs: 1000, clock: () => now });
  assert.deepEqual(await source.fetchSecret(secretQuery()), { K: "v1" });
  memory.putSecret("app/db", { K: "v2" });
  now += 999;
  assert.deepEqual(await source.fetchSecret(secretQuery()), { K: "v1" });
  assert.equal(memory.queries.length, 1);
  now += 1;
  assert.deepEqual(await source.fetchSecret(secretQuery()), { K: "v2" });
  assert.equal(memory.queries.length, 2);
});

test("CachingSecretSource shares a failure with concurrent callers but never caches it", async () => {
  const gated = new GatedSource();
  const source = new CachingSecretSource(gated, { ttlMs: 60_000 });
  const pending = Promise.allSettled([
    source.fetchSecret(secretQuery()),
    source.fetchSecret(secretQuery()),
  ]);
  await gated.release();
  const results = await pending;
  assert.equal(gated.calls, 1);
  for (const result of results) {
    assert.equal(result.status, "rejected");
    assert.ok(result.status === "rejected" && result.reason instanceof SecretSourceError);
  }
  gated.inner.putSecret("app/db", { K: "v" });
  const retry = source.fetchSecret(secretQuery());
  await gated.release();
  assert.deepEqual(await retry, { K: "v" });
  assert.equal(gated.calls, 2);
});

test("CachingSecretSource evicts the least recently used entry beyond maxEntries", async () => {
  const memory = new MemorySecretSource();
  for (const name of ["a", "b", "c"]) memory.putSecret(name, { K: name });
  const source = new CachingSecretSource(memory, { ttlMs: 60_000, maxEntries: 2 });
  await source.fetchSecret(secretQuery({ secretName: "a" }));
  await source.fetchSecret(secretQuery({ secretName: "b" }));
  await source.fetchSecret(secretQuery({ secretName: "a" })); // a is now the most recent
  await source.fetchSecret(secretQuery({ secretName: "c" })); // evicts b
  assert.equal(source.size, 2);
  assert.equal(memory.queries.length, 3);
  await source.fetchSecret(secretQuery({ secretName: "a" }));
  assert.equal(memory.queries.length, 3);
  await source.fetchSecret(secretQuery({ secretName: "b" }));
  assert.equal(memory.queries.length, 4);
});

test("CachingSecretSource returns copies that callers cannot use to change the cache", async () => {
  const memory = new MemorySecretSource().putSecret("app/db", { K: "v" });
  const source = new CachingSecretSource(memory, { ttlMs: 60_000 });
  const first = await source.fetchSecret(secretQuery());
  first.K = "changed";
  first.EXTRA = "x";
  assert.deepEqual(await source.fetchSecret(secretQuery()), { K: "v" });
});

test("CachingSecretSource rejects an aborted caller without disturbing the others", async () => {
  const gated = new GatedSource();
  gated.inner.putSecret("app/db", { K: "v" });
  const source = new CachingSecretSource(gated);
  const controller = new AbortController();
  const aborted = source.fetchSecret(secretQuery(), { signal: controller.signal });
  const other = source.fetchSecret(secretQuery());
  controller.abort();
  await assert.rejects(aborted, (error: unknown) => {
    assert.ok(error instanceof SecretSourceError);
    assert.equal(error.code, "AbortError");
    return true;
  });
  await gated.release();
  assert.deepEqual(await other, { K: "v" });
  assert.equal(gated.calls, 1);
  const already = AbortSignal.abort();
  await assert.rejects(source.fetchSecret(secretQuery(), { signal: already }), SecretSourceError);
  assert.equal(gated.calls, 1);
});

test("CachingSecretSource.clear() forgets cached answers", async () => {
  const memory = new MemorySecretSource().putSecret("app/db", { K: "v" });
  const source = new CachingSecretSource(memory, { ttlMs: 60_000 });
  await source.fetchSecret(secretQuery());
  source.clear();
  assert.equal(source.size, 0);
  await source.fetchSecret(secretQuery());
  assert.equal(memory.queries.length, 2);
});

test("CachingSecretSource rejects invalid options", () => {
  const memory = new MemorySecretSource();
  assert.throws(() => new CachingSecretSource(memory, { ttlMs: -1 }), RangeError);
  assert.throws(() => new CachingSecretSource(memory, { maxEntries: 0 }), RangeError);
});
