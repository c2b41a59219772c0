/**
 * {@link KubeClient} over HTTPS: the few reads Piggy needs, TokenReview, and a `/version` probe.
 *
 * Decision: a small client over `node:https` rather than `@kubernetes/client-node`. That package
 * weighs ~70 MB, adds ~300 ms to start-up, and its 2.x line crashes on import under Node 20. This
 * file uses only `node:` built-ins (https, http, fs, buffer), which behave the same under Deno 2.8
 * (with `ca`, `cert`, `key`) and Node 20, so it runs unchanged on both.
 *
 * Behaviour:
 * - One keep-alive agent per client; a request that fails because a pooled connection was closed
 *   by the server (`ECONNRESET`/`EPIPE` on a reused socket) is retried once on a new connection.
 * - Per-call timeout (default 3 s) covering connect, TLS, headers and body, plus the caller's
 *   `AbortSignal`.
 * - Bearer token files are re-read every few seconds (bound tokens rotate); a 401 answered to a
 *   cached token forces a re-read and one retry. kubeconfig `exec` plugins (local start only) run
 *   when their token expires and after such a 401 (`exec_credential.ts`).
 * - Status mapping: 2xx → object; 404 → `null` (TokenReview: error); 429, 502, 503, 504, connection,
 *   TLS and timeout failures → `KubeUnavailableError`; any other status → `KubeApiError` with the
 *   Kubernetes `Status` reason and message.
 * - Never puts the bearer token, a reviewed token or a response body in errors or logs: messages
 *   carry only `Status.message` from Kubernetes `Status` bodies.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { ConfigMap, Pod, Secret, ServiceAccount } from "kubernetes-types/core/v1.d.ts";
import type { TokenReview, TokenReviewStatus } from "kubernetes-types/authentication/v1.d.ts";
import type { Info } from "kubernetes-types/version.d.ts";
import { KubeApiError, KubeUnavailableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { KubeCallOptions, KubeClient } from "./client.ts";
import { ExecCredentialCache, type RunCommand } from "./exec_credential.ts";
import type { KubeConfig } from "./kubeconfig.ts";

/** `User-Agent` of every request. */
export const USER_AGENT = "piggy-webhooks";

/** Default per-call timeout in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 3_000;

/** How long a token read from a token file is reused before the file is read again. */
export const TOKEN_FILE_CACHE_MS = 10_000;

/** Largest response body accepted (a Secret is at most 1 MiB; pods stay well below). */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Options of {@link HttpKubeClient}. */
export interface HttpKubeClientOptions {
  /** Per-call timeout in milliseconds. @default DEFAULT_TIMEOUT_MS */
  timeoutMs?: number;
  /** Gets `config.warnings` once, a debug line per call (method, path, status, duration), and
   * token-file warnings. */
  logger?: Logger;
  /** Reads the token file. @default node:fs readFileSync (UTF-8) */
  readFile?: (path: string) => string;
  /** Clock for the token-file cache, in milliseconds. @default Date.now */
  now?: () => number;
  /** Token-file cache lifetime in milliseconds. @default TOKEN_FILE_CACHE_MS */
  tokenCacheMs?: number;
  /** Connections kept per API server. @default 32 */
  maxSockets?: number;
  /** Largest response body accepted. @default MAX_RESPONSE_BYTES */
  maxResponseBytes?: number;
  /**
   * Runs kubeconfig `exec` credential plugins. Without it a configuration with `exec` is refused:
   * only the local start (`npm start`, which grants `--allow-run`) passes one.
   */
  runCommand?: RunCommand;
  /** Told about each finished call: its API (`get_pod`, `create_tokenreview`…), result, seconds. */
  observe?: KubeCallObserver;
}

/** How a Kubernetes API call ended, for metrics. */
export type KubeCallResult = "ok" | "not_found" | "denied" | "throttled" | "error";

/** Receives one finished Kubernetes API call. */
export type KubeCallObserver = (api: string, result: KubeCallResult, seconds: number) => void;

/** `get_pod`, `create_tokenreview`, `get_version`…: the verb and singular resource of a call. */
function apiOf(method: "GET" | "POST", path: string): string {
  if (path === "/version") return "get_version";
  const plural = path === TOKEN_REVIEW_PATH
    ? "tokenreviews"
    : /^\/api\/v1\/namespaces\/[^/]+\/([^/]+)\//.exec(path)?.[1];
  const verb = method === "POST" ? "create" : "get";
  return plural ? `${verb}_${plural.replace(/s$/, "")}` : "other";
}

