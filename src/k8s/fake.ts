/**
 * In-memory {@link KubeClient} for unit tests: objects keyed by namespace/name, tokens mapped to
 * TokenReview statuses, per-kind injected failures, and a call log.
 *
 * @module
 */

import type { ConfigMap, Pod, Secret, ServiceAccount } from "kubernetes-types/core/v1.d.ts";
import type { TokenReviewStatus } from "kubernetes-types/authentication/v1.d.ts";
import type { KubeCallOptions, KubeClient } from "./client.ts";

/** Object kinds the fake stores. */
export type FakeKind = "pods" | "configmaps" | "secrets" | "serviceaccounts";

type Stored = Pod | ConfigMap | Secret | ServiceAccount;

/** In-memory Kubernetes API. Returned objects are deep copies. */
export class FakeKubeClient implements KubeClient {
  readonly #objects = new Map<string, Stored>();
  readonly #tokens = new Map<string, TokenReviewStatus>();
  readonly #failures = new Map<FakeKind | "tokenreviews", Error>();
  /** Every call made, as `kind namespace/name` (or `tokenreviews`). */
  readonly calls: string[] = [];

  /** Stores an object under its `metadata.namespace`/`metadata.name`. */
  put(kind: FakeKind, object: Stored): this {
    const namespace = object.metadata?.namespace ?? "default";
    const name = object.metadata?.name ?? "";
    this.#objects.set(`${kind} ${namespace}/${name}`, structuredClone(object));
    return this;
  }

  /** Makes `token` review as `status`. */
  putToken(token: string, status: TokenReviewStatus): this {
    this.#tokens.set(token, structuredClone(status));
    return this;
  }

  /** Makes every call for `kind` throw `error` (pass `undefined` to clear). */
  fail(kind: FakeKind | "tokenreviews", error: Error | undefined): this {
    if (error) this.#failures.set(kind, error);
    else this.#failures.delete(kind);
    return this;
  }

  getPod(namespace: string, name: string, _options?: KubeCallOptions): Promise<Pod | null> {
    return this.#get("pods", namespace, name) as Promise<Pod | null>;
  }

  getConfigMap(
    namespace: string,
    name: string,
    _options?: KubeCallOptions,
  ): Promise<ConfigMap | null> {
    return this.#get("configmaps", namespace, name) as Promise<ConfigMap | null>;
  }

  getSecret(namespace: string, name: string, _options?: KubeCallOptions): Promise<Secret | null> {
    return this.#get("secrets", namespace, name) as Promise<Secret | null>;
  }

  getServiceAccount(
    namespace: string,
    name: string,
    _options?: KubeCallOptions,
  ): Promise<ServiceAccount | null> {
    return this.#get("serviceaccounts", namespace, name) as Promise<ServiceAccount | null>;
  }

  reviewToken(
    token: string,
    audiences: readonly string[],
    _options?: KubeCallOptions,
  ): Promise<TokenReviewStatus> {
    this.calls.push("tokenreviews");
    const failure = this.#failures.get("tokenreviews");
    if (failure) return Promise.reject(failure);
    const status = this.#tokens.get(token);
    if (!status) return Promise.resolve({ authenticated: false, error: "invalid bearer token" });
    const result = structuredClone(status);
    if (audiences.length > 0 && result.audiences === undefined) result.audiences = [...audiences];
    return Promise.resolve(result);
  }

  #get(kind: FakeKind, namespace: string, name: string): Promise<Stored | null> {
    this.calls.push(`${kind} ${namespace}/${name}`);
    const failure = this.#failures.get(kind);
    if (failure) return Promise.reject(failure);
    const found = this.#objects.get(`${kind} ${namespace}/${name}`);
    return Promise.resolve(found ? structuredClone(found) : null);
  }
}
