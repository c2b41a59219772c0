/**
 * The light AWS {@link SecretSource} of piggy-env's standalone mode: Secrets Manager
 * `GetSecretValue` and SSM `GetParametersByPath` (awsJson1_1, SigV4 over Web Crypto, one HTTP/1.1
 * exchange per call: `./http.ts`),
 * with the same requests, results, error codes and messages as the SDK-based `AwsSecretSource`
 * (`../aws_source.ts`), so piggy-env's behaviour does not depend on which one runs. Loads no AWS
 * SDK: `choose.ts` says when the SDK is needed instead.
 *
 * @module
 */

import { SecretSourceError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import {
  invalidRegionError,
  REGION_SHAPE,
  regionMissingError,
  toSecretSourceError,
} from "../aws_errors.ts";
import {
  type NamedParameter,
  readParameterPages,
  secretValuesOf,
  versionSelector,
} from "../aws_format.ts";
import type {
  SecretFetchOptions,
  SecretQuery,
  SecretsManagerQuery,
  SecretSource,
  SsmQuery,
} from "../source.ts";
import { type CredentialChainDeps, lightCredentialChain } from "./credentials.ts";
import { type AwsService, endpointFor, type EnvGet, SECRETS_MANAGER, SSM } from "./endpoints.ts";
import { AwsHttp, type AwsHttpOptions } from "./http.ts";

/** A host name label, the SDK's check of a configured region. */
const HOST_LABEL = /^(?!.*-$)(?!-)[a-zA-Z0-9-]{1,63}$/;

/** Options of {@link LightAwsSource}. */
export interface LightAwsSourceOptions extends AwsHttpOptions {
  /** The process environment (credentials, region, endpoints). */
  env: EnvGet;
  /** Reads token files. */
  readTextFile(path: string): Promise<string>;
  /** Most GetParametersByPath pages read for one path (10 parameters each). @default 100 */
  maxPages?: number;
  /** Receives one debug line per read (never values). */
  logger?: Logger | undefined;
  /** Container credential timeout and retry spacing, in milliseconds. @default 1000 */
  containerTimeoutMs?: number;
}

/** Reads Secrets Manager secrets and SSM parameters without the AWS SDK. */
export class LightAwsSource implements SecretSource {
  readonly #env: EnvGet;
  readonly #http: AwsHttp;
  readonly #credentials: ReturnType<typeof lightCredentialChain>;
  readonly #maxPages: number;
  readonly #logger: Logger | undefined;

  /** @throws {RangeError} when `maxAttempts` or `maxPages` is not an integer >= 1 */
  constructor(options: LightAwsSourceOptions) {
    this.#env = options.env;
    this.#http = new AwsHttp(options);
    this.#maxPages = options.maxPages ?? 100;
    this.#logger = options.logger;
    if (!Number.isInteger(this.#maxPages) || this.#maxPages < 1) {
      throw new RangeError(`Cannot use maxPages "${this.#maxPages}": expected an integer >= 1`);
    }
    const chainDeps: CredentialChainDeps = {
      env: options.env,
      readTextFile: options.readTextFile,
      http: this.#http,
      logger: options.logger,
      ...(options.containerTimeoutMs === undefined
        ? {}
        : { containerTimeoutMs: options.containerTimeoutMs }),
    };
    this.#credentials = lightCredentialChain(chainDeps);
  }

  /**
   * Fetches every key of the secret, or every parameter under the SSM path.
   *
   * @throws {SecretSourceError} as `AwsSecretSource.fetchSecret`
   */
  fetchSecret(
    query: SecretQuery,
    options: SecretFetchOptions = {},
  ): Promise<Record<string, string>> {
    switch (query.kind) {
      case "secretsManager":
        return this.#secret(query, options.signal);
      case "ssm":
        return this.#parameters(query, options.signal);
    }
  }

  /**
   * The region of a call: the query's (a region name, else `InvalidRegion`), else `AWS_REGION`
   * (the SDK reads no other variable), which must be a host name label as the SDK requires: it
   * becomes part of the endpoint's host name and of the signature. Errors read as the SDK's.
   */
  #region(queryRegion: string, subject: string): string {
    if (queryRegion !== "" && !REGION_SHAPE.test(queryRegion)) {
      throw invalidRegionError(subject, queryRegion);
    }
    const region = queryRegion || this.#env("AWS_REGION") || "";
    if (region === "") throw regionMissingError(subject, new Error("Region is missing"));
    if (!HOST_LABEL.test(region)) {
      throw regionMissingError(
        subject,
        new Error(`Region not accepted: region="${region}" is not a valid hostname component.`),
      );
    }
    return region;
  }

  async #call(
    service: AwsService,
    target: string,
    region: string,
    input: Record<string, unknown>,
    subject: string,
    signal: AbortSignal | undefined,
  ): Promise<{ output: Record<string, unknown>; attempts: number }> {
    let endpoint: URL;
    try {
      endpoint = endpointFor(service, region, this.#env);
    } catch (error) {
      throw new SecretSourceError(`${subject}: ${(error as Error).message}`, {
        code: "InvalidEndpoint",
      });
    }
    try {
      const answer = await this.#http.send({
        service,
        region,
        endpoint,
        protocol: "json",
        headers: { "x-amz-target": target },
        body: JSON.stringify(input),
        credentials: () => this.#credentials(region, signal),
        signal,
      });
      const parsed: unknown = JSON.parse(answer.text);
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new SecretSourceError(`${subject}: the answer is not a JSON object`, {
          code: "SyntaxError",
        });
      }
      return { output: parsed as Record<string, unknown>, attempts: answer.attempts };
    } catch (error) {
      throw toSecretSourceError(subject, error);
    }
  }

  async #secret(
    query: SecretsManagerQuery,
    signal: AbortSignal | undefined,
  ): Promise<Record<string, string>> {
    const subject = `Cannot load secret "${query.name}"`;
    const region = this.#region(query.region, subject);
    const { output, attempts } = await this.#call(
      SECRETS_MANAGER,
      "secretsmanager.GetSecretValue",
      region,
      { SecretId: query.name, ...versionSelector(query.version) },
      subject,
      signal,
    );
    return secretValuesOf(query, subject, output, attempts, this.#logger);
  }

  async #parameters(
    query: SsmQuery,
    signal: AbortSignal | undefined,
  ): Promise<Record<string, string>> {
    const path = query.path;
    const subject = `Cannot load parameters under "${path}"`;
    const region = this.#region(query.region, subject);
    return await readParameterPages(query, subject, this.#maxPages, this.#logger, async (input) => {
      const { output } = await this.#call(
        SSM,
        "AmazonSSM.GetParametersByPath",
        region,
        { ...input },
        subject,
        signal,
      );
      return {
        Parameters: Array.isArray(output.Parameters) ? (output.Parameters as NamedParameter[]) : [],
        NextToken: typeof output.NextToken === "string" ? output.NextToken : undefined,
      };
    });
  }
}
