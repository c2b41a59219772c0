/**
 * One fetch attempt in either mode: the webhook proxy (`/secret`) or AWS directly (standalone).
 * Everything that does not change between attempts is prepared once, before the first attempt.
 *
 * @module
 */

import { ENV } from "../constants.ts";
import { SecretSourceError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { signatureText } from "../pod/signature_text.ts";
import {
  type CommandTemplate,
  matchesTemplate,
  parseCommandTemplate,
} from "../pod/command_template.ts";
import type { SecretSource } from "../secrets/source.ts";
import type { LauncherOptions } from "./options.ts";
import { type ProxyRequest, requestSecrets, secretUrl } from "./proxy.ts";

/** The launcher settings the standalone AWS source follows. */
export interface StandaloneSourceSettings {
  /** Largest AWS answer body read (`PIGGY_AWS_MAX_ANSWER_BYTES`). */
  awsMaxAnswerBytes: number;
}

/** One attempt; `attempt` is 1-based. */
export type FetchOnce = (attempt: number) => Promise<Record<string, string>>;

/** I/O the fetchers need. */
export interface FetchDeps {
  /** Reads a text file (token, CA). */
  readTextFile(path: string): Promise<string>;
  /** The proxy call. @default requestSecrets */
  requestSecrets?: (request: ProxyRequest) => Promise<Record<string, string>>;
  /** Creates the AWS source for standalone mode (loaded lazily: proxy mode never loads the SDK). */
  createSecretSource(logger: Logger, settings: StandaloneSourceSettings): Promise<SecretSource>;
  /** The launcher's environment, to expand the command template. @default nothing is defined */
  envGet?: (name: string) => string | undefined;
}

/**
 * The signature sent for `command`: the admitted template's (what `piggysec.com/piggy-uid` holds)
 * when `command` is exactly that template expanded with the launcher's literal variables, else the
 * command's own (which the webhook refuses unless it is the admitted command).
 *
 * @param template `PIGGY_COMMAND_TEMPLATE`; empty when the mutation set none
 * @throws {TypeError} the template is not usable
 */
export async function launcherSignature(
  command: readonly string[],
  template: string,
  envGet: (name: string) => string | undefined,
): Promise<string> {
  if (template === "") return await webSignature(command);
  let parsed: CommandTemplate;
  try {
    parsed = parseCommandTemplate(template);
  } catch (error) {
    throw new TypeError(`Cannot use ${ENV.COMMAND_TEMPLATE}: ${(error as Error).message}`);
  }
  return await webSignature(matchesTemplate(command, parsed, envGet) ? parsed.argv : command);
}

/**
 * `commandSignature()` (src/pod/signature.ts) through WebCrypto: the same hex SHA-256 of the same
 * text, without loading `node:crypto` (which loads Deno's Node stream layer: a measurable part of
 * the launcher's start).
 */
export async function webSignature(argv: readonly string[]): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(signatureText(argv)),
  );
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * Prepares proxy-mode attempts: validates the address, reads the CA once, computes the command
 * signature (see {@link launcherSignature}); each attempt re-reads the token (it is rotated) and POSTs.
 *
 * @param command the command after `--`, as signed by the webhook
 * @throws {TypeError} when the address is missing or unusable, or the CA file cannot be read
 */
export async function prepareProxyFetch(
  options: LauncherOptions,
  command: readonly string[],
  deps: FetchDeps,
): Promise<FetchOnce> {
  if (!options.address) {
    throw new TypeError(`Cannot fetch secrets: ${ENV.ADDRESS} is empty and standalone mode is off`);
  }
  secretUrl(options.address);
  let ca = options.caBundle;
  if (options.caFile) {
    try {
      ca = `${await deps.readTextFile(options.caFile)}\n${ca}`.trim();
    } catch (error) {
      throw new TypeError(`Cannot read the CA file "${options.caFile}"`, { cause: error });
    }
  }
  const signature = await launcherSignature(
    command,
    options.commandTemplate,
    deps.envGet ?? (() => undefined),
  );
  const send = deps.requestSecrets ?? requestSecrets;
  return async () => {
    let token: string;
    try {
      token = (await deps.readTextFile(options.tokenFile)).trim();
    } catch (error) {
      throw new SecretSourceError(`Cannot read the token file "${options.tokenFile}"`, {
        cause: error,
        code: "TokenUnavailable",
        retryable: true,
      });
    }
    return await send({
      address: options.address,
      token,
      body: { resources: "pods", name: options.podName, uid: options.uid, signature },
      ca,
      skipVerifyTls: options.skipVerifyTls,
      timeoutMs: options.requestTimeoutMs,
    });
  };
}

/**
 * Prepares standalone attempts: each reads Secrets Manager (or SSM when a path is set) through the
 * same {@link SecretSource} the webhook uses, bounded by the per-attempt timeout.
 *
 * @throws {TypeError} when neither a secret name nor an SSM path is set
 */
export async function prepareStandaloneFetch(
  options: LauncherOptions,
  deps: FetchDeps,
  logger: Logger,
): Promise<FetchOnce> {
  const { query } = options;
  if (!query) {
    throw new TypeError(
      `Cannot fetch secrets in standalone mode: ${ENV.AWS_SECRET_NAME} and ${ENV.AWS_SSM_PARAMETER_PATH} are empty`,
    );
  }
  const source = await deps.createSecretSource(logger, {
    awsMaxAnswerBytes: options.awsMaxAnswerBytes,
  });
  return async () => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new SecretSourceError(
          `Cannot read AWS: no answer within ${options.requestTimeoutMs}ms`,
          { code: "Timeout", retryable: true },
        );
        controller.abort(error);
        reject(error);
      }, options.requestTimeoutMs);
    });
    try {
      return await Promise.race([
        source.fetchSecret({ ...query }, { signal: controller.signal }),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  };
}
