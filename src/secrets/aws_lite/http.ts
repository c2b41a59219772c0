/**
 * One AWS call of the light client over `requestText` (src/runtime/http_post.ts: one HTTP/1.1
 * exchange over `Deno.connect`/`Deno.startTls` on Deno, `node:http(s)` on Node; never `fetch`,
 * whose implementation costs the launcher's cold start more than the whole call). The caller hands
 * `requestText` in ({@link AwsHttpOptions.send}): the launcher passes the copy its proxy path
 * already loaded, so the light bundle holds no second one (whose Node fallback would make the
 * bundle import `node:http` and `node:https` up front). With the SDK's
 * standard retry mode: up to `maxAttempts` attempts for throttling, HTTP
 * 429/5xx, timeouts and network errors (`isRetryableAwsError`), full-jitter exponential backoff
 * (base 100 ms, 500 ms after throttling, at most 20 s) drawn from a retry quota (500 tokens, 5 per
 * retry, 10 after a timeout, 1 back per success), a timeout per attempt and a limit on the answer's
 * size (an answer over it fails the call for good, naming `PIGGY_AWS_MAX_ANSWER_BYTES`). TLS is
 * verified against the runtime's default roots with the endpoint's host as server name; like the
 * SDK, `AWS_CA_BUNDLE` is not read. Requests go through the proxy `proxyFor` names (from
 * `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`, `proxy_env.ts`). Failures are thrown
 * as {@link AwsCallError}: the AWS error name and message (never a request or answer body beyond
 * the error message), shaped like the SDK's errors so `toSecretSourceError` maps both alike.
 *
 * @module
 */

import { DEFAULT_AWS_MAX_ANSWER_BYTES, ENV } from "../../constants.ts";
import type { PostAnswer, PostRequest } from "../../runtime/http_post.ts";
import {
  AWS_ATTEMPT_TIMEOUT_MS,
  AWS_MAX_ATTEMPTS,
  checkMaxAttempts,
  isRetryableAwsError,
  isThrottlingAwsError,
} from "../aws_errors.ts";
import { type AwsCredentials, signRequest } from "./sigv4.ts";
import type { AwsService } from "./endpoints.ts";
import type { ProxyChooser } from "./proxy_env.ts";

/** An AWS failure, shaped like an SDK service error (`name`, `$metadata.httpStatusCode`). */
export class AwsCallError extends Error {
  /** HTTP status of the answer; absent for network errors and timeouts. */
  readonly $metadata: { httpStatusCode?: number; attempts?: number };
  /** Node-style error code of a network failure (`ECONNREFUSED`, …). */
  readonly code: string | undefined;
  /** Present when retrying may succeed although neither status nor code says so (the SDK's mark). */
  readonly $retryable: { throttling: boolean } | undefined;

  constructor(
    name: string,
    message: string,
    options: { status?: number; code?: string; cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = name;
    this.$metadata = options.status === undefined ? {} : { httpStatusCode: options.status };
    this.code = options.code;
    this.$retryable = options.retryable ? { throttling: false } : undefined;
  }
}

/** Wire protocol of a call. */
export type AwsProtocol = "json" | "query";

/** One call. */
export interface AwsRequest {
  service: AwsService;
  region: string;
  endpoint: URL;
  protocol: AwsProtocol;
  /** Extra headers (e.g. `x-amz-target`); `content-type` is set from the protocol. */
  headers?: Record<string, string>;
  body: string;
  /** Credentials of each attempt; `undefined` sends the request unsigned (STS web identity). */
  credentials?: (() => Promise<AwsCredentials>) | undefined;
  signal?: AbortSignal | undefined;
}

/** The answer body and the number of attempts it took. */
export interface AwsAnswer {
  text: string;
  attempts: number;
}

/**
 * `requestText` of src/runtime/http_post.ts (its errors are told apart by name: the caller's copy
 * of the module may not be this bundle's).
 */
export type SendRequest = (request: PostRequest) => Promise<PostAnswer>;

/** The transport, retry and timeout settings. */
export interface AwsHttpOptions {
  /** Sends one request: `requestText` (src/runtime/http_post.ts). */
  send: SendRequest;
  /** Attempts per call, the first included. @default 3 */
  maxAttempts?: number;
  /** Timeout of one attempt, in milliseconds. @default 5000 */
  requestTimeoutMs?: number;
  /** Waits between attempts. @default setTimeout */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Jitter source in [0, 1). @default Math.random */
  random?: () => number;
  /** Largest answer body read, in bytes. @default DEFAULT_AWS_MAX_ANSWER_BYTES */
  maxAnswerBytes?: number;
  /**
   * The proxy of each request (`proxyFromEnvironment` of `proxy_env.ts`); direct without.
   * @default every request direct
   */
  proxyFor?: ProxyChooser | undefined;
}

const CONTENT_TYPE: Record<AwsProtocol, string> = {
  json: "application/x-amz-json-1.1",
  query: "application/x-www-form-urlencoded",
};

const INITIAL_RETRY_TOKENS = 500;
const RETRY_COST = 5;
const TIMEOUT_RETRY_COST = 10;
const MAX_RETRY_DELAY_MS = 20_000;

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function xmlText(xml: string, element: string): string | undefined {
  const match = new RegExp(`<${element}>([\\s\\S]*?)</${element}>`).exec(xml);
  return match?.[1] === undefined ? undefined : decodeXml(match[1]);
}

/** Decodes the five XML entities and numeric character references. */
export function decodeXml(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_, entity: string) => {
    if (entity.startsWith("#x")) return String.fromCodePoint(parseInt(entity.slice(2), 16));
    if (entity.startsWith("#")) return String.fromCodePoint(parseInt(entity.slice(1), 10));
    return { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" }[entity] ?? "";
  });
}

