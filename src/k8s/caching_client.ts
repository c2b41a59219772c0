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
 * - bounded by a count, the least recently used entry evicted first;
 * - an answer is deep-frozen once, when it is loaded, and every caller gets that same object (no
 *   copy per request): nobody can change what the next caller reads.
 *
 * A token the API server stops accepting (its pod deleted, its Secret deleted) can therefore stay
 * authenticated here for up to the TTL. `/secret` still reads the pod after the review, so a
 * deleted or replaced pod is refused by that read.
 *
 * Pod reads for `/secret` ({@link CachingKubeClient.getBoundPod}) can be kept too, for a shorter
 * TTL (at most {@link MAX_POD_TTL_MS}): only pods that exist, only for a caller whose token is
 * bound to that pod's UID (a replaced pod is read again at once), keyed by namespace and name. A
 * pod deleted, being deleted or changed is therefore seen at most that TTL late. A pod read is
 * deep-frozen when it is loaded and handed to every caller as is. `getPod` itself (admission,
 * references) always reads the API.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { ConfigMap, Pod, Secret, ServiceAccount } from "kubernetes-types/core/v1.d.ts";
import type { TokenReviewStatus } from "kubernetes-types/authentication/v1.d.ts";
import type { KubeCallOptions, KubeClient } from "./client.ts";
import { raceAbort } from "../abort.ts";
import { KubeUnavailableError } from "../errors.ts";
import { deepFreeze, type DeepReadonly, type LoadResult, LookupCache } from "../lookup_cache.ts";

/** Longest time a TokenReview answer may be reused. */
export const MAX_TOKEN_REVIEW_TTL_MS = 10_000;

/** Longest time a pod read may be reused by {@link CachingKubeClient.getBoundPod}. */
export const MAX_POD_TTL_MS = 5_000;

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
  /**
   * Most TokenReview calls to the API at once (`PIGGY_MAX_TOKEN_REVIEWS`): a review that would be
   * one more fails at once with {@link KubeUnavailableError} (503, retried by launchers). Cached
   * answers and callers joining an identical review in flight do not count. Bounds what a flood of
   * made-up tokens (each an uncached review) costs the API server. @default 64
   */
  maxTokenReviewsInFlight?: number;
  /**
   * How long {@link CachingKubeClient.getBoundPod} reuses a pod read, in milliseconds; 0 turns it
   * off (concurrent reads of one pod still share one call). At most {@link MAX_POD_TTL_MS}.
   * @default 0
   */
  podTtlMs?: number;
  /** Most cached pods; the least recently used one is evicted first. @default 4096 */
  podMaxEntries?: number;
  /** Millisecond clock. @default Date.now */
  clock?: () => number;
  /** Told about each TokenReview lookup. */
  onTokenReview?: (result: LoadResult) => void;
  /** Told about each {@link CachingKubeClient.getBoundPod} lookup. */
  onPodRead?: (result: LoadResult) => void;
}

