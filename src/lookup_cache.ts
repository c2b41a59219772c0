/**
 * The one cache of the webhook's lookups (image configs, ECR credentials, TokenReviews, `/secret`
 * pod reads, secret values): least-recently-used, bounded by a count, with a per-entry expiry, plus
 * single-flight: while a load for a key is running, every other caller of that key awaits the same
 * promise, so N simultaneous requests for one key make one upstream call. Failures are never
 * cached, and a load may decide from its value how long it is kept (0: not at all).
 *
 * Values are handed out as they are kept, the same object to every caller: a cache whose values
 * are objects deep-freezes them once, when they are loaded ({@link deepFreeze}), so that no caller
 * can change what the next one gets (in strict mode, which every module is, a write throws a
 * `TypeError`). A caller's own abort signal is for the caller to race (`raceAbort`): the shared
 * load goes on for the others.
 *
 * @module
 */

/** A value no part of which can be written: what {@link deepFreeze} returns. */
export type DeepReadonly<T> = T extends (...args: never[]) => unknown ? T
  : T extends ReadonlyArray<infer Item> ? ReadonlyArray<DeepReadonly<Item>>
  : T extends object ? { readonly [Key in keyof T]: DeepReadonly<T[Key]> }
  : T;

/** Every object {@link deepFreeze} has frozen, with all it holds. */
const deepFrozen = new WeakSet<object>();

/**
 * Freezes a JSON-like value and every object and array it holds (`Object.freeze`, recursively,
 * once: subtrees already frozen this way are not walked again) and returns it. Meant for values
 * handed out by a cache to many callers without copying.
 *
 * @throws {TypeError} the value holds a typed array, a Map or a Set (their contents stay writable)
 */
export function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (typeof value === "object" && value !== null) freezeTree(value);
  return value as DeepReadonly<T>;
}

function freezeTree(root: object): void {
  // First every node (so that a value that cannot be frozen leaves nothing marked), then freeze.
  const nodes = new Set<object>();
  const pending: object[] = [root];
  while (pending.length > 0) {
    const node = pending.pop()!;
    if (nodes.has(node) || deepFrozen.has(node)) continue; // a cycle, a shared or frozen subtree
    if (ArrayBuffer.isView(node) || node instanceof Map || node instanceof Set) {
      // Their contents stay writable under Object.freeze.
      throw new TypeError("Cannot deep-freeze a typed array, a Map or a Set");
    }
    nodes.add(node);
    for (const child of Object.values(node)) {
      if (typeof child === "object" && child !== null) pending.push(child);
    }
  }
  for (const node of nodes) {
    Object.freeze(node);
    deepFrozen.add(node);
  }
}

/** True for a value {@link deepFreeze} has frozen (or a part of one): nothing in it can change. */
export function isDeepFrozen(value: unknown): boolean {
  return typeof value === "object" && value !== null && deepFrozen.has(value);
}

/** Options of {@link LookupCache}. */
export interface LookupCacheOptions {
  /** Entries kept. @default 1000 */
  maxEntries?: number;
  /** Clock in milliseconds. @default Date.now */
  now?: () => number;
}

/** How {@link LookupCache.load} answered: cached value, joined a running load, or a new load. */
export type LoadResult = "hit" | "coalesced" | "miss";

/** How long a loaded value is kept, in milliseconds: fixed, or decided from the value. */
export type TtlMs<T> = number | ((value: T) => number);

interface Entry<T> {
  value: T;
  expiresAt: number;
}

/** LRU + TTL cache with single-flight loading. */
export class LookupCache<T> {
  readonly #entries = new Map<string, Entry<T>>();
  readonly #inFlight = new Map<string, Promise<T>>();
  readonly #max: number;
  readonly #now: () => number;
  /** Bumped by {@link clear}: loads started before it are not kept. */
  #generation = 0;

  constructor(options: LookupCacheOptions = {}) {
    this.#max = options.maxEntries ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /** Entries currently kept (expired ones included until looked up or evicted). */
  get size(): number {
    return this.#entries.size;
  }

  /** The cached value (marking it recently used), or `undefined`. */
  get(key: string): T | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    this.#entries.delete(key);
    if (entry.expiresAt <= this.#now()) return undefined;
    this.#entries.set(key, entry); // most recently used goes last
    return entry.value;
  }

  /** Keeps a value for `ttlMs` (`Infinity`: until evicted; 0 or less: not kept). */
  set(key: string, value: T, ttlMs: number): void {
    if (this.#max <= 0 || !(ttlMs > 0)) return;
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlMs });
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.#max) break;
      this.#entries.delete(oldest);
    }
  }

  /**
   * The cached value (unless `fresh`), else the running load of the same key, else a new load. A
   * successful new load is kept for `ttlMs` (0: not kept); a failed one is not kept.
   */
  load(
    key: string,
    ttlMs: TtlMs<T>,
    loader: () => Promise<T>,
    fresh = false,
    observe?: (how: LoadResult) => void,
  ): Promise<T> {
    const cached = fresh ? undefined : this.get(key);
    if (cached !== undefined) {
      observe?.("hit");
      return Promise.resolve(cached);
    }
    const running = this.#inFlight.get(key);
    if (running) {
      observe?.("coalesced");
      return running;
    }
    observe?.("miss");
    const generation = this.#generation;
    const promise = (async () => {
      try {
        const value = await loader();
        if (generation === this.#generation) {
          this.set(key, value, typeof ttlMs === "function" ? ttlMs(value) : ttlMs);
        }
        return value;
      } finally {
        this.#inFlight.delete(key);
      }
    })();
    this.#inFlight.set(key, promise);
    return promise;
  }

  /** Forgets every entry; loads running now finish for their callers but are not kept. */
  clear(): void {
    this.#entries.clear();
    this.#generation += 1;
  }
}
