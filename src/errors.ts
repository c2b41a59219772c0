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

/** Base class: keeps `cause` and an optional machine-readable `code`. */
export class PiggyError extends Error {
  /** Machine-readable code, used as `error` in JSON error bodies. */
  readonly code: string;

  constructor(message: string, code: string, options: PiggyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? code;
  }
}

/** The request body cannot be decoded (HTTP 400). */
export class AdmissionDecodeError extends PiggyError {
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "BadRequest", options);
  }
}

/** HTTP method not allowed (HTTP 405). */
export class MethodNotAllowedError extends PiggyError {
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "MethodNotAllowed", options);
  }
}

/** Request body larger than the limit (HTTP 413). */
export class PayloadTooLargeError extends PiggyError {
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "PayloadTooLarge", options);
  }
}

/** The client did not send its request body in time (HTTP 408). */
export class RequestTimeoutError extends PiggyError {
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "RequestTimeout", options);
  }
}

/** Content type not supported (HTTP 415). */
export class UnsupportedMediaTypeError extends PiggyError {
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "UnsupportedMediaType", options);
  }
}

/** Missing or unauthenticated credentials (HTTP 401). */
export class UnauthenticatedError extends PiggyError {
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "Unauthenticated", options);
  }
}

/** Authenticated but refused by policy (HTTP 403). */
export class AccessDeniedError extends PiggyError {
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "AccessDenied", options);
  }
}

/** A Kubernetes object the request names does not exist (HTTP 404). */
export class NotFoundError extends PiggyError {
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "NotFound", options);
  }
}

/** The Kubernetes API answered with an error other than NotFound (HTTP 502 on /secret). */
export class KubeApiError extends PiggyError {
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
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "KubernetesUnavailable", options);
  }
}

/** AWS or the secret content failed (HTTP 502). `code` carries the AWS error name. */
export class SecretSourceError extends PiggyError {
  /** True when retrying later may succeed (throttling, 5xx, network). */
  readonly retryable: boolean;

  constructor(message: string, options: PiggyErrorOptions & { retryable?: boolean } = {}) {
    super(message, "SecretSourceError", options);
    this.retryable = options.retryable ?? false;
  }
}

/** Invalid piggy-env command line (exit code 2). */
export class UsageError extends PiggyError {
  constructor(message: string, options: PiggyErrorOptions = {}) {
    super(message, "Usage", options);
  }
}

/**
 * Maps an error to the HTTP status the webhook answers with. The only place that does so.
 *
 * @param error anything thrown
 * @returns 400, 401, 403, 404, 405, 408, 413, 415, 502, 503, or 500 for anything unexpected
 */
export function toStatus(error: unknown): number {
  if (error instanceof AdmissionDecodeError) return 400;
  if (error instanceof UnauthenticatedError) return 401;
  if (error instanceof AccessDeniedError) return 403;
  if (error instanceof NotFoundError) return 404;
  if (error instanceof MethodNotAllowedError) return 405;
  if (error instanceof RequestTimeoutError) return 408;
  if (error instanceof PayloadTooLargeError) return 413;
  if (error instanceof UnsupportedMediaTypeError) return 415;
  if (error instanceof SecretSourceError) return 502;
  if (error instanceof KubeApiError) return 502;
  if (error instanceof KubeUnavailableError) return 503;
  return 500;
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