/**
 * The cache key of a review: a hash, so that no token is kept in memory as a map key. Keying by
 * the token itself would save this hash (~4-5 µs of CPU per request, ~1-2 % of a warm `/secret`
 * request) but would hold up to `tokenReviewMaxEntries` bearer tokens, each valid against the API
 * server for up to its own `exp` (about an hour), in the heap for as long as the entry stays in
 * the map (an expired entry stays until it is looked up or evicted): not worth the saving.
 */
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
  readonly #clock: () => number;
  readonly #onTokenReview: ((result: LoadResult) => void) | undefined;
  readonly #reviews: LookupCache<DeepReadonly<TokenReviewStatus>>;
  readonly #maxReviewsInFlight: number;
  #reviewsInFlight = 0;
  readonly #podTtlMs: number;
  readonly #onPodRead: ((result: LoadResult) => void) | undefined;
  readonly #pods: LookupCache<DeepReadonly<Pod> | null>;

  /**
   * @param inner the client that really calls the API
   * @throws {RangeError} a TTL outside 0..{@link MAX_TOKEN_REVIEW_TTL_MS} (pods:
   *   {@link MAX_POD_TTL_MS}) or a size below 1
   */
  constructor(inner: KubeClient, options: CachingKubeClientOptions = {}) {
    this.#inner = inner;
    this.#ttlMs = options.tokenReviewTtlMs ?? MAX_TOKEN_REVIEW_TTL_MS;
    this.#clock = options.clock ?? Date.now;
    this.#onTokenReview = options.onTokenReview;
    this.#podTtlMs = options.podTtlMs ?? 0;
    this.#onPodRead = options.onPodRead;
    const reviewMax = options.tokenReviewMaxEntries ?? 4096;
    this.#maxReviewsInFlight = options.maxTokenReviewsInFlight ?? 64;
    checkSize("maxTokenReviewsInFlight", this.#maxReviewsInFlight);
    const podMax = options.podMaxEntries ?? 4096;
    checkTtl("tokenReviewTtlMs", this.#ttlMs, MAX_TOKEN_REVIEW_TTL_MS);
    checkSize("tokenReviewMaxEntries", reviewMax);
    checkTtl("podTtlMs", this.#podTtlMs, MAX_POD_TTL_MS);
    checkSize("podMaxEntries", podMax);
    this.#reviews = new LookupCache({ maxEntries: reviewMax, now: this.#clock });
    this.#pods = new LookupCache({ maxEntries: podMax, now: this.#clock });
  }

  /** Number of cached reviews (expired ones included until looked up or evicted). */
  get size(): number {
    return this.#reviews.size;
  }

  /** Number of cached pods (expired ones included until looked up or evicted). */
  get podCount(): number {
    return this.#pods.size;
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
   * Answers from the cache, joins an identical review in flight, or asks the API. Every caller gets
   * the same deep-frozen answer. Aborting `options.signal` rejects this caller only; the shared call
   * goes on, bounded by the inner client's timeout.
   */
  reviewToken(
    token: string,
    audiences: readonly string[],
    options: KubeCallOptions = {},
  ): Promise<DeepReadonly<TokenReviewStatus>> {
    const timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
    const copy = [...audiences];
    const shared = this.#reviews.load(
      reviewKey(token, audiences),
      (status) => this.#reviewTtl(token, status),
      async () => {
        if (this.#reviewsInFlight >= this.#maxReviewsInFlight) {
          throw new KubeUnavailableError(
            `${this.#maxReviewsInFlight} TokenReviews are in flight already ` +
              "(PIGGY_MAX_TOKEN_REVIEWS): try again shortly",
          );
        }
        this.#reviewsInFlight++;
        try {
          return deepFreeze(await this.#inner.reviewToken(token, copy, timeout));
        } finally {
          this.#reviewsInFlight--;
        }
      },
      false,
      this.#onTokenReview,
    );
    return raceAbort(shared, options.signal);
  }

  /**
   * Reads the pod a `/secret` caller's token is bound to: from the cache when a read of it with
   * that UID is younger than the pod TTL, else from the API (concurrent reads share one call).
   * Without a bound UID (legacy tokens) it always reads the API. A pod that does not exist, or a
   * failed read, is never kept; a kept pod of another UID (replaced under the same name) is read
   * again at once. A kept or shared read is deep-frozen and handed to every caller as is.
   *
   * @param boundUid the UID claim of the caller's token
   */
  getBoundPod(
    namespace: string,
    name: string,
    boundUid: string | undefined,
    options: KubeCallOptions = {},
  ): Promise<DeepReadonly<Pod> | null> {
    if (boundUid === undefined || this.#podTtlMs === 0) {
      return this.#inner.getPod(namespace, name, options);
    }
    const key = JSON.stringify([namespace, name]);
    const kept = this.#pods.get(key);
    const timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
    const shared = this.#pods.load(
      key,
      (pod) => (pod === null ? 0 : this.#podTtlMs),
      async () => deepFreeze(await this.#inner.getPod(namespace, name, timeout)),
      kept?.metadata?.uid !== boundUid,
      this.#onPodRead,
    );
    return raceAbort(shared, options.signal);
  }

  /** Forgets every cached review and pod. */
  clear(): void {
    this.#reviews.clear();
    this.#pods.clear();
  }

  /** How long a review is kept: authenticated answers only, never past the token's `exp`. */
  #reviewTtl(token: string, status: DeepReadonly<TokenReviewStatus>): number {
    if (this.#ttlMs === 0 || status.authenticated !== true || status.error) return 0;
    const exp = tokenExpiryMs(token);
    if (exp === null) return 0;
    return Math.min(this.#ttlMs, (exp ?? Infinity) - this.#clock());
  }
}

function checkTtl(name: string, value: number, max: number): void {
  if (!Number.isFinite(value) || value < 0 || value > max) {
    throw new RangeError(`Cannot use ${name} "${value}": expected 0..${max}`);
  }
}

function checkSize(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`Cannot use ${name} "${value}": expected an integer >= 1`);
  }
}
