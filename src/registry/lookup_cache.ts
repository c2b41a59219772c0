/**
 * The cache in front of image lookups: least-recently-used, bounded, with a per-entry expiry
 * (digest references never expire, tags after a TTL), plus single-flight: while a lookup for a key
 * is running, every other caller of that key awaits the same promise, so N simultaneous
 * admissions of one image make one registry round trip. Failures are never cached.
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

  constructor(options: LookupCacheOptions = {}) {
    this.#max = options.maxEntries ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /** Entries currently kept. */
  get size(): number {
    return this.#entries.size;
  }

  /** The cached value (marking it recently used), or `undefined`. */
  get(key: string): T | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.value;
  }

  /** Keeps a value for `ttlMs` (`Infinity`: until evicted). */
  set(key: string, value: T, ttlMs: number): void {
    if (this.#max <= 0 || ttlMs <= 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlMs });
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  /**
   * The cached value (unless `fresh`), else the running load of the same key, else a new load. A
   * successful new load is kept for `ttlMs` (0: not kept); a failed one is not kept.
   */
  load(
    key: string,
    ttlMs: number,
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
    const promise = (async () => {
      try {
        const value = await loader();
        this.set(key, value, ttlMs);
        return value;
      } finally {
        this.#inFlight.delete(key);
      }
    })();
    this.#inFlight.set(key, promise);
    return promise;
  }
}
