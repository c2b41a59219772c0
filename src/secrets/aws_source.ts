/**
 * The AWS {@link SecretSource} of the webhook's `/secret` proxy and piggy-env's standalone mode:
 * Secrets Manager (`secrets_manager_source.ts`) and SSM Parameter Store (`ssm_source.ts`) behind
 * a {@link RouterSecretSource}, sharing one {@link AwsClients} (one credential provider, clients per
 * service and region).
 *
 * @module
 */

import { AwsClients, type AwsSecretSourceOptions } from "./aws_clients.ts";
import { RouterSecretSource } from "./router_source.ts";
import { SecretsManagerSource } from "./secrets_manager_source.ts";
import { SsmSource } from "./ssm_source.ts";
import type { SecretFetchOptions, SecretQuery, SecretSource } from "./source.ts";

export type { AwsCredentialProvider, AwsSecretSourceOptions } from "./aws_clients.ts";
export { isRetryableAwsError, toSecretSourceError } from "./aws_clients.ts";

/** Reads secrets from AWS Secrets Manager or SSM Parameter Store, by query kind. */
export class AwsSecretSource implements SecretSource {
  readonly #clients: AwsClients;
  readonly #router: RouterSecretSource;

  /**
   * Creates the source; no client, credential lookup or network call happens before the first
   * fetch.
   *
   * @param options retry, timeout and credential settings
   * @throws {RangeError} when a count option is not an integer >= 1
   */
  constructor(options: AwsSecretSourceOptions = {}) {
    this.#clients = new AwsClients(options);
    this.#router = new RouterSecretSource({
      secretsManager: new SecretsManagerSource(this.#clients, { logger: options.logger }),
      ssm: new SsmSource(this.#clients, { maxPages: options.maxPages, logger: options.logger }),
    });
  }

  /** Number of clients created so far (per service and region). */
  get clientCount(): number {
    return this.#clients.count;
  }

  /**
   * Fetches every key of the secret, or every parameter under the SSM path.
   *
   * @throws {SecretSourceError} `code` is the AWS error name, or one of `RegionMissing`,
   * `InvalidRegion`, `InvalidSecretFormat`, `BinarySecretNotSupported`,
   * `ParameterNameCollision`, `TooManyParameterPages`
   */
  fetchSecret(query: SecretQuery, options?: SecretFetchOptions): Promise<Record<string, string>> {
    return this.#router.fetchSecret(query, options);
  }

  /** Closes every client's connections. The source can still be used afterwards. */
  destroy(): void {
    this.#clients.destroy();
  }
}
