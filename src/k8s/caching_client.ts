/**
 * A {@link KubeClient} wrapper for the webhook's `/secret` path: TokenReview answers are kept for a
 * few seconds and concurrent reviews of one token share one API call.
 *
 * TokenReview cache rules:
 * - keyed by the SHA-256 of the token and the requested audiences (the token itself is not kept);
 * - only authenticated answers are kept: failures (errors, `authenticated: false`) never are;
 * - an answer is kept for at most the TTL (never more than {@link MAX_TOKEN_REVIEW_TTL_MS}) and
 *   never past the token's own `exp` claim. The JWT payload is decoded without verification and
 *   used for nothing but that bound: the API server decided the token is valid. A token whose
 *   payload cannot be read is not cached; a token without `exp` (legacy Secret-based tokens) is
 *   kept for the TTL;
 * - bounded by a count, the least recently used entry evicted first.
 *
 * A token the API server stops accepting (its pod deleted, its Secret deleted) can therefore stay
 * authenticated here for up to the TTL. `/secret` still reads the live pod after the review, so
 * a deleted or replaced pod is refused by that read.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { ConfigMap, Pod, Secret, ServiceAccount } from "kubernetes-types/core/v1.d.ts";
import type { TokenReviewStatus } from "kubernetes-types/authentication/v1.d.ts";
import type { KubeCallOptions, KubeClient } from "./client.ts";
import { raceAbort } from "../abort.ts";

/** Longest time a TokenReview answer may be reused. */
export const MAX_TOKEN_REVIEW_TTL_MS = 10_000;

/** A cache lookup: served from the cache, asked the API, or joined a call in flight. */
export type ReviewCacheResult = "hit" | "miss" | "coalesced";

/** Options of {@link CachingKubeClient}. */
export interface CachingKubeClientOptions {
  /**
   * How long an authenticated TokenReview answer is reused, in milliseconds; 0 turns the cache
   * off (concurrent identical reviews still share one call). At most
   * {@link MAX_TOKEN_REVIEW_TTL_MS}. @default 10_000
   */
  tokenReviewTtlMs?: number;
  /** Most cached reviews; the least recently used one is evicted first. @default 4096 */
  tokenReviewMaxEntries?: number;
  /** Millisecond clock. @default Date.now */
  clock?: () => number;
  /** Told about each TokenReview lookup. */
  onTokenReview?: (result: ReviewCacheResult) => void;
}

interface ReviewEntry {
  status: TokenReviewStatus;
  expiresAt: number;
}

/** The cache key of a review: a hash, so that no token is kept in memory as a map key. */
function reviewKey(token: string, audiences: readonly string[]): string {
  return createHash("sha256").update(JSON.stringify([token, audiences])).digest("hex");
}

/**
 * The `exp` claim of a JWT in milliseconds, `undefined` when the payload has none, or `null` when
 * the token is not a JWT whose payload is a JSON object (or `exp` is not a number). Read without
 * checking the signature: only ever used to shorten how long an answer is kept.
 */
export function tokenExpiryMs(token: string): number | undefined | null {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts[1]) return null;
  let payload: unknown;
  try {
    const base64 = parts[1].replaceAll("-", "+").replaceAll("_", "/");
    const binary = atob(base64.padEnd(base64.length + ((4 - (base64.length % 4)) % 4), "="));
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    payload = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return null;
  const exp = (payload as Record<string, unknown>).exp;
  if (exp === undefined) return undefined;
  if (typeof exp !== "number" || !Number.isFinite(exp)) return null;
  return exp * 1000;
}

/** {@link KubeClient} that caches authenticated TokenReviews briefly; other calls pass through. */
export class CachingKubeClient implements KubeClient {
  readonly #inner: KubeClient;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #clock: () => number;
  readonly #onTokenReview: ((result: ReviewCacheResult) => void) | undefined;
  readonly #reviews = new Map<string, ReviewEntry>();
  readonly #inFlight = new Map<string, Promise<TokenReviewStatus>>();

