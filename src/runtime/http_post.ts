/**
 * One HTTP(S) request with a text answer, for piggy-env's calls: the proxy call (`postText`) and
 * the light AWS client of standalone mode (`requestText`: SigV4 calls, container credentials,
 * ignoring `AWS_CA_BUNDLE` as the AWS SDK for JavaScript does). On Deno it is one HTTP/1.1
 * exchange (src/runtime/http1.ts) over `Deno.connect` and `Deno.startTls` (with `caCerts` when a CA
 * is given; the server name is verified against the URL's host): no `fetch`, whose lazily loaded
 * implementation (fetch, streams, HTTP client) was a third of the launcher's own start-up CPU, and
 * none of the `node:http`/`node:https` compatibility layer. The connection is direct unless the
 * request names a proxy ({@link PostRequest.proxy}: only the light AWS client does, from
 * `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`): then it goes through an HTTP `CONNECT` tunnel, or in
 * absolute form for `http:` (src/runtime/http_proxy.ts, loaded only then). On Node, and on Deno
 * when TLS verification is off (`Deno.startTls` has no such switch), it is `node:https`
 * (`node:http` for `http://`), loaded only then.
 *
 * @module
 */

import { raceAbort } from "../abort.ts";
import { denoGlobal } from "./deno.ts";
import { osErrorCode } from "./os_error.ts";
import type { ProxyRoute } from "./http_proxy.ts";
import {
  BodyReadError,
  BodyTooLargeError,
  encodeRequest,
  exchange,
  HttpFormatError,
  NoAnswerError,
} from "./http1.ts";

export { osErrorCode };

/** One request. */
export interface PostRequest {
  /** `GET` sends no body (`body` must be empty). @default "POST" */
  method?: "GET" | "POST";
  /** Absolute `http:` or `https:` URL. */
  url: URL;
  /** Request headers (`Content-Length` is set from the body). */
  headers: Record<string, string>;
  /** Request body (UTF-8). */
  body: string;
  /**
   * PEM CA text to trust; empty uses the default roots. `node:https` trusts only this CA; Deno's
   * `startTls` trusts it in addition to Deno's default roots, which piggy-env empties first
   * (`src/runtime/tls_trust.ts`).
   */
  ca: string;
  /** Do not verify the server certificate. */
  skipVerifyTls: boolean;
  /** Largest answer body read; a larger one rejects with {@link AnswerTooLargeError}. */
  maxBytes: number;
  /** Aborts the request (connection and body). */
  signal: AbortSignal;
  /**
   * The proxy to go through (an `http://` URL and the variable it came from); direct without.
   * Its failures are `ProxyError`s (src/runtime/http_proxy.ts), told apart by name.
   */
  proxy?: ProxyRoute | undefined;
}

/** The status, header fields and body of an answer. */
export interface PostAnswer {
  status: number;
  /** Lower-case names; repeated fields joined with `, `. */
  headers: Map<string, string>;
  text: string;
}

/** The answer body is larger than {@link PostRequest.maxBytes}. */
export class AnswerTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`larger than ${maxBytes} bytes`);
    this.name = "AnswerTooLargeError";
  }
}

/** The answer's headers came, its body could not be read to the end. */
export class AnswerBodyError extends Error {
  constructor(cause: unknown) {
    super("connection closed before the end of the answer", { cause });
    this.name = "AnswerBodyError";
  }
}

/** The request failed before an answer (connection, TLS): `code` names the cause when known. */
export class PostNetworkError extends Error {
  constructor(message: string, readonly code: string | undefined, cause: unknown) {
    super(message, { cause });
    this.name = "PostNetworkError";
  }
}

/** A connection of `Deno.connect`/`Deno.startTls` (declared: `src/runtime/` also compiles for Node). */
interface DenoConn {
  read(buffer: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<number>;
  close(): void;
}

/** The Deno network API used here. */
interface DenoNet {
  connect(options: { hostname: string; port: number }): Promise<
    DenoConn & { setNoDelay(noDelay?: boolean): void }
  >;
  startTls(
    conn: DenoConn,
    options: { hostname: string; caCerts?: string[] },
  ): Promise<DenoConn & { handshake(): Promise<unknown> }>;
}

/** Errors of the socket layer as {@link PostNetworkError} (Deno's errors carry `code`). */
function networkError(error: unknown): PostNetworkError {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  return new PostNetworkError(
    message,
    typeof code === "string" && /^E[A-Z]+$/.test(code) ? code : osErrorCode(message),
    error,
  );
}

/**
 * Settles with `promise`, or rejects with the signal's reason as soon as it aborts (a connection
 * that opens after that is closed).
 */
function abortable<T extends DenoConn>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  const raced = raceAbort(promise, signal);
  raced.catch(() => {
    if (signal.aborted) promise.then((late) => late.close(), () => {});
  });
  return raced;
}