function resultOf(error: unknown): KubeCallResult {
  if (error instanceof KubeApiError) {
    if (error.status === 404) return "not_found";
    if (error.status === 401 || error.status === 403) return "denied";
    if (error.status === 429) return "throttled";
  }
  return "error";
}

/** The object kinds this client reads, by URL plural. */
type Kind = "pods" | "configmaps" | "secrets" | "serviceaccounts";

const SINGULAR: Record<Kind, string> = {
  pods: "pod",
  configmaps: "configmap",
  secrets: "secret",
  serviceaccounts: "serviceaccount",
};

const TOKEN_REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews";

/** A response read in full. */
interface RawResponse {
  status: number;
  body: Buffer;
}

/** A failure before a complete response arrived. */
class TransportError extends Error {
  /** True when the request went out on a pooled keep-alive connection. */
  readonly reused: boolean;

  constructor(cause: unknown, reused: boolean) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = "TransportError";
    this.reused = reused;
  }
}

/** Marks a response larger than the limit. */
class ResponseTooLargeError extends Error {
  constructor(limit: number) {
    super(`the response is larger than ${limit} bytes`);
    this.name = "ResponseTooLargeError";
  }
}

/** Re-reads a token file at most every `ttlMs`, keeping the last good token on read errors. */
class TokenFileCache {
  readonly #path: string;
  readonly #readFile: (path: string) => string;
  readonly #now: () => number;
  readonly #ttlMs: number;
  readonly #logger: Logger | undefined;
  #token: string | undefined;
  #readAt = 0;

  constructor(
    path: string,
    readFile: (path: string) => string,
    options: { now: () => number; ttlMs: number; logger: Logger | undefined },
  ) {
    this.#path = path;
    this.#readFile = readFile;
    this.#now = options.now;
    this.#ttlMs = options.ttlMs;
    this.#logger = options.logger;
  }

  /** The token, and whether it was read from the file just now. */
  get(force = false): { token: string; fresh: boolean } {
    const now = this.#now();
    if (!force && this.#token !== undefined && now - this.#readAt < this.#ttlMs) {
      return { token: this.#token, fresh: false };
    }
    try {
      const token = this.#readFile(this.#path).trim();
      if (token === "") throw new Error("the file is empty");
      this.#token = token;
      this.#readAt = now;
      return { token, fresh: true };
    } catch (error) {
      if (this.#token === undefined) {
        throw new KubeUnavailableError(`Cannot read the bearer token file "${this.#path}"`, {
          cause: error,
        });
      }
      // The kubelet swaps the file atomically; a failed read should not drop a working token.
      this.#logger?.warn("Cannot re-read the bearer token file: using the previous token", {
        path: this.#path,
        error: error instanceof Error ? error.message : String(error),
      });
      this.#readAt = now;
      return { token: this.#token, fresh: false };
    }
  }
}

/**
 * Kubernetes API client over `node:https` (or `node:http` for a plain-HTTP kubeconfig server).
 * Call {@link HttpKubeClient.close} to drop pooled connections.
 */
export class HttpKubeClient implements KubeClient {
  readonly #config: KubeConfig;
  readonly #base: URL;
  readonly #basePath: string;
  readonly #secure: boolean;
  readonly #agent: http.Agent;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;
  readonly #logger: Logger | undefined;
  readonly #tokenFile: TokenFileCache | undefined;
  readonly #exec: ExecCredentialCache | undefined;
  readonly #observe: KubeCallObserver | undefined;

