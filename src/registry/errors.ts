/**
 * The one error an image lookup fails with. Messages name the reason in words a pod author can act
 * on and never contain credentials, tokens or response bodies.
 *
 * @module
 */

/** Why a lookup failed, for metrics and tests. */
export type ImageLookupFailure =
  | "invalid_reference"
  | "forbidden_host"
  | "network"
  | "tls"
  | "timeout"
  | "unauthorized"
  | "not_found"
  | "registry_error"
  | "invalid_response"
  | "platform";

/** An image's Entrypoint and Cmd could not be read. */
export class ImageLookupError extends Error {
  /** Why, as a stable word. */
  readonly failure: ImageLookupFailure;

  constructor(failure: ImageLookupFailure, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ImageLookupError";
    this.failure = failure;
  }
}