/** Keeps the SDK's reading of an error code: `ns#Name`, `Name:uri`, `Name,…` → `Name`. */
function cleanErrorCode(raw: string): string {
  let code = raw.split(",")[0] ?? "";
  code = code.split(":")[0] ?? "";
  if (code.includes("#")) code = code.split("#")[1] ?? "";
  return code.trim();
}

/** The error an answer with a non-2xx status stands for. */
export function answerError(
  protocol: AwsProtocol,
  status: number,
  headers: Map<string, string>,
  text: string,
): AwsCallError {
  let name = "";
  let message: string | undefined;
  if (protocol === "json") {
    let body: Record<string, unknown> = {};
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed !== null && typeof parsed === "object") body = parsed as Record<string, unknown>;
    } catch {
      // not JSON: the header and status still say what happened
    }
    const raw = headers.get("x-amzn-errortype") ??
      (typeof body.code === "string" ? body.code : undefined) ??
      (typeof body.__type === "string" ? body.__type : undefined);
    if (raw !== undefined) name = cleanErrorCode(raw);
    const candidate = body.message ?? body.Message;
    if (typeof candidate === "string") message = candidate;
  } else {
    name = xmlText(text, "Code") ?? "";
    message = xmlText(text, "Message");
  }
  if (name === "") name = "UnknownError";
  return new AwsCallError(name, message ?? name, { status });
}

/** Sends AWS calls with retries; one per process keeps one retry quota, as an SDK client does. */
export class AwsHttp {
  readonly #maxAttempts: number;
  readonly #timeoutMs: number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #random: () => number;
  readonly #maxAnswerBytes: number;
  readonly #send: SendRequest;
  readonly #proxyFor: ProxyChooser | undefined;
  #tokens = INITIAL_RETRY_TOKENS;

  /** @throws {RangeError} when `maxAttempts` or `maxAnswerBytes` is not an integer >= 1 */
  constructor(options: AwsHttpOptions) {
    this.#send = options.send;
    this.#proxyFor = options.proxyFor;
    this.#maxAttempts = checkMaxAttempts(options.maxAttempts ?? AWS_MAX_ATTEMPTS);
    this.#timeoutMs = options.requestTimeoutMs ?? AWS_ATTEMPT_TIMEOUT_MS;
    this.#sleep = options.sleep ?? defaultSleep;
    this.#random = options.random ?? Math.random;
    this.#maxAnswerBytes = options.maxAnswerBytes ?? DEFAULT_AWS_MAX_ANSWER_BYTES;
    if (!Number.isSafeInteger(this.#maxAnswerBytes) || this.#maxAnswerBytes < 1) {
      throw new RangeError(
        `Cannot use maxAnswerBytes "${this.#maxAnswerBytes}": expected an integer >= 1`,
      );
    }
  }

  /**
   * One GET of the light client (container credentials): unsigned, no retries, no timeout of its
   * own (`signal` bounds it), the same size limit as the AWS calls.
   *
   * @throws {AwsCallError} `AnswerTooLarge` when the body is over the limit
   * @throws what `requestText` throws otherwise
   */
  async get(
    url: URL,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<{ status: number; text: string }> {
    try {
      const answer = await this.#send({
        method: "GET",
        url,
        headers,
        body: "",
        ca: "",
        skipVerifyTls: false,
        maxBytes: this.#maxAnswerBytes,
        signal,
        proxy: this.#proxyFor?.(url),
      });
      return { status: answer.status, text: answer.text };
    } catch (error) {
      if (nameOf(error) === "AnswerTooLargeError") throw this.#tooLarge(url);
      if (nameOf(error) === "ProxyError") throw proxyCallError(error);
      throw error;
    }
  }

