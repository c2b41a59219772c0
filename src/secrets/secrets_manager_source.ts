/**
 * {@link SecretSource} of AWS Secrets Manager: `GetSecretValue` of one secret, whose
 * `SecretString` is a JSON object of strings.
 *
 * @module
 */

import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { Logger } from "../log.ts";
import { type AwsClients, toSecretSourceError } from "./aws_clients.ts";
import { secretValuesOf, versionSelector } from "./aws_format.ts";
import type { SecretFetchOptions, SecretsManagerQuery, SecretSource } from "./source.ts";

/** Reads Secrets Manager secrets through shared {@link AwsClients}. */
export class SecretsManagerSource implements SecretSource<SecretsManagerQuery> {
  readonly #clients: AwsClients;
  readonly #logger: Logger | undefined;

  /** @param options `logger` receives one debug line per read (never values) */
  constructor(clients: AwsClients, options: { logger?: Logger | undefined } = {}) {
    this.#clients = clients;
    this.#logger = options.logger;
  }

  /**
   * Fetches every key of the secret.
   *
   * @throws {SecretSourceError} `code` is the AWS error name, or one of `RegionMissing`,
   * `InvalidRegion`, `InvalidSecretFormat`, `BinarySecretNotSupported`
   */
  async fetchSecret(
    query: SecretsManagerQuery,
    options: SecretFetchOptions = {},
  ): Promise<Record<string, string>> {
    const subject = `Cannot load secret "${query.name}"`;
    const client = await this.#clients.client(
      "secretsmanager",
      query.region,
      subject,
      (config) => new SecretsManagerClient(config),
    );
    const selector = versionSelector(query.version);
    let output;
    try {
      output = await client.send(
        new GetSecretValueCommand({ SecretId: query.name, ...selector }),
        options.signal ? { abortSignal: options.signal } : {},
      );
    } catch (error) {
      throw toSecretSourceError(subject, error);
    }
    return secretValuesOf(query, subject, output, output.$metadata.attempts, this.#logger);
  }
}
