/**
 * What the AWS secret sources share: one memoized credential provider for every client (the SDK's
 * default Node chain: env keys, IRSA web identity, EKS Pod Identity / container credentials,
 * shared files), so an IRSA token is exchanged with STS once per process, and the clients
 * themselves, created lazily per (service, region) and reused, at most `maxRegions` per service.
 * Endpoints come from the SDK's own `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`,
 * `AWS_ENDPOINT_URL_SSM` and `AWS_ENDPOINT_URL_STS`. Retries use the SDK's standard mode
 * (token-bucket budget, full-jitter backoff): throttling, 5xx, timeouts and connection errors are
 * retried up to `maxAttempts`; AccessDenied, ResourceNotFound, DecryptionFailure,
 * InvalidRequest/Parameter and Validation errors are not.
 *
 * @module
 */

import { type AwsCallObserver, observeAwsCalls } from "./aws_metrics.ts";
import type {
  SecretsManagerClient,
  SecretsManagerClientConfig,
} from "@aws-sdk/client-secrets-manager";
import type { SSMClient, SSMClientConfig } from "@aws-sdk/client-ssm";
import { podCredentialProvider } from "./aws_credentials.ts";
import {
  AWS_ATTEMPT_TIMEOUT_MS,
  AWS_MAX_ATTEMPTS,
  checkMaxAttempts,
  invalidRegionError,
  REGION_SHAPE,
  regionMissingError,
} from "./aws_errors.ts";
import type { Logger } from "../log.ts";

export { isRetryableAwsError, toSecretSourceError } from "./aws_errors.ts";

/** A credential provider as the AWS SDK clients accept it. */
export type AwsCredentialProvider = NonNullable<SecretsManagerClientConfig["credentials"]>;

/** Settings common to the Secrets Manager and SSM clients. */
export type SharedClientConfig = SecretsManagerClientConfig & SSMClientConfig;

/** Options of {@link AwsClients} (and of `AwsSecretSource`). */
export interface AwsSecretSourceOptions {
  /** Attempts per AWS call, the first included (SDK standard retry mode). @default 3 */
  maxAttempts?: number;
  /** Timeout of one HTTP attempt, in milliseconds. @default 5000 */
  requestTimeoutMs?: number;
  /** Timeout of opening a connection, in milliseconds. @default 3000 */
  connectionTimeoutMs?: number;
  /** Most GetParametersByPath pages read for one path (10 parameters each). @default 100 */
  maxPages?: number;
  /**
   * Credentials shared by every client.
   * @default {@link podCredentialProvider}: the SDK's default chain without the node's instance
   * role (unless `allowInstanceMetadata`), memoized
   */
  credentials?: AwsCredentialProvider;
  /** Let the default chain fall back to the EC2 instance metadata service. @default false */
  allowInstanceMetadata?: boolean;
  /**
   * Pin the region of the IRSA exchange with STS instead of following the calling client's region
   * (see `PodCredentialOptions.stsRegion`). The webhook sets it; the launcher does not.
   */
  stsRegion?: string;
  /**
   * Most regions (clients) per service. The region comes from pod annotations, so this bounds what a
   * pod author can make the webhook allocate. @default 32
   */
  maxRegions?: number;
  /** Receives one debug line per AWS read (never values). @default no logging */
  logger?: Logger;
  /** Told about every AWS call (API, result, seconds, retries included): metrics. */
  observe?: AwsCallObserver;
}

/**
 * The retry and timeout settings of every AWS client here (secrets, SSM, STS sessions): SDK
 * standard retries and attempt timeouts that throw.
 */
export function retriesAndTimeouts(
  options: Pick<AwsSecretSourceOptions, "maxAttempts" | "requestTimeoutMs" | "connectionTimeoutMs">,
) {
  return {
    retryMode: "standard",
    maxAttempts: options.maxAttempts ?? AWS_MAX_ATTEMPTS,
    requestHandler: {
      requestTimeout: options.requestTimeoutMs ?? AWS_ATTEMPT_TIMEOUT_MS,
      connectionTimeout: options.connectionTimeoutMs ?? 3000,
      // Without this the SDK only logs a warning when an attempt exceeds requestTimeout.
      throwOnRequestTimeout: true,
    },
  };
}