  #tooLarge(url: URL): AwsCallError {
    return new AwsCallError(
      "AnswerTooLarge",
      `the answer of ${url.host} is larger than ${this.#maxAnswerBytes} bytes ` +
        `(${ENV.AWS_MAX_ANSWER_BYTES})`,
    );
  }

  /**
   * Sends `request` until it succeeds, fails for good, or runs out of attempts.
   *
   * @throws {AwsCallError} the last failure (or what the credentials threw)
   */
  async send(request: AwsRequest): Promise<AwsAnswer> {
    for (let attempt = 1;; attempt++) {
      try {
        const text = await this.#attempt(request);
        this.#tokens = Math.min(INITIAL_RETRY_TOKENS, this.#tokens + 1);
        return { text, attempts: attempt };
      } catch (error) {
        if (request.signal?.aborted || attempt >= this.#maxAttempts) throw error;
        if (!isRetryableAwsError(error)) throw error;
        const name = (error as { name?: unknown }).name;
        const cost = name === "TimeoutError" ? TIMEOUT_RETRY_COST : RETRY_COST;
        if (this.#tokens < cost) throw error;
        this.#tokens -= cost;
        const base = isThrottlingAwsError(error) ? 500 : 100;
        const delay = Math.floor(
          Math.min(MAX_RETRY_DELAY_MS, this.#random() * 2 ** attempt * base),
        );
        await this.#sleep(delay, request.signal);
      }
    }
  }

  async #attempt(request: AwsRequest): Promise<string> {
    const headers: Record<string, string> = {
      ...request.headers,
      "content-type": CONTENT_TYPE[request.protocol],
    };
    const signed = request.credentials
      ? await signRequest(
        { method: "POST", url: request.endpoint, headers, body: request.body },
        {
          service: request.service.prefix,
          region: request.region,
          credentials: await request.credentials(),
        },
      )
      : headers;
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = request.signal ? AbortSignal.any([request.signal, timeout]) : timeout;
    const timedOut = () =>
      new AwsCallError(
        "TimeoutError",
        `a request has exceeded the configured ${this.#timeoutMs} ms requestTimeout`,
      );
    let answer;
    try {
      answer = await this.#send({
        url: request.endpoint,
        headers: signed,
        body: request.body,
        ca: "",
        skipVerifyTls: false,
        maxBytes: this.#maxAnswerBytes,
        signal,
        proxy: this.#proxyFor?.(request.endpoint),
      });
    } catch (error) {
      if (request.signal?.aborted) throw request.signal.reason ?? error;
      if (timeout.aborted) throw timedOut();
      if (nameOf(error) === "ProxyError") throw proxyCallError(error);
      if (nameOf(error) === "AnswerTooLargeError") throw this.#tooLarge(request.endpoint);
      if (nameOf(error) === "AnswerBodyError") {
        throw new AwsCallError("Error", `the answer ended early: ${oneLine(error)}`, {
          code: "ECONNRESET",
          cause: error,
        });
      }
      const code = nameOf(error) === "PostNetworkError"
        ? (error as { code?: string | undefined }).code
        : undefined;
      throw new AwsCallError(
        "Error",
        code ? `connect ${code} ${request.endpoint.host}` : oneLine(error),
        // No cause when the code says it: the message then reads as the SDK's does.
        code ? { code } : { cause: error },
      );
    }
    const text = answer.text;
    if (answer.status < 200 || answer.status > 299) {
      throw answerError(request.protocol, answer.status, answer.headers, text);
    }
    return text;
  }
}

/**
 * A proxy's failure (src/runtime/http_proxy.ts `ProxyError`, told apart by name: the launcher's
 * copy of the module is not this bundle's) as an AWS call error named `ProxyError`: retryable as
 * the proxy's error says (unreachable, reset and 5xx are; 407, 403 and unusable settings are
 * not). Its message names the proxy's host and variable, never its credentials.
 */
function proxyCallError(error: unknown): AwsCallError {
  const shape = error as { message?: unknown; retryable?: unknown; code?: unknown };
  const code = typeof shape.code === "string" ? shape.code : undefined;
  return new AwsCallError("ProxyError", String(shape.message), {
    retryable: shape.retryable === true,
    ...(code && shape.retryable === true ? { code } : {}),
  });
}

/** The `name` of an error (`undefined` for anything else). */
function nameOf(error: unknown): string | undefined {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === "string" ? name : undefined;
}

function oneLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s+/g, " ").trim();
}
