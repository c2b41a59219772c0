/**
 * One `/secret` request to the webhook's proxy (`src/runtime/http_post.ts`: `Deno.connect`/`startTls` on
 * Deno, `node:https` on Node). TLS is verified unless explicitly skipped.
 *
 * @module
 */

import { SECRET_PATH, TOKEN_HEADER } from "../constants.ts";
import { SecretSourceError } from "../errors.ts";
import {
  AnswerTooLargeError,
  type PostAnswer,
  PostNetworkError,
  postText,
} from "../runtime/http_post.ts";

/** Largest answer body read from the webhook. */
export const MAX_ANSWER_BYTES = 1024 * 1024;

/** Longest error text kept from a failed answer. */
export const MAX_ERROR_TEXT = 300;

/** The request body Go Piggy's launcher sends (field order kept). */
export interface SecretRequestBody {
  resources: "pods";
  name: string;
  uid: string;
  signature: string;
}

/** One proxy call. */
export interface ProxyRequest {
  /** Webhook base URL (`https://host[:port][/prefix]`); a trailing `/` is allowed. */
  address: string;
  /** Raw service-account token (sent as `X-Token`). */
  token: string;
  /** Request body. */
  body: SecretRequestBody;
  /** PEM CA text; empty uses the system roots. */
  ca: string;
  /** Do not verify the server certificate. */
  skipVerifyTls: boolean;
  /** Milliseconds before the attempt is abandoned. */
  timeoutMs: number;
}

/**
 * The `/secret` URL for a webhook address: Go Piggy concatenated strings (`//secret` for a trailing
 * slash); here the slash is handled.
 *
 * @throws {TypeError} when the address is not an absolute http(s) URL without credentials
 */
export function secretUrl(address: string): URL {
  let url: URL;
  try {
    url = new URL(address.trim());
  } catch (error) {
    throw new TypeError(`Cannot parse the webhook address "${address}"`, { cause: error });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new TypeError(`Cannot use the webhook address "${address}": expecting https://`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new TypeError(
      `Cannot use the webhook address "${address}": no credentials, query or fragment allowed`,
    );
  }
  url.pathname = url.pathname.replace(/\/+$/, "") + SECRET_PATH;
  return url;
}

function describeAnswer(status: number, text: string): { code: string; message: string } {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === "object" && "message" in parsed) {
      const record = parsed as Record<string, unknown>;
      return {
        code: typeof record.error === "string" ? record.error : `HTTP${status}`,
        message: String(record.message).slice(0, MAX_ERROR_TEXT),
      };
    }
  } catch {
    // Go Piggy's webhook answers plain text.
  }
  return { code: `HTTP${status}`, message: text.trim().slice(0, MAX_ERROR_TEXT) };
}

/**
 * True for answers worth retrying: 408, 429 and 5xx. Other 4xx answers are permanent (bad token,
 * refused, unknown pod, bad signature): retrying only delays the failure.
 */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Decodes a 200 answer: a JSON object of string values.
 *
 * @throws {SecretSourceError} when the body is not such an object (the values are never quoted)
 */
export function decodeSecretAnswer(text: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SecretSourceError("Cannot decode the webhook answer: not JSON", {
      code: "InvalidAnswer",
    });
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new SecretSourceError("Cannot decode the webhook answer: not a JSON object", {
      code: "InvalidAnswer",
    });
  }
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== "string") {
      throw new SecretSourceError(
        `Cannot decode the webhook answer: the value of "${key}" is not a string`,
        { code: "InvalidAnswer" },
      );
    }
    values[key] = value;
  }
  return values;
}

/**
 * The values of a 200 answer.
 *
 * @throws {SecretSourceError} for another status (retryable as the status says) or a bad body
 */
function secretsOfAnswer(status: number, text: string): Record<string, string> {
  if (status === 200) return decodeSecretAnswer(text);
  const { code, message } = describeAnswer(status, text);
  throw new SecretSourceError(`Webhook answered ${status}: ${message || "(no message)"}`, {
    code,
    retryable: isRetryableStatus(status),
  });
}

/**
 * POSTs to `<address>/secret` and returns the key/value map.
 *
 * @throws {TypeError} when the address is unusable (not retryable)
 * @throws {SecretSourceError} on a non-200 answer, a bad body, a network error or the timeout;
 *   `retryable` tells whether another attempt may succeed
 */
export async function requestSecrets(request: ProxyRequest): Promise<Record<string, string>> {
  const url = secretUrl(request.address);
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(
      new SecretSourceError(
        `Cannot reach the webhook: no answer within ${request.timeoutMs}ms`,
        { code: "Timeout", retryable: true },
      ),
    );
  }, request.timeoutMs);
  let answer: PostAnswer;
  try {
    answer = await postText({
      url,
      headers: { "Content-Type": "application/json", [TOKEN_HEADER]: request.token },
      body: JSON.stringify(request.body),
      ca: request.ca,
      skipVerifyTls: request.skipVerifyTls,
      maxBytes: MAX_ANSWER_BYTES,
      signal: controller.signal,
    });
  } catch (error) {
    throw describePostError(error);
  } finally {
    clearTimeout(timer);
  }
  return secretsOfAnswer(answer.status, answer.text);
}

/** The {@link SecretSourceError} for a failed POST (the cause carries the details). */
function describePostError(error: unknown): unknown {
  if (error instanceof SecretSourceError) return error;
  if (error instanceof AnswerTooLargeError) {
    return new SecretSourceError(
      `Cannot read the webhook answer: larger than ${MAX_ANSWER_BYTES} bytes`,
      { code: "InvalidAnswer" },
    );
  }
  if (error instanceof PostNetworkError) {
    // describeError() appends the cause's message when logging.
    const code = error.code && !error.message.includes(error.code) ? `: ${error.code}` : "";
    return new SecretSourceError(`Cannot reach the webhook${code}`, {
      cause: error,
      code: error.code ?? "NetworkError",
      retryable: true,
    });
  }
  return new SecretSourceError("Cannot read the webhook answer", { cause: error, retryable: true });
}
