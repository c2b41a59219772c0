/**
 * {@link SecretSource} of AWS SSM Parameter Store: `GetParametersByPath` (recursive, decrypted),
 * each parameter's last name element as the key.
 *
 * @module
 */

import { GetParametersByPathCommand, SSMClient } from "@aws-sdk/client-ssm";
import type { Logger } from "../log.ts";
import { type AwsClients, toSecretSourceError } from "./aws_clients.ts";
import { readParameterPages } from "./aws_format.ts";
import type { SecretFetchOptions, SecretSource, SsmQuery } from "./source.ts";

/** Options of {@link SsmSource}. */
export interface SsmSourceOptions {
  /** Most GetParametersByPath pages read for one path (10 parameters each). @default 100 */
  maxPages?: number | undefined;
  /** Receives one debug line per read (never values). @default no logging */
  logger?: Logger | undefined;
}

/** Reads SSM parameters through shared {@link AwsClients}. */
export class SsmSource implements SecretSource<SsmQuery> {
  readonly #clients: AwsClients;
  readonly #maxPages: number;
  readonly #logger: Logger | undefined;

  /** @throws {RangeError} when `maxPages` is not an integer >= 1 */
  constructor(clients: AwsClients, options: SsmSourceOptions = {}) {
    this.#clients = clients;
    this.#maxPages = options.maxPages ?? 100;
    this.#logger = options.logger;
    if (!Number.isInteger(this.#maxPages) || this.#maxPages < 1) {
      throw new RangeError(`Cannot use maxPages "${this.#maxPages}": expected an integer >= 1`);
    }
  }

  /**
   * Fetches every parameter under the path.
   *
   * @throws {SecretSourceError} `code` is the AWS error name, or one of `RegionMissing`,
   * `InvalidRegion`, `ParameterNameCollision`, `TooManyParameterPages`
   */
  async fetchSecret(
    query: SsmQuery,
    options: SecretFetchOptions = {},
  ): Promise<Record<string, string>> {
    const path = query.path;
    const subject = `Cannot load parameters under "${path}"`;
    const client = await this.#clients.client(
      "ssm",
      query.region,
      subject,
      (config) => new SSMClient(config),
    );
    return await readParameterPages(query, subject, this.#maxPages, this.#logger, async (input) => {
      try {
        return await client.send(
          new GetParametersByPathCommand(input),
          options.signal ? { abortSignal: options.signal } : {},
        );
      } catch (error) {
        throw toSecretSourceError(subject, error);
      }
    });
  }
}
