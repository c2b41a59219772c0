/**
 * Domain errors that callers catch, and the single error → HTTP status mapping.
 *
 * @module
 */

/** Options accepted by every domain error. */
export interface PiggyErrorOptions {
  /** The underlying error. */
  cause?: unknown;
  /** Machine-readable code for JSON error bodies (e.g. an AWS error name). */
  code?: string;
}

/**
 * Base class: keeps `cause`, an optional machine-readable `code`, and declares the HTTP status the
 * webhook answers when a request fails with it.
 */
export class PiggyError extends Error {
  /** Machine-readable code, used as `error` in JSON error bodies. */
  readonly code: string;
  /** The status we answer (not an upstream one: that is data on the error). */
  readonly httpStatus: number = 500;

  constructor(message: string, code: string, options: PiggyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? code;
  }
}

/** The request body cannot be decoded (HTTP 400). */
export class AdmissionDecodeError extends PiggyError {
  override readonly httpStatus: number = 400;
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "BadRequest", options);
  }
}

/** HTTP method not allowed (HTTP 405). */
export class MethodNotAllowedError extends PiggyError {
  override readonly httpStatus: number = 405;
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "MethodNotAllowed", options);
  }
}

/** Request body larger than the limit (HTTP 413). */
export class PayloadTooLargeError extends PiggyError {
  override readonly httpStatus: number = 413;
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "PayloadTooLarge", options);
  }
}

/** The client did not send its request body in time (HTTP 408). */
export class RequestTimeoutError extends PiggyError {
  override readonly httpStatus: number = 408;
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "RequestTimeout", options);
  }
}

/** Content type not supported (HTTP 415). */
export class UnsupportedMediaTypeError extends PiggyError {
  override readonly httpStatus: number = 415;
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "UnsupportedMediaType", options);
  }
}

/** Missing or unauthenticated credentials (HTTP 401). */
export class UnauthenticatedError extends PiggyError {
  override readonly httpStatus: number = 401;
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "Unauthenticated", options);
  }
}

/** Authenticated but refused by policy (HTTP 403). */
export class AccessDeniedError extends PiggyError {
  override readonly httpStatus: number = 403;
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "AccessDenied", options);
  }
}

/** A Kubernetes object the request names does not exist (HTTP 404). */
export class NotFoundError extends PiggyError {
  override readonly httpStatus: number = 404;
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "NotFound", options);
  }
}

/** The Kubernetes API answered with an error other than NotFound (HTTP 502 on /secret). */
export class KubeApiError extends PiggyError {
  override readonly httpStatus: number = 502;
  /** HTTP status the Kubernetes API answered with (0 when no answer). */
  readonly status: number;
  /** Kubernetes `Status.reason`, when the body carried one. */
  readonly reason: string;

  constructor(
    message: string,
    status: number,
    options: PiggyErrorOptions & { reason?: string } = {},
  ) {
    super(message, "KubernetesApiError", options);
    this.status = status;
    this.reason = options.reason ?? "";
  }
}

/** The Kubernetes API cannot be reached or is failing (HTTP 503, retryable). */
export class KubeUnavailableError extends PiggyError {
  override readonly httpStatus: number = 503;
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "KubernetesUnavailable", options);
  }
}

/** AWS or the secret content failed (HTTP 502). `code` carries the AWS error name. */
export class SecretSourceError extends PiggyError {
  override readonly httpStatus: number = 502;
  /** True when retrying later may succeed (throttling, 5xx, network). */
  readonly retryable: boolean;

  constructor(message: string, options: PiggyErrorOptions & { retryable?: boolean } = {}) {
    super(message, "SecretSourceError", options);
    this.retryable = options.retryable ?? false;
  }
}

/**
 * A request exceeds one of the webhook's limits (HTTP 400): too many containers, env entries or
 * referenced objects. The message names the setting.
 */
export class LimitExceededError extends PiggyError {
  override readonly httpStatus: number = 400;
  /** The environment variable that sets the limit. */
  readonly setting: string;
  constructor(message: string, setting: string, options: PiggyErrorOptions = {}) {
    super(message, "LimitExceeded", options);
    this.setting = setting;
  }
}

/** A deadline of the webhook passed before the answer was known (HTTP 504). */
export class DeadlineExceededError extends PiggyError {
  override readonly httpStatus: number = 504;
  /** The environment variable that sets the deadline. */
  readonly setting: string;
  constructor(message: string, setting: string, options: PiggyErrorOptions = {}) {
    super(message, "DeadlineExceeded", options);
    this.setting = setting;
  }
}

/** An object inside a well-formed request has a field of the wrong type (HTTP 422). */
export class InvalidObjectError extends PiggyError {
  override readonly httpStatus: number = 422;
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "Invalid", options);
  }
}

/** Invalid piggy-env command line (exit code 2). */
export class UsageError extends PiggyError {
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "Usage", options);
  }
}

/**
 * Maps an error to the HTTP status the webhook answers with: the `httpStatus` a domain error
 * declares, 500 for anything else. The only place that does so.
 *
 * @param error anything thrown
 */
export function toStatus(error: unknown): number {
  return error instanceof PiggyError ? error.httpStatus : 500;
}

/**
 * The `{error, message}` body of a failed `/secret` or other JSON endpoint. Never includes values.
 *
 * @param error anything thrown
 */
export function toErrorBody(error: unknown): { error: string; message: string } {
  if (error instanceof PiggyError) return { error: error.code, message: error.message };
  return { error: "InternalError", message: "Internal error" };
}