/** A client of one AWS service: what {@link AwsClients} needs of it. */
type AwsClient = SecretsManagerClient | SSMClient;

/** Lazily created AWS clients sharing one credential provider. */
export class AwsClients {
  readonly #retries: ReturnType<typeof retriesAndTimeouts>;
  readonly #maxRegions: number;
  #credentials: AwsCredentialProvider | undefined;
  readonly #allowInstanceMetadata: boolean;
  readonly #stsRegion: string | undefined;
  readonly #observe: AwsCallObserver | undefined;
  readonly #caches = new Map<string, Map<string, AwsClient>>();

  /**
   * Reads no environment and creates no client before the first call.
   *
   * @throws {RangeError} when `maxAttempts` or `maxRegions` is not an integer >= 1
   */
  constructor(options: AwsSecretSourceOptions = {}) {
    this.#retries = retriesAndTimeouts(options);
    this.#maxRegions = options.maxRegions ?? 32;
    this.#credentials = options.credentials;
    this.#allowInstanceMetadata = options.allowInstanceMetadata ?? false;
    this.#stsRegion = options.stsRegion;
    this.#observe = options.observe;
    checkMaxAttempts(this.#retries.maxAttempts);
    if (!Number.isInteger(this.#maxRegions) || this.#maxRegions < 1) {
      throw new RangeError(`Cannot use maxRegions "${this.#maxRegions}": expected an integer >= 1`);
    }
  }

  /** Number of clients alive (every service and region). */
  get count(): number {
    let total = 0;
    for (const cache of this.#caches.values()) total += cache.size;
    return total;
  }

  /** Closes every client's connections. Clients are created again on the next call. */
  destroy(): void {
    for (const cache of this.#caches.values()) {
      for (const client of cache.values()) client.destroy();
      cache.clear();
    }
  }

  #clientConfig(region: string): SharedClientConfig {
    // Lazily, so that merely constructing the source reads no environment.
    this.#credentials ??= podCredentialProvider({
      allowInstanceMetadata: this.#allowInstanceMetadata,
      ...(this.#stsRegion ? { stsRegion: this.#stsRegion } : {}),
    });
    return {
      ...(region === "" ? {} : { region }),
      credentials: this.#credentials,
      ...this.#retries,
    };
  }

  /**
   * The client of `service` for `region`, created on first use.
   *
   * @param subject start of error messages, e.g. `Cannot load secret "app/db"`
   * @throws {SecretSourceError} `InvalidRegion` or `RegionMissing`
   */
  async client<T extends AwsClient>(
    service: string,
    region: string,
    subject: string,
    create: (config: SharedClientConfig) => T,
  ): Promise<T> {
    let cache = this.#caches.get(service) as Map<string, T> | undefined;
    if (!cache) {
      cache = new Map<string, T>();
      this.#caches.set(service, cache);
    }
    let client = cache.get(region);
    if (client) {
      // Least recently used first: a region in use moves to the end.
      cache.delete(region);
    } else {
      if (region !== "" && !REGION_SHAPE.test(region)) {
        throw invalidRegionError(subject, region);
      }
      // Pod annotations choose the region: bound the clients without letting one tenant's made-up
      // regions lock the others out. The least recently used client goes.
      const [oldest, evicted] = cache.entries().next().value ?? [];
      if (cache.size >= this.#maxRegions && oldest !== undefined) {
        cache.delete(oldest);
        evicted?.destroy();
      }
      client = create(this.#clientConfig(region));
      if (this.#observe) observeAwsCalls(client, this.#observe);
    }
    cache.set(region, client);
    try {
      await client.config.region();
    } catch (error) {
      throw regionMissingError(subject, error);
    }
    return client;
  }
}