/** `[::1]` → `::1`: `URL.hostname` keeps the brackets of an IPv6 address. */
function bareHost(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

async function postOverDenoNet(
  request: PostRequest,
  deno: DenoNet,
  proxying?: typeof import("./http_proxy.ts"),
): Promise<PostAnswer> {
  const { url, signal, proxy } = request;
  const hostname = bareHost(url);
  const secure = url.protocol === "https:";
  const port = Number(url.port || (secure ? 443 : 80));
  // An `http:` URL through a proxy is sent to it in absolute form, with the proxy's credentials.
  const forward = proxy !== undefined && proxying !== undefined && !secure;
  const authorization = forward ? proxying.proxyAuthorization(proxy) : undefined;
  // Before connecting: a header value with CR or LF is refused, never sent.
  const bytes = encodeRequest({
    method: request.method ?? "POST",
    target: forward
      ? `http://${url.host}${url.pathname}${url.search}`
      : `${url.pathname}${url.search}`,
    host: url.host,
    headers: authorization === undefined
      ? request.headers
      : { ...request.headers, "Proxy-Authorization": authorization },
    body: new TextEncoder().encode(request.body),
  });
  let conn: DenoConn | undefined;
  const close = () => {
    try {
      conn?.close();
    } catch {
      // already closed, or handed to startTls
    }
  };
  // Closing the connection ends a pending read or write: the signal's reason is then thrown.
  signal.addEventListener("abort", close, { once: true });
  try {
    try {
      const address = proxy && proxying ? proxying.proxyAddress(proxy) : { hostname, port };
      let tcp;
      try {
        tcp = await abortable(deno.connect(address), signal);
      } catch (error) {
        if (signal.aborted || !proxy || !proxying) throw error;
        const failure = networkError(error);
        throw proxying.proxyUnreachable(proxy, failure.message, failure.code);
      }
      conn = tcp;
      // The request would otherwise wait for the ACK of the handshake's last flight (Nagle).
      tcp.setNoDelay(true);
      if (proxy && proxying && secure) {
        try {
          await proxying.openTunnel(tcp, proxy, url);
        } catch (error) {
          // A reset or a failed write while the proxy answers is the proxy's: named as such.
          if (signal.aborted || (error as { name?: unknown } | null)?.name === "ProxyError") {
            throw error;
          }
          throw proxying.proxyClosed(proxy, url);
        }
      }
      if (secure) {
        const tls = await abortable(
          deno.startTls(tcp, { hostname, ...(request.ca ? { caCerts: [request.ca] } : {}) }),
          signal,
        );
        conn = tls;
        await tls.handshake();
      }
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw (error as { name?: unknown } | null)?.name === "ProxyError"
        ? error
        : networkError(error);
    }
    let answer;
    try {
      answer = await exchange(conn, bytes, request.maxBytes);
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (error instanceof BodyTooLargeError) throw new AnswerTooLargeError(request.maxBytes);
      if (error instanceof BodyReadError) throw new AnswerBodyError(error);
      if (error instanceof NoAnswerError) {
        throw new PostNetworkError(error.message, "ECONNRESET", error);
      }
      if (error instanceof HttpFormatError) {
        throw new PostNetworkError(`Invalid HTTP answer: ${error.message}`, undefined, error);
      }
      throw networkError(error);
    }
    if (forward && proxy && proxying && answer.status === 407) {
      throw proxying.proxyRefusal(proxy, url, 407);
    }
    return {
      status: answer.status,
      headers: answer.fields,
      text: new TextDecoder().decode(answer.body),
    };
  } finally {
    signal.removeEventListener("abort", close);
    close();
  }
}

/**
 * Sends `request` (a POST of `request.body`, or a GET) and reads the answer.
 *
 * @throws {TypeError} a header cannot be sent (nothing was sent)
 * @throws {PostNetworkError} no answer (refused, reset, TLS failure, not HTTP/1.x)
 * @throws {AnswerTooLargeError} the body is over the limit
 * @throws {AnswerBodyError} the body stopped before its end
 * @throws `ProxyError` (src/runtime/http_proxy.ts) when the request's proxy cannot be reached or
 *   refuses
 * @throws the signal's reason when it aborts the request
 */
export async function requestText(request: PostRequest): Promise<PostAnswer> {
  const deno = denoGlobal() as unknown as Partial<DenoNet> | undefined;
  if (deno?.connect && deno.startTls && !request.skipVerifyTls) {
    const proxying = request.proxy ? await import("./http_proxy.ts") : undefined;
    return await postOverDenoNet(request, deno as DenoNet, proxying);
  }
  const { postWithNodeHttp } = await import("./http_post_node.ts");
  return await postWithNodeHttp(request);
}

/** {@link requestText} with `POST`: piggy-env's proxy call. */
export function postText(request: PostRequest): Promise<PostAnswer> {
  return requestText({ ...request, method: "POST" });
}
