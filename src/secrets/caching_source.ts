/**
 * {@link SecretSource} wrapper for the webhook's `/secret` proxy: concurrent identical queries share
 * one upstream call (always), and answers can be kept for a short TTL (`PIGGY_SECRET_CACHE_TTL`).
 * Values stay in memory only; errors are never cached.
 *
 * The cache key is the identity the read is made with ({@link SecretFetchOptions.identity}: the
 * webhook's own unless a caller names a session) and the full query ({@link queryKey}: its kind
 * and every field), so a pinned `VersionId` and a stage never share an entry, entries are never
 * shared across credential scopes, and a new backend needs no change here. Callers authorize a
 * request before they ask: the cache only decides where values come from, never who gets them.
 *
 * @module
 */

import { SecretSourceError } from "../errors.ts";
import type { SecretFetchOptions, SecretQuery, SecretSource } from "./source.ts";
import { queryKey, querySubject } from "./query.ts";
import { raceAbort } from "../abort.ts";

/** Options of {@link CachingSecretSource}. */
export interface CachingSecretSourceOptions {
  /** How long an answer is reused, in milliseconds; 0 turns caching off. @default 0 */
  ttlMs?: number;
  /** Most cached answers; the least recently used one is evicted first. @default 1024 */
  maxEntries?: number;
  /** Millisecond clock. @default Date.now */
  clock?: () => number;
  /** Told about each lookup: `hit`, `miss` (fetched from the inner source) or `coalesced`. */
  onLookup?: (result: "hit" | "miss" | "coalesced") => void;
}

interface CacheEntry {
  values: Readonly<Record<string, string>>;
  expiresAt: number;
}

function abortError(query: SecretQuery, signal: AbortSignal): SecretSourceError {
  return new SecretSourceError(`${querySubject(query)}: the request was aborted`, {
    code: "AbortError",
    cause: signal.reason,
  });
}

/** Coalesces concurrent identical queries and optionally caches answers for a short TTL. */
export class CachingSecretSource implements SecretSource {
  readonly #inner: SecretSource;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #clock: () => number;
  readonly #onLookup: ((result: "hit" | "miss" | "coalesced") => void) | undefined;
  readonly #entries = new Map<string, CacheEntry>();
  readonly #inFlight = new Map<string, Promise<Readonly<Record<string, string>>>>();
  #generation = 0;

  /**
   * @param inner the source that really fetches
   * @param options TTL, size bound and clock
   */
  constructor(inner: SecretSource, options: CachingSecretSourceOptions = {}) {
    this.#inner = inner;
    this.#ttlMs = options.ttlMs ?? 0;
    this.#maxEntries = options.maxEntries ?? 1024;
    this.#clock = options.clock ?? Date.now;
    this.#onLookup = options.onLookup;
    if (!Number.isFinite(this.#ttlMs) || this.#ttlMs < 0) {
      throw new RangeError(`Cannot use ttlMs "${this.#ttlMs}": expected a number >= 0`);
    }
    if (!Number.isInteger(this.#maxEntries) || this.#maxEntries < 1) {
      throw new RangeError(`Cannot use maxEntries "${this.#maxEntries}": expected an integer >= 1`);
    }
  }

  /** Number of cached answers (expired ones included until looked up or evicted). */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Answers from the cache, joins an identical call in flight, or fetches. Each caller gets its own
   * copy of the values. Aborting `options.signal` rejects this caller only; the shared fetch goes on
   * for the others (it is bounded by the inner source's own timeouts).
   *
   * @throws {SecretSourceError} whatever the inner source throws, or code `AbortError`
   */
  async fetchSecret(
    query: SecretQuery,
    options: SecretFetchOptions = {},
  ): Promise<Record<string, string>> {
    const identity = options.identity;
    const key = JSON.stringify([identity ?? "", queryKey(query)]);
    const cached = this.#lookup(key);
    if (cached) {
      this.#onLookup?.("hit");
      return { ...cached };
    }
    let shared = this.#inFlight.get(key);
    if (shared) {
      this.#onLookup?.("coalesced");
    } else {
      this.#onLookup?.("miss");
      shared = this.#fetchAndStore(key, { ...query }, identity === undefined ? {} : { identity });
      this.#inFlight.set(key, shared);
    }
    return { ...(await raceAbort(shared, options.signal, (signal) => abortError(query, signal))) };
  }

  /** Forgets every cached answer (calls in flight finish but are not stored). */
  clear(): void {
    this.#entries.clear();
    this.#generation += 1;
  }

  #lookup(key: string): Readonly<Record<string, string>> | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    this.#entries.delete(key);
    if (entry.expiresAt <= this.#clock()) return undefined;
    this.#entries.set(key, entry); // most recently used goes last
    return entry.values;
  }

  async #fetchAndStore(
    key: string,
    query: SecretQuery,
    options: SecretFetchOptions,
  ): Promise<Readonly<Record<string, string>>> {
    const generation = this.#generation;
    try {
      const values = Object.freeze({ ...(await this.#inner.fetchSecret(query, options)) });
      if (this.#ttlMs > 0 && generation === this.#generation) {
        this.#entries.set(key, { values, expiresAt: this.#clock() + this.#ttlMs });
        for (const oldest of this.#entries.keys()) {
          if (this.#entries.size <= this.#maxEntries) break;
          this.#entries.delete(oldest);
        }
      }
      return values;
    } finally {
      this.#inFlight.delete(key);
    }
  }
}
