/**
 * The small Kubernetes interface Piggy needs: reads of pods, ConfigMaps, Secrets and
 * ServiceAccounts, and TokenReview. Implemented over HTTPS by `http_client.ts` and in memory by
 * `fake.ts`.
 *
 * @module
 */

import type { ConfigMap, Pod, Secret, ServiceAccount } from "kubernetes-types/core/v1.d.ts";
import type { TokenReviewStatus } from "kubernetes-types/authentication/v1.d.ts";
import type { DeepReadonly } from "../lookup_cache.ts";

/** Per-call options. */
export interface KubeCallOptions {
  /** Aborts the call (e.g. the admission deadline). */
  signal?: AbortSignal;
  /** Overrides the client's per-call timeout in milliseconds (HTTPS client only). */
  timeoutMs?: number;
}

/**
 * Kubernetes API access. `get*` resolve to `null` on 404 NotFound.
 *
 * Failures: `KubeApiError` (the API answered with another error status, e.g. 403 or 500) and
 * `KubeUnavailableError` (no answer: connection refused, TLS failure, timeout, 502–504).
 */
export interface KubeClient {
  /** GET /api/v1/namespaces/{namespace}/pods/{name}. */
  getPod(namespace: string, name: string, options?: KubeCallOptions): Promise<Pod | null>;
  /** GET /api/v1/namespaces/{namespace}/configmaps/{name}. */
  getConfigMap(
    namespace: string,
    name: string,
    options?: KubeCallOptions,
  ): Promise<ConfigMap | null>;
  /** GET /api/v1/namespaces/{namespace}/secrets/{name}. */
  getSecret(namespace: string, name: string, options?: KubeCallOptions): Promise<Secret | null>;
  /** GET /api/v1/namespaces/{namespace}/serviceaccounts/{name}. */
  getServiceAccount(
    namespace: string,
    name: string,
    options?: KubeCallOptions,
  ): Promise<ServiceAccount | null>;
  /**
   * POST /apis/authentication.k8s.io/v1/tokenreviews; resolves to the review's status, read-only
   * (a caching client hands the same frozen answer to every caller).
   */
  reviewToken(
    token: string,
    audiences: readonly string[],
    options?: KubeCallOptions,
  ): Promise<DeepReadonly<TokenReviewStatus>>;
}
