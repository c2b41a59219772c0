/**
 * Amazon ECR registries: a registry host that matches the anchored ECR pattern gets a credential
 * from `GetAuthorizationToken` with the webhook's own AWS identity (`AWS` + a 12-hour token).
 * Nothing else ever receives an ECR token: the pod chooses the image host, so the pattern is the
 * only gate. Tokens are cached per registry id and region until shortly before they expire; one
 * running request per key is shared.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { ECRClient, type ECRClientConfig, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";
import type { RegistryCredential } from "./auth.ts";
import { ImageLookupError } from "./errors.ts";
import { LookupCache } from "../lookup_cache.ts";

/** ECR registry hosts: `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`. */
export const ECR_HOST = /^(\d{12})\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/;

/** The account and region of an ECR registry host, or `undefined` for any other host. */
export function ecrRegistryOf(
  registry: string,
): { registryId: string; region: string } | undefined {
  const match = ECR_HOST.exec(registry);
  if (!match) return undefined;
  return { registryId: match[1] ?? "", region: match[3] ?? "" };
}

/** Gets ECR pull credentials. */
export interface EcrCredentialSource {
  credential(registryId: string, region: string, signal?: AbortSignal): Promise<RegistryCredential>;
}

/** Options of {@link AwsEcrCredentialSource}. */
export interface AwsEcrCredentialSourceOptions {
  /** Credentials of the webhook (the same provider as the secret sources). @default SDK chain */
  credentials?: ECRClientConfig["credentials"];
  /** Clock in milliseconds. @default Date.now */
  now?: () => number;
  /** Attempts per call. @default 2 */
  maxAttempts?: number;
}

/** Re-fetch this long before a token expires. */
const EXPIRY_MARGIN_MS = 15 * 60_000;

/** {@link EcrCredentialSource} over `@aws-sdk/client-ecr` (endpoint: `AWS_ENDPOINT_URL_ECR`). */
export class AwsEcrCredentialSource implements EcrCredentialSource {
  readonly #clients = new Map<string, ECRClient>();
  readonly #cache: LookupCache<{ credential: RegistryCredential; expiresAt: number }>;
  readonly #options: AwsEcrCredentialSourceOptions;
  readonly #now: () => number;

  constructor(options: AwsEcrCredentialSourceOptions = {}) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#cache = new LookupCache({ maxEntries: 64, now: this.#now });
  }

  #client(region: string): ECRClient {
    let client = this.#clients.get(region);
    if (!client) {
      client = new ECRClient({
        region,
        maxAttempts: this.#options.maxAttempts ?? 2,
        ...(this.#options.credentials ? { credentials: this.#options.credentials } : {}),
      });
      if (this.#clients.size >= 32) {
        const [oldest] = this.#clients.keys();
        if (oldest !== undefined) {
          this.#clients.get(oldest)?.destroy();
          this.#clients.delete(oldest);
        }
      }
      this.#clients.set(region, client);
    }
    return client;
  }

  async credential(
    registryId: string,
    region: string,
    signal?: AbortSignal,
  ): Promise<RegistryCredential> {
    const key = `${registryId}/${region}`;
    const loaded = await this.#cache.load(key, 0, async () => {
      let output;
      try {
        output = await this.#client(region).send(
          new GetAuthorizationTokenCommand({ registryIds: [registryId] }),
          signal ? { abortSignal: signal } : {},
        );
      } catch (error) {
        const name = error instanceof Error ? error.name : "Error";
        const message = error instanceof Error ? error.message.slice(0, 200) : String(error);
        throw new ImageLookupError(
          name === "AbortError" ? "timeout" : "unauthorized",
          `ECR GetAuthorizationToken for registry ${registryId} in ${region} failed: ${name}: ${message}`,
          { cause: error },
        );
      }
      const data = output.authorizationData?.[0];
      const text = data?.authorizationToken
        ? Buffer.from(data.authorizationToken, "base64").toString("utf8")
        : "";
      const colon = text.indexOf(":");
      if (colon <= 0) {
        throw new ImageLookupError(
          "invalid_response",
          `ECR GetAuthorizationToken for registry ${registryId} returned no usable token`,
        );
      }
      const expiresAt = data?.expiresAt instanceof Date
        ? data.expiresAt.getTime()
        : this.#now() + 60 * 60_000;
      const value = {
        credential: { username: text.slice(0, colon), password: text.slice(colon + 1) },
        expiresAt,
      };
      this.#cache.set(key, value, expiresAt - EXPIRY_MARGIN_MS - this.#now());
      return value;
    });
    return loaded.credential;
  }

  /** Closes the SDK clients. */
  close(): void {
    for (const client of this.#clients.values()) client.destroy();
    this.#clients.clear();
  }
}
