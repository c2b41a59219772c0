import { test } from "node:test";
import assert from "node:assert/strict";
import { deepFreeze, isDeepFrozen, LookupCache } from "./lookup_cache.ts";

test("load() shares one running load between callers and keeps the result for the TTL", async () => {
  let now = 0;
  const cache = new LookupCache<string>({ now: () => now });
  let loads = 0;
  let release: (value: string) => void = () => {};
  const loader = () => {
    loads++;
    return new Promise<string>((resolve) => (release = resolve));
  };
  const waiting = Array.from({ length: 50 }, () => cache.load("k", 1000, loader));
  release("value");
  assert.deepEqual(new Set(await Promise.all(waiting)), new Set(["value"]));
  assert.equal(loads, 1);
  assert.equal(await cache.load("k", 1000, () => Promise.resolve("other")), "value");
  now = 1000;
  assert.equal(await cache.load("k", 1000, () => Promise.resolve("fresh")), "fresh");
});

test("a TTL of 0 and failures are not kept; Infinity is kept until evicted (LRU)", async () => {
  const cache = new LookupCache<string>({ maxEntries: 2 });
  await cache.load("no", 0, () => Promise.resolve("x"));
  assert.equal(cache.get("no"), undefined);
  await assert.rejects(cache.load("bad", 1000, () => Promise.reject(new Error("boom"))), /boom/);
  assert.equal(await cache.load("bad", 1000, () => Promise.resolve("ok")), "ok");
  await cache.load("a", Infinity, () => Promise.resolve("A"));
  cache.get("bad"); // "bad" is now more recent than "a"
  await cache.load("c", Infinity, () => Promise.resolve("C"));
  assert.equal(cache.get("a"), undefined);
  assert.equal(cache.get("bad"), "ok");
  assert.equal(cache.size, 2);
});

test("a fresh load skips the cached value but still shares a running load", async () => {
  const cache = new LookupCache<string>();
  await cache.load("k", 1000, () => Promise.resolve("old"));
  assert.equal(await cache.load("k", 1000, () => Promise.resolve("new"), true), "new");
  assert.equal(cache.get("k"), "new");
  let loads = 0;
  const slow = () => new Promise<string>((resolve) => setTimeout(() => resolve(`v${++loads}`), 20));
  const both = await Promise.all([cache.load("j", 0, slow, true), cache.load("j", 0, slow, true)]);
  assert.deepEqual(both, ["v1", "v1"]);
});

test("the TTL can be decided from the loaded value; clear() keeps no load that was running", async () => {
  let now = 0;
  const cache = new LookupCache<{ keep: number }>({ now: () => now });
  const ttl = (value: { keep: number }) => value.keep;
  await cache.load("short", ttl, () => Promise.resolve({ keep: 10 }));
  await cache.load("never", ttl, () => Promise.resolve({ keep: 0 }));
  assert.deepEqual(cache.get("short"), { keep: 10 });
  assert.equal(cache.get("never"), undefined);
  now = 10;
  assert.equal(cache.get("short"), undefined, "expired");
  let release = (_value: { keep: number }) => {};
  const running = cache.load("k", ttl, () => new Promise((resolve) => release = resolve));
  cache.clear();
  release({ keep: 1000 });
  assert.deepEqual(await running, { keep: 1000 });
  assert.equal(cache.get("k"), undefined, "started before clear(): not kept");
  assert.equal(cache.size, 0);
});

test("deepFreeze() freezes every object and array of a value, once, cycles included", () => {
  const shared = { tag: "s" };
  const value = { a: { b: [1, { c: "x" }], shared }, list: [shared], n: 1 };
  const cyclic: Record<string, unknown> = { name: "loop" };
  cyclic.self = cyclic;
  assert.equal(deepFreeze(value), value, "the value itself, not a copy");
  deepFreeze(cyclic);
  for (const node of [value, value.a, value.a.b, value.a.b[1], shared, value.list, cyclic]) {
    assert.ok(Object.isFrozen(node));
    assert.ok(isDeepFrozen(node));
  }
  assert.throws(() => {
    (value.a.b[1] as { c: string }).c = "y";
  }, TypeError);
  assert.throws(() => value.list.push({ tag: "t" }), TypeError);
  assert.deepEqual(value, { a: { b: [1, { c: "x" }], shared }, list: [{ tag: "s" }], n: 1 });
  assert.equal(deepFreeze("text"), "text");
  assert.equal(deepFreeze(null), null);
  assert.equal(isDeepFrozen("text"), false);
  // Frozen one level only is not deep-frozen.
  assert.equal(isDeepFrozen(Object.freeze({ inner: {} })), false);
});

test("deepFreeze() refuses a typed array, a Map or a Set and then marks nothing", () => {
  for (const held of [new Uint8Array([1, 2]), new Map([["k", 1]]), new Set([1])]) {
    const value = { ok: { x: 1 }, held };
    assert.throws(() => deepFreeze(value), TypeError);
    assert.equal(isDeepFrozen(value), false);
    assert.equal(isDeepFrozen(value.ok), false);
    assert.equal(Object.isFrozen(value), false);
  }
});
