/**
 * The one cache of the webhook's lookups (image configs, ECR credentials, TokenReviews, `/secret`
 * pod reads, secret values): least-recently-used, bounded by a count, with a per-entry expiry, plus
 * single-flight: while a load for a key is running, every other caller of that key awaits the same
 * promise, so N simultaneous requests for one key make one upstream call. Failures are never
 * cached, and a load may decide from its value how long it is kept (0: not at all).
 *
 * Values are handed out as they are kept: callers that give them to code that may change them
 * hand out copies. A caller's own abort signal is for the caller to race (`raceAbort`): the
 * shared load goes on for the others.
 *
 * @module
 */

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