  /**
   * @param inner the client that really calls the API
   * @throws {RangeError} a TTL outside 0..{@link MAX_TOKEN_REVIEW_TTL_MS} or a size below 1
   */
  constructor(inner: KubeClient, options: CachingKubeClientOptions = {}) {
    this.#inner = inner;
    this.#ttlMs = options.tokenReviewTtlMs ?? MAX_TOKEN_REVIEW_TTL_MS;
    this.#maxEntries = options.tokenReviewMaxEntries ?? 4096;
    this.#clock = options.clock ?? Date.now;
    this.#onTokenReview = options.onTokenReview;
    if (!Number.isFinite(this.#ttlMs) || this.#ttlMs < 0 || this.#ttlMs > MAX_TOKEN_REVIEW_TTL_MS) {
      throw new RangeError(
        `Cannot use tokenReviewTtlMs "${this.#ttlMs}": expected 0..${MAX_TOKEN_REVIEW_TTL_MS}`,
      );
    }
    if (!Number.isInteger(this.#maxEntries) || this.#maxEntries < 1) {
      throw new RangeError(
        `Cannot use tokenReviewMaxEntries "${this.#maxEntries}": expected an integer >= 1`,
      );
    }
  }

  /** Number of cached reviews (expired ones included until looked up or evicted). */
  get size(): number {
    return this.#reviews.size;
  }

  getPod(namespace: string, name: string, options?: KubeCallOptions): Promise<Pod | null> {
    return this.#inner.getPod(namespace, name, options);
  }

  getConfigMap(
    namespace: string,
    name: string,
    options?: KubeCallOptions,
  ): Promise<ConfigMap | null> {
    return this.#inner.getConfigMap(namespace, name, options);
  }

  getSecret(namespace: string, name: string, options?: KubeCallOptions): Promise<Secret | null> {
    return this.#inner.getSecret(namespace, name, options);
  }

  getServiceAccount(
    namespace: string,
    name: string,
    options?: KubeCallOptions,
  ): Promise<ServiceAccount | null> {
    return this.#inner.getServiceAccount(namespace, name, options);
  }

  /**
   * Answers from the cache, joins an identical review in flight, or asks the API. Each caller gets
   * its own copy. Aborting `options.signal` rejects this caller only; the shared call goes on,
   * bounded by the inner client's timeout.
   */
  async reviewToken(
    token: string,
    audiences: readonly string[],
    options: KubeCallOptions = {},
  ): Promise<TokenReviewStatus> {
    const key = reviewKey(token, audiences);
    const cached = this.#lookup(key);
    if (cached) {
      this.#onTokenReview?.("hit");
      return structuredClone(cached);
    }
    let shared = this.#inFlight.get(key);
    if (shared) {
      this.#onTokenReview?.("coalesced");
    } else {
      this.#onTokenReview?.("miss");
      const timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
      shared = this.#reviewAndStore(key, token, [...audiences], timeout);
      this.#inFlight.set(key, shared);
    }
    return structuredClone(await raceAbort(shared, options.signal));
  }

  /** Forgets every cached review. */
  clear(): void {
    this.#reviews.clear();
  }

  #lookup(key: string): TokenReviewStatus | undefined {
    const entry = this.#reviews.get(key);
    if (!entry) return undefined;
    this.#reviews.delete(key);
    if (entry.expiresAt <= this.#clock()) return undefined;
    this.#reviews.set(key, entry); // most recently used goes last
    return entry.status;
  }

  async #reviewAndStore(
    key: string,
    token: string,
    audiences: string[],
    options: KubeCallOptions,
  ): Promise<TokenReviewStatus> {
    try {
      const status = await this.#inner.reviewToken(token, audiences, options);
      this.#store(key, token, status);
      return status;
    } finally {
      this.#inFlight.delete(key);
    }
  }

  #store(key: string, token: string, status: TokenReviewStatus): void {
    if (this.#ttlMs === 0 || status.authenticated !== true || status.error) return;
    const exp = tokenExpiryMs(token);
    if (exp === null) return;
    const now = this.#clock();
    const expiresAt = Math.min(now + this.#ttlMs, exp ?? Infinity);
    if (expiresAt <= now) return;
    this.#reviews.set(key, { status: structuredClone(status), expiresAt });
    for (const oldest of this.#reviews.keys()) {
      if (this.#reviews.size <= this.#maxEntries) break;
      this.#reviews.delete(oldest);
    }
  }
}