  /**
   * @param config where and how to reach the API server (see `loadKubeConfig`)
   * @throws {TypeError} when `config.server` is not an http(s) URL
   */
  constructor(config: KubeConfig, options: HttpKubeClientOptions = {}) {
    let base: URL;
    try {
      base = new URL(config.server);
    } catch (error) {
      throw new TypeError(`Cannot use Kubernetes server "${config.server}": not a URL`, {
        cause: error,
      });
    }
    if (base.protocol !== "https:" && base.protocol !== "http:") {
      throw new TypeError(`Cannot use Kubernetes server "${config.server}": not http(s)`);
    }
    this.#config = config;
    this.#base = base;
    this.#basePath = base.pathname.replace(/\/+$/, "");
    this.#secure = base.protocol === "https:";
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 32 };
    this.#agent = this.#secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxResponseBytes = options.maxResponseBytes ?? MAX_RESPONSE_BYTES;
    this.#logger = options.logger;
    this.#observe = options.observe;
    // loadKubeConfig is pure and returns its warnings (e.g. insecure-skip-tls-verify): log them once.
    for (const warning of config.warnings) this.#logger?.warn(`Kubernetes client: ${warning}`);
    if (config.tokenFile !== undefined) {
      this.#tokenFile = new TokenFileCache(
        config.tokenFile,
        options.readFile ?? ((path) => readFileSync(path, "utf8")),
        {
          now: options.now ?? Date.now,
          ttlMs: options.tokenCacheMs ?? TOKEN_FILE_CACHE_MS,
          logger: options.logger,
        },
      );
    }
    if (config.exec !== undefined) {
      if (options.runCommand === undefined) {
        throw new TypeError(
          `Cannot use the kubeconfig "${config.location}": it gets credentials from the exec ` +
            `plugin "${config.exec.command}", and this process does not run commands (only the ` +
            "local start does, with --allow-run): use a token, tokenFile or client certificate",
        );
      }
      this.#exec = new ExecCredentialCache(config.exec, config, options.runCommand, {
        ...(options.now ? { now: options.now } : {}),
        logger: options.logger,
      });
    }
  }

  /** The API server base URL. */
  get server(): string {
    return this.#config.server;
  }

  getPod(namespace: string, name: string, options?: KubeCallOptions): Promise<Pod | null> {
    return this.#getObject<Pod>("pods", namespace, name, options);
  }

  getConfigMap(
    namespace: string,
    name: string,
    options?: KubeCallOptions,
  ): Promise<ConfigMap | null> {
    return this.#getObject<ConfigMap>("configmaps", namespace, name, options);
  }

  getSecret(namespace: string, name: string, options?: KubeCallOptions): Promise<Secret | null> {
    return this.#getObject<Secret>("secrets", namespace, name, options);
  }

  getServiceAccount(
    namespace: string,
    name: string,
    options?: KubeCallOptions,
  ): Promise<ServiceAccount | null> {
    return this.#getObject<ServiceAccount>("serviceaccounts", namespace, name, options);
  }

  /**
   * Creates a TokenReview (authentication.k8s.io/v1). `spec.audiences` is sent only when
   * `audiences` is non-empty. An empty token is not sent: it reviews as unauthenticated.
   *
   * @returns the review's `status` (`{}` if the API sent none)
   * @throws {KubeApiError} when the API answers an error (404 included: the API is missing)
   * @throws {KubeUnavailableError} when the API cannot be reached in time
   */
  async reviewToken(
    token: string,
    audiences: readonly string[],
    options: KubeCallOptions = {},
  ): Promise<TokenReviewStatus> {
    if (token === "") return { authenticated: false, error: "the token is empty" };
    const review: TokenReview = {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      spec: { token, ...(audiences.length > 0 ? { audiences: [...audiences] } : {}) },
    };
    const body = await this.#call("POST", TOKEN_REVIEW_PATH, "create tokenreview", {
      ...options,
      body: JSON.stringify(review),
      notFoundIsNull: false,
    });
    const status = (body as TokenReview | null)?.status;
    return isRecord(status) ? status as TokenReviewStatus : {};
  }

  /**
   * Cheap readiness probe: `GET /version`, which every authenticated user may read (ClusterRole
   * `system:public-info-viewer`), so the webhook needs no extra RBAC verb.
   *
   * @returns the server's version info
   * @throws {KubeApiError} e.g. 401 when the credentials are rejected
   * @throws {KubeUnavailableError} when the API cannot be reached in time
   */
  async probe(options: KubeCallOptions = {}): Promise<Info> {
    const body = await this.#call("GET", "/version", "get version", {
      ...options,
      notFoundIsNull: false,
    });
    return body as unknown as Info;
  }

  /** Closes pooled keep-alive connections. The client still works afterwards (new connections). */
  close(): void {
    this.#agent.destroy();
  }

  async #getObject<T>(
    kind: Kind,
    namespace: string,
    name: string,
    options: KubeCallOptions = {},
  ): Promise<T | null> {
    const what = `get ${SINGULAR[kind]} "${namespace}/${name}"`;
    for (const [label, value] of [["namespace", namespace], ["name", name]] as const) {
      // "." and ".." would be resolved away and turn the GET into a LIST.
      if (value === "" || value === "." || value === "..") {
        throw new TypeError(`Cannot ${what}: the ${label} is empty or a dot segment`);
      }
    }
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/${kind}/${
      encodeURIComponent(name)
    }`;
    const body = await this.#call("GET", path, what, { ...options, notFoundIsNull: true });
    return body as T | null;
  }

  /** {@link #send}s one call and reports it to the `observe` option. */
  async #call(
    method: "GET" | "POST",
    path: string,
    what: string,
    options: KubeCallOptions & { body?: string; notFoundIsNull: boolean },
  ): Promise<Record<string, unknown> | null> {
    const observe = this.#observe;
    if (!observe) return await this.#callOnce(method, path, what, options);
    const started = performance.now();
    const api = apiOf(method, path);
    try {
      const body = await this.#callOnce(method, path, what, options);
      observe(api, body === null ? "not_found" : "ok", (performance.now() - started) / 1000);
      return body;
    } catch (error) {
      observe(api, resultOf(error), (performance.now() - started) / 1000);
      throw error;
    }
  }

  async #callOnce(
    method: "GET" | "POST",
    path: string,
    what: string,
    options: KubeCallOptions & { body?: string; notFoundIsNull: boolean },
  ): Promise<Record<string, unknown> | null> {
    const started = Date.now();
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const signal = options.signal;
    const onAbort = () => controller.abort(signal?.reason ?? new Error("aborted"));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });

    try {
      let response: RawResponse | undefined;
      let retriedConnection = false;
      let retriedToken = false;
      let rejectedToken: string | undefined;
      while (response === undefined) {
        if (controller.signal.aborted) {
          throw this.#abortError(what, timedOut, timeoutMs, controller.signal.reason);
        }
        const auth = await this.#authorization(rejectedToken);
        try {
          const attempt = await this.#send(method, path, auth.header, options.body, {
            signal: controller.signal,
          });
          if (attempt.status === 401 && auth.cached && !retriedToken) {
            // The file may hold a rotated token that the cache has not picked up yet, or the
            // exec plugin's token was revoked before it expired: get a new one and retry once.
            retriedToken = true;
            rejectedToken = auth.token;
            continue;
          }
          response = attempt;
        } catch (error) {
          if (controller.signal.aborted) {
            throw this.#abortError(what, timedOut, timeoutMs, controller.signal.reason);
          }
          if (error instanceof ResponseTooLargeError) {
            throw new KubeApiError(`Cannot ${what}: ${error.message}`, 0, {
              reason: "ResponseTooLarge",
            });
          }
          if (error instanceof TransportError && error.reused && !retriedConnection) {
            const code = (error.cause as { code?: unknown } | undefined)?.code;
            if (code === "ECONNRESET" || code === "EPIPE") {
              retriedConnection = true;
              continue;
            }
          }
          throw new KubeUnavailableError(
            `Cannot ${what}: Kubernetes API unreachable: ${describeTransport(error)}`,
            { cause: error instanceof TransportError ? error.cause : error },
          );
        }
      }
      this.#logger?.debug("Kubernetes API call", {
        method,
        path,
        status: response.status,
        duration_ms: Date.now() - started,
      });
      return this.#interpret(response, what, options.notFoundIsNull);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  #abortError(what: string, timedOut: boolean, timeoutMs: number, reason: unknown): Error {
    return timedOut
      ? new KubeUnavailableError(`Cannot ${what}: Kubernetes API timed out after ${timeoutMs} ms`)
      : new KubeUnavailableError(`Cannot ${what}: the call was aborted`, { cause: reason });
  }

  /**
   * The Authorization header. `rejected`: the token of an attempt answered 401, which the token
   * file or the exec plugin must replace.
   */
  async #authorization(
    rejected: string | undefined,
  ): Promise<{ header: string | undefined; token?: string; cached: boolean }> {
    if (this.#exec) {
      const { token, fresh } = await this.#exec.get(rejected);
      return { header: `Bearer ${token}`, token, cached: !fresh };
    }
    const force = rejected !== undefined;
    if (this.#tokenFile) {
      const { token, fresh } = this.#tokenFile.get(force);
      return { header: `Bearer ${token}`, token, cached: !fresh };
    }
    const token = this.#config.token;
    return { header: token ? `Bearer ${token}` : undefined, cached: false };
  }

  #interpret(
    response: RawResponse,
    what: string,
    notFoundIsNull: boolean,
  ): Record<string, unknown> | null {
    const { status } = response;
    if (status >= 200 && status < 300) {
      const parsed = parseJson(response.body);
      if (!isRecord(parsed)) {
        throw new KubeApiError(`Cannot ${what}: the response is not a JSON object`, status, {
          reason: "InvalidResponse",
        });
      }
      return parsed;
    }
    if (status === 404 && notFoundIsNull) return null;
    const kubeStatus = readStatus(response.body);
    const reason = kubeStatus.reason ?? "";
    const detail = kubeStatus.message ??
      `HTTP ${status}${reason ? ` ${reason}` : ""}`;
    if (status === 429 || status === 502 || status === 503 || status === 504) {
      throw new KubeUnavailableError(`Cannot ${what}: Kubernetes API unavailable: ${detail}`);
    }
    throw new KubeApiError(`Cannot ${what}: ${detail}`, status, { reason });
  }

  #send(
    method: string,
    path: string,
    authorization: string | undefined,
    body: string | undefined,
    options: { signal: AbortSignal },
  ): Promise<RawResponse> {
    const config = this.#config;
    const headers: Record<string, string> = {
      "Accept": "application/json",
      "User-Agent": USER_AGENT,
    };
    if (authorization !== undefined) headers["Authorization"] = authorization;
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(body));
    }
    const request: https.RequestOptions = {
      method,
      hostname: this.#base.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: this.#base.port || (this.#secure ? 443 : 80),
      path: this.#basePath + path,
      headers,
      agent: this.#agent,
    };
    if (this.#secure) {
      if (config.caCert !== undefined) request.ca = config.caCert;
      if (config.clientCert !== undefined && config.clientKey !== undefined) {
        request.cert = config.clientCert;
        request.key = config.clientKey;
      }
      if (config.tlsServerName !== undefined) request.servername = config.tlsServerName;
      request.rejectUnauthorized = !config.insecureSkipTlsVerify;
    }
    const limit = this.#maxResponseBytes;

    return new Promise<RawResponse>((resolve, reject) => {
      let settled = false;
      const send = this.#secure ? https.request : http.request;
      const req = send(request, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            finish(new ResponseTooLargeError(limit));
            // No error argument: Node would re-emit it on the response as an uncaught error.
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on(
          "end",
          () => finish(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks) }),
        );
        res.on("error", (error) => finish(error));
        res.on("close", () => finish(new Error("the connection closed before the response ended")));
      });
      const onAbort = () => {
        finish(new Error("aborted"));
        req.destroy();
      };
      const finish = (error: unknown, value?: RawResponse) => {
        if (settled) return;
        settled = true;
        options.signal.removeEventListener("abort", onAbort);
        if (value) resolve(value);
        else if (error instanceof ResponseTooLargeError) reject(error);
        else {reject(
            new TransportError(error, Boolean((req as { reusedSocket?: boolean }).reusedSocket)),
          );}
      };
      options.signal.addEventListener("abort", onAbort, { once: true });
      req.on("error", (error) => finish(error));
      req.on("close", () => finish(new Error("the connection closed before a response")));
      req.end(body);
    });
  }
}

/**
 * Creates the HTTPS Kubernetes client for `config`.
 *
 * @throws {TypeError} when `config.server` is not an http(s) URL
 */
export function createKubeClient(
  config: KubeConfig,
  options: HttpKubeClientOptions = {},
): HttpKubeClient {
  return new HttpKubeClient(config, options);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}

/** `reason` and a cleaned `message` from a Kubernetes `Status` body; nothing from other bodies. */
function readStatus(body: Buffer): { reason?: string; message?: string } {
  const parsed = parseJson(body);
  if (!isRecord(parsed) || parsed.kind !== "Status") return {};
  const result: { reason?: string; message?: string } = {};
  if (typeof parsed.reason === "string" && parsed.reason !== "") result.reason = parsed.reason;
  if (typeof parsed.message === "string" && parsed.message !== "") {
    // deno-lint-ignore no-control-regex
    const clean = parsed.message.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
    result.message = clean.length > 300 ? `${clean.slice(0, 300)}…` : clean;
  }
  return result;
}

/** A short description of a transport failure: the error code and message, never a body. */
function describeTransport(error: unknown): string {
  const cause = error instanceof TransportError ? error.cause : error;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === "string" && !cause.message.includes(code)
      ? `${code}: ${cause.message}`
      : cause.message;
  }
  return String(cause);
}
