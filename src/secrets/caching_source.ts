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
import { type LoadResult, LookupCache } from "../lookup_cache.ts";

/** Options of {@link CachingSecretSource}. */
export interface CachingSecretSourceOptions {
  /** How long an answer is reused, in milliseconds; 0 turns caching off. @default 0 */
  ttlMs?: number;
  /** Most cached answers; the least recently used one is evicted first. @default 1024 */
  maxEntries?: number;
  /** Millisecond clock. @default Date.now */
  clock?: () => number;
  /** Told about each lookup: `hit`, `miss` (fetched from the inner source) or `coalesced`. */
  onLookup?: (result: LoadResult) => void;
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
  readonly #onLookup: ((result: LoadResult) => void) | undefined;
  readonly #cache: LookupCache<Readonly<Record<string, string>>>;

  /**
   * @param inner the source that really fetches
   * @param options TTL, size bound and clock
   */
  constructor(inner: SecretSource, options: CachingSecretSourceOptions = {}) {
    this.#inner = inner;
    this.#ttlMs = options.ttlMs ?? 0;
    const maxEntries = options.maxEntries ?? 1024;
    this.#onLookup = options.onLookup;
    if (!Number.isFinite(this.#ttlMs) || this.#ttlMs < 0) {
      throw new RangeError(`Cannot use ttlMs "${this.#ttlMs}": expected a number >= 0`);
    }
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`Cannot use maxEntries "${maxEntries}": expected an integer >= 1`);
    }
    this.#cache = new LookupCache({ maxEntries, now: options.clock ?? Date.now });
  }

  /** Number of cached answers (expired ones included until looked up or evicted). */
  get size(): number {
    return this.#cache.size;
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
    const copy = { ...query };
    const shared = this.#cache.load(
      JSON.stringify([identity ?? "", queryKey(query)]),
      this.#ttlMs,
      async () =>
        Object.freeze({
          ...(await this.#inner.fetchSecret(copy, identity === undefined ? {} : { identity })),
        }),
      false,
      this.#onLookup,
    );
    return { ...(await raceAbort(shared, options.signal, (signal) => abortError(query, signal))) };
  }

  /** Forgets every cached answer (calls in flight finish but are not stored). */
  clear(): void {
    this.#cache.clear();
  }
}
