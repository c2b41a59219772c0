/**
 * piggy-env settings: command-line flags merged with the `PIGGY_*` environment the webhook injects.
 * Pure: the environment comes in as a lookup function.
 *
 * @module
 */

import { parseGoDuration } from "../config/duration.ts";
import { parseGoBool } from "../config/parse.ts";
import {
  DEFAULT_AWS_MAX_ANSWER_BYTES,
  DEFAULT_TOKEN_FILE,
  ENV,
  MAX_AWS_MAX_ANSWER_BYTES,
} from "../constants.ts";
import { chooseLogLevel, type LogLevel } from "../log.ts";
import type { SecretQuery } from "../secrets/source.ts";
import { secretQueryOf } from "../secrets/query.ts";
import { parseAttempts, parseDelay, type RunFlags } from "./args.ts";

/** Default per-attempt timeout of a fetch, in milliseconds. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** Everything piggy-env needs to fetch secrets and start the command. */
export interface LauncherOptions {
  /** Read AWS directly instead of the webhook proxy. */
  standalone: boolean;
  /** Total fetch attempts (≥ 1). @default 1 */
  attempts: number;
  /** Milliseconds to wait before the first attempt. @default 0 */
  initialDelayMs: number;
  /** Start the command even when secrets cannot be fetched or references stay unresolved. */
  ignoreNoEnv: boolean;
  /** Logger level (`LOG_LEVEL`, else debug when `PIGGY_DEBUG=true`, else info). */
  logLevel: LogLevel;
  /** Base URL of the webhook (proxy mode). */
  address: string;
  /** Pod name sent to the webhook. */
  podName: string;
  /** Container UID sent to the webhook. */
  uid: string;
  /** Service-account token file sent as `X-Token`. @default DEFAULT_TOKEN_FILE */
  tokenFile: string;
  /** PEM CA file that verifies the webhook (empty: system roots). */
  caFile: string;
  /** PEM CA text that verifies the webhook (empty: system roots). */
  caBundle: string;
  /** Do not verify the webhook's certificate (explicit opt-out). @default false */
  skipVerifyTls: boolean;
  /** Per-attempt timeout in milliseconds. @default DEFAULT_REQUEST_TIMEOUT_MS */
  requestTimeoutMs: number;
  /** Largest AWS answer body read in standalone mode. @default DEFAULT_AWS_MAX_ANSWER_BYTES */
  awsMaxAnswerBytes: number;
  /** What to read in standalone mode; undefined when neither a secret name nor an SSM path is set. */
  query: SecretQuery | undefined;
  /** `PIGGY_DNS_RESOLVER` as given; accepted and ignored (the system resolver is used). */
  dnsResolver: string;
  /** `PIGGY_COMMAND_TEMPLATE` as given (the kubelet already turned `$$` back into `$`); "" when unset. */
  commandTemplate: string;
}

/** Reads one environment variable; `undefined` when unset. */
export type EnvGet = (name: string) => string | undefined;

function envValue(envGet: EnvGet, name: string): string | undefined {
  const value = envGet(name);
  return value === undefined || value === "" ? undefined : value;
}

function parsed<T>(envGet: EnvGet, name: string, parse: (text: string) => T): T | undefined {
  const value = envValue(envGet, name);
  if (value === undefined) return undefined;
  try {
    return parse(value);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    const Kind = error instanceof RangeError ? RangeError : SyntaxError;
    throw new Kind(`Invalid ${name}: ${detail}`, { cause: error });
  }
}

function byteCount(text: string): number {
  if (!/^[0-9]+$/.test(text.trim())) {
    throw new SyntaxError(`Cannot parse "${text}": expecting a number of bytes`);
  }
  const value = Number(text.trim());
  if (value < 1 || value > MAX_AWS_MAX_ANSWER_BYTES) {
    throw new RangeError(
      `Cannot use "${text}": expecting an integer from 1 to ${MAX_AWS_MAX_ANSWER_BYTES}`,
    );
  }
  return value;
}

function positiveDuration(text: string): number {
  const ms = parseGoDuration(text.trim());
  if (ms <= 0) throw new RangeError(`Cannot use "${text}": expecting a duration greater than 0`);
  return ms;
}

/**
 * Merges flags with the environment. As in Go Piggy a non-empty environment value overrides the
 * flag; unlike Go Piggy an invalid value is an error instead of `false`, `0` or a silent reset.
 *
 * @param flags run-mode flags from {@link parseLauncherArgs}
 * @param envGet environment lookup (empty values count as unset)
 * @throws {SyntaxError} when a `PIGGY_*` value cannot be parsed
 * @throws {RangeError} when a `PIGGY_*` value is out of range
 */
export function resolveLauncherOptions(flags: RunFlags, envGet: EnvGet): LauncherOptions {
  const debug = parsed(envGet, ENV.DEBUG, parseGoBool) ?? false;
  return {
    standalone: parsed(envGet, ENV.STANDALONE, parseGoBool) ?? flags.standalone ?? false,
    attempts: parsed(envGet, ENV.NUMBER_OF_RETRY, parseAttempts) ?? flags.attempts ?? 1,
    initialDelayMs: parsed(envGet, ENV.INITIAL_DELAY, parseDelay) ?? flags.initialDelayMs ?? 0,
    ignoreNoEnv: parsed(envGet, ENV.IGNORE_NO_ENV, parseGoBool) ?? false,
    logLevel: chooseLogLevel(envValue(envGet, "LOG_LEVEL"), debug),
    address: envValue(envGet, ENV.ADDRESS) ?? "",
    podName: envValue(envGet, ENV.POD_NAME) ?? "",
    uid: envValue(envGet, ENV.UID) ?? "",
    tokenFile: envValue(envGet, ENV.TOKEN_FILE) ?? DEFAULT_TOKEN_FILE,
    caFile: envValue(envGet, ENV.CA_FILE) ?? "",
    caBundle: envValue(envGet, ENV.CA_BUNDLE) ?? "",
    skipVerifyTls: parsed(envGet, ENV.SKIP_VERIFY_TLS, parseGoBool) ?? false,
    requestTimeoutMs: parsed(envGet, ENV.REQUEST_TIMEOUT, positiveDuration) ??
      DEFAULT_REQUEST_TIMEOUT_MS,
    awsMaxAnswerBytes: parsed(envGet, ENV.AWS_MAX_ANSWER_BYTES, byteCount) ??
      DEFAULT_AWS_MAX_ANSWER_BYTES,
    query: secretQueryOf({
      awsSecretName: envValue(envGet, ENV.AWS_SECRET_NAME) ?? "",
      awsSsmParameterPath: envValue(envGet, ENV.AWS_SSM_PARAMETER_PATH) ?? "",
      awsRegion: envValue(envGet, ENV.AWS_REGION) ?? "",
      awsSecretVersion: envValue(envGet, ENV.AWS_SECRET_VERSION) ?? "",
    }),
    dnsResolver: envValue(envGet, ENV.DNS_RESOLVER) ?? "",
    commandTemplate: envValue(envGet, ENV.COMMAND_TEMPLATE) ?? "",
  };
}
