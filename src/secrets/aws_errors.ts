/**
 * How AWS failures become Piggy errors, shared by the SDK clients (`aws_clients.ts`) and the light
 * client of piggy-env's standalone mode (`aws_lite/`): which failures are worth retrying, and the
 * {@link SecretSourceError} (code = the AWS error name, one line of AWS message) a caller sees.
 * Imports nothing of the AWS SDK.
 *
 * @module
 */

import { SecretSourceError } from "../errors.ts";

/** Shape of an AWS region name (`us-east-1`, `us-gov-west-1`, `eu-isoe-west-1`). */
export const REGION_SHAPE = /^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$/;

/** Longest AWS message kept in an error (messages never hold values, but bound them anyway). */
const MAX_MESSAGE_LENGTH = 300;

/** The SDK's throttling error names (`@smithy/service-error-classification`). */
const THROTTLING_ERRORS = new Set([
  "BandwidthLimitExceeded",
  "EC2ThrottledException",
  "LimitExceededException",
  "PriorRequestNotComplete",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "SlowDown",
  "ThrottledException",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
  "TransactionInProgressException",
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

/** True for a throttling error, as the SDK's retry strategy classifies it (name or HTTP 429). */
export function isThrottlingAwsError(error: unknown): boolean {
  if (error === null || typeof error !== "object") return false;
  const shape = error as AwsErrorShape;
  return (typeof shape.name === "string" && THROTTLING_ERRORS.has(shape.name)) ||
    shape.$metadata?.httpStatusCode === 429;
}

/** Attempts per AWS call, as the SDK's standard retry mode makes them: both AWS clients' default. */
export const AWS_MAX_ATTEMPTS = 3;

/** Timeout of one attempt of an AWS call, in milliseconds: both AWS clients' default. */
export const AWS_ATTEMPT_TIMEOUT_MS = 5000;

/**
 * Checks a client's `maxAttempts`.
 *
 * @throws {RangeError} when it is not an integer >= 1
 */
export function checkMaxAttempts(maxAttempts: number): number {
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(`Cannot use maxAttempts "${maxAttempts}": expected an integer >= 1`);
  }
  return maxAttempts;
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
  if (error instanceof SyntaxError) {
    // A JSON parser's message quotes the text around the fault, which may be part of a secret,
    // and the SDK's parser keeps the whole answer on the error (`$responseBodyText`): neither the
    // message nor the error is kept.
    return new SecretSourceError(`${subject}: the answer is not valid JSON`, {
      code: "SyntaxError",
    });
  }
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

/** The error of a region name that is not one (`InvalidRegion`). */
export function invalidRegionError(subject: string, region: string): SecretSourceError {
  return new SecretSourceError(`${subject}: "${region}" is not an AWS region name`, {
    code: "InvalidRegion",
  });
}

/** The error of a call without a region (`RegionMissing`). */
export function regionMissingError(subject: string, cause?: unknown): SecretSourceError {
  return new SecretSourceError(
    `${subject}: no AWS region is configured (set the region or AWS_REGION)`,
    { code: "RegionMissing", ...(cause === undefined ? {} : { cause }) },
  );
}
