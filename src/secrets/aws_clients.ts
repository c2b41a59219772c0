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
import { SecretSourceError } from "../errors.ts";
import type { Logger } from "../log.ts";

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

/** Shape of an AWS region name (`us-east-1`, `us-gov-west-1`, `eu-isoe-west-1`). */
const REGION_SHAPE = /^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$/;

/** Longest AWS message kept in an error (messages never hold values, but bound them anyway). */
const MAX_MESSAGE_LENGTH = 300;

const THROTTLING_ERRORS = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "ThrottledException",
  "LimitExceededException",
  "SlowDown",
  "ProvisionedThroughputExceededException",
]);

const TRANSIENT_ERRORS = new Set(["TimeoutError", "RequestTimeout", "RequestTimeoutException"]);

const NETWORK_ERROR_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

interface AwsErrorShape {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/**
 * True when retrying later may succeed: throttling, HTTP 429/5xx, timeouts, network errors.
 *
 * @param error an error thrown by the AWS SDK
 */
export function isRetryableAwsError(error: unknown): boolean {
  if (error === null || typeof error !== "object") return false;
  const shape = error as AwsErrorShape;
  const name = typeof shape.name === "string" ? shape.name : "";
  const status = typeof shape.$metadata?.httpStatusCode === "number"
    ? shape.$metadata.httpStatusCode
    : 0;
  if (THROTTLING_ERRORS.has(name) || TRANSIENT_ERRORS.has(name)) return true;
  if (status === 429 || status >= 500) return true;
  if (shape.$retryable !== undefined) return true;
  if (typeof shape.code === "string" && NETWORK_ERROR_CODES.has(shape.code)) return true;
  return false;
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > MAX_MESSAGE_LENGTH ? `${flat.slice(0, MAX_MESSAGE_LENGTH)}…` : flat;
}

/**
 * Wraps an AWS SDK error: `code` is the AWS error name (for a plain network `Error`, its Node
 * error code such as `ECONNREFUSED`), the message is
 * `<subject>: <AWS message>`, `retryable` marks throttling, 5xx and network failures.
 *
 * @param subject what failed, e.g. `Cannot load secret "app/db"`
 * @param error the SDK error
 */
export function toSecretSourceError(subject: string, error: unknown): SecretSourceError {
  if (error instanceof SecretSourceError) return error;
  const shape = (error !== null && typeof error === "object" ? error : {}) as AwsErrorShape;
  let name = typeof shape.name === "string" && shape.name !== "" ? shape.name : "UnknownError";
  // Network failures are plain Errors whose `code` (ECONNREFUSED, …) says more than the name.
  if (name === "Error" && typeof shape.code === "string" && shape.code !== "") name = shape.code;
  const message = typeof shape.message === "string" && shape.message !== ""
    ? oneLine(shape.message)
    : name;
  return new SecretSourceError(`${subject}: ${message}`, {
    code: name,
    cause: error,
    retryable: isRetryableAwsError(error),
  });
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
    maxAttempts: options.maxAttempts ?? 3,
    requestHandler: {
      requestTimeout: options.requestTimeoutMs ?? 5000,
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
    const { maxAttempts } = this.#retries;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
      throw new RangeError(`Cannot use maxAttempts "${maxAttempts}": expected an integer >= 1`);
    }
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
        throw new SecretSourceError(`${subject}: "${region}" is not an AWS region name`, {
          code: "InvalidRegion",
        });
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
      throw new SecretSourceError(
        `${subject}: no AWS region is configured (set the region or AWS_REGION)`,
        { code: "RegionMissing", cause: error },
      );
    }
    return client;
  }
}
