/**
 * Requests through an HTTP proxy, for the light AWS client of piggy-env's standalone mode (the
 * proxy call to the webhook never uses one): an `https:` URL goes through an HTTP `CONNECT
 * host:port` tunnel, inside which TLS runs to the URL's host (server name and verification are
 * the AWS host's, never the proxy's); an `http:` URL is sent to the proxy in absolute form
 * (`GET http://host/path`), as Go's transport does. Basic `Proxy-Authorization` comes from the
 * proxy URL's user and password (percent-decoded); neither is ever part of a message. Only
 * `http://` proxies: TLS to the proxy itself is refused (see `src/secrets/aws_lite/proxy_env.ts`).
 *
 * Loaded by `src/runtime/http_post.ts` (Deno) and `http_post_node.ts` (Node) only when a request
 * names a proxy: a start without one never compiles it.
 *
 * A failure that is the proxy's is a {@link ProxyError} naming the proxy's host and port and the
 * variable it came from: unreachable, reset before an answer, or answering 5xx (its upstream) are
 * retryable; 407 (credentials), 403 (policy), any other refusal and a malformed answer are not.
 *
 * @module
 */

import type { ByteStream } from "./http1.ts";

/** A proxy a request goes through: its URL and the variable it came from (e.g. `HTTPS_PROXY`). */
export interface ProxyRoute {
  url: URL;
  variable: string;
}

/** Largest answer head to a `CONNECT` read. */
export const MAX_CONNECT_HEAD_BYTES = 16 * 1024;

/**
 * The proxy refused, could not be reached, or answered something unusable. The message names the
 * proxy's host and port and its variable, never its user or password.
 */
export class ProxyError extends Error {
  /** True when another attempt may succeed (unreachable, reset, 5xx). */
  readonly retryable: boolean;
  /** Node-style code of a network failure (`ECONNREFUSED`, …). */
  readonly code: string | undefined;
  /** The proxy's answer status, when it answered. */
  readonly proxyStatus: number | undefined;

  constructor(
    message: string,
    options: { retryable: boolean; code?: string | undefined; proxyStatus?: number },
  ) {
    super(message);
    this.name = "ProxyError";
    this.retryable = options.retryable;
    this.code = options.code;
    this.proxyStatus = options.proxyStatus;
  }
}

/** `"host:port"` of the proxy (no user, no password), for messages. */
export function proxyLabel(route: ProxyRoute): string {
  return `"${route.url.hostname}:${proxyPort(route.url)}" (${route.variable})`;
}

function proxyPort(url: URL): number {
  return Number(url.port || (url.protocol === "https:" ? 443 : 80));
}

/** Where to connect for the proxy: host without IPv6 brackets, and port (80 by default). */
export function proxyAddress(route: ProxyRoute): { hostname: string; port: number } {
  return { hostname: route.url.hostname.replace(/^\[(.*)\]$/, "$1"), port: proxyPort(route.url) };
}

/** `host:port` of a target URL, the port always written (the `CONNECT` request target). */
export function tunnelAuthority(url: URL): string {
  return `${url.hostname}:${url.port || (url.protocol === "https:" ? "443" : "80")}`;
}

/**
 * The `Proxy-Authorization` value of the route (Basic, from the URL's user and password,
 * percent-decoded as Go's `url.UserPassword` reads them), or `undefined` without a user.
 *
 * @throws {ProxyError} when the user or password is not valid percent-encoding (not retryable)
 */
export function proxyAuthorization(route: ProxyRoute): string | undefined {
  const { username, password } = route.url;
  if (username === "" && password === "") return undefined;
  let pair: string;
  try {
    pair = `${decodeURIComponent(username)}:${decodeURIComponent(password)}`;
  } catch {
    throw new ProxyError(
      `the user or password of the proxy ${proxyLabel(route)} is not valid percent-encoding`,
      { retryable: false },
    );
  }
  let binary = "";
  for (const byte of new TextEncoder().encode(pair)) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}

/** Reason of the statuses a proxy refuses a tunnel with, and what to check. */
const REFUSALS: Record<number, string> = {
  403: "Forbidden: the proxy does not allow this host",
  407: "Proxy Authentication Required: check the user and password in the proxy URL",
  502: "Bad Gateway: the proxy could not reach the host",
  503: "Service Unavailable",
  504: "Gateway Timeout: the proxy could not reach the host in time",
};

/** The error of a proxy that answered `status` instead of opening the tunnel to `target`. */
export function proxyRefusal(route: ProxyRoute, target: URL, status: number): ProxyError {
  const reason = REFUSALS[status];
  return new ProxyError(
    `the proxy ${proxyLabel(route)} refused the tunnel to "${tunnelAuthority(target)}": ` +
      `${status}${reason ? ` ${reason}` : ""}`,
    { retryable: status >= 500, proxyStatus: status },
  );
}

/** The error of a proxy that could not be reached (`code`: ECONNREFUSED, …; retryable). */
export function proxyUnreachable(
  route: ProxyRoute,
  detail: string,
  code: string | undefined,
): ProxyError {
  return new ProxyError(`cannot connect to the proxy ${proxyLabel(route)}: ${detail}`, {
    retryable: true,
    code: code ?? "ECONNREFUSED",
  });
}

/** What a proxy did that sent bytes after its 2xx answer, before the TLS client's hello. */
export const DATA_BEFORE_HANDSHAKE = "it sent data before the TLS handshake";

/** The error of a proxy whose answer to `CONNECT` is unusable (not retryable). */
export function proxyBadAnswer(route: ProxyRoute, target: URL, detail: string): ProxyError {
  return new ProxyError(
    `the proxy ${proxyLabel(route)} gave no usable answer to the tunnel to ` +
      `"${tunnelAuthority(target)}": ${detail}`,
    { retryable: false },
  );
}

/** The error of a proxy that closed the connection before answering (retryable, as a reset). */
export function proxyClosed(route: ProxyRoute, target: URL): ProxyError {
  return new ProxyError(
    `the proxy ${proxyLabel(route)} closed the connection before answering the tunnel to ` +
      `"${tunnelAuthority(target)}"`,
    { retryable: true, code: "ECONNRESET" },
  );
}

/** The bytes of the `CONNECT` request for `target`. */
export function connectRequest(target: URL, authorization: string | undefined): Uint8Array {
  const authority = tunnelAuthority(target);
  let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
  if (authorization !== undefined) head += `Proxy-Authorization: ${authorization}\r\n`;
  return new TextEncoder().encode(`${head}\r\n`);
}

/**
 * The status of an answer head to `CONNECT` (its first line).
 *
 * @throws {ProxyError} when it is not an HTTP/1.x status line
 */
export function connectStatus(route: ProxyRoute, target: URL, statusLine: string): number {
  const match = /^HTTP\/1\.[01] ([1-9][0-9]{2})(?: |$)/.exec(statusLine);
  if (!match) throw proxyBadAnswer(route, target, "the answer is not HTTP/1.x");
  return Number(match[1]);
}

/**
 * Opens the tunnel on `stream` (a connection to the proxy): sends `CONNECT`, reads the answer's
 * head (at most {@link MAX_CONNECT_HEAD_BYTES}) and checks it is 2xx with nothing after it (the
 * TLS client speaks first: bytes before its hello are not the host's). The caller's signal
 * bounds it by closing the stream.
 *
 * @throws {ProxyError} refused, closed before an answer (retryable), or a malformed answer
 * @throws the stream's own error when writing or reading fails
 */
export async function openTunnel(
  stream: ByteStream,
  route: ProxyRoute,
  target: URL,
): Promise<void> {
  const request = connectRequest(target, proxyAuthorization(route));
  for (let offset = 0; offset < request.byteLength;) {
    offset += await stream.write(request.subarray(offset));
  }
  const buffer = new Uint8Array(MAX_CONNECT_HEAD_BYTES);
  let size = 0;
  let end = -1;
  while (end < 0) {
    if (size === buffer.byteLength) {
      throw proxyBadAnswer(
        route,
        target,
        `the answer head is over ${MAX_CONNECT_HEAD_BYTES} bytes`,
      );
    }
    const count = await stream.read(buffer.subarray(size));
    if (count === null) throw proxyClosed(route, target);
    for (let i = Math.max(0, size - 3); i + 3 < size + count; i++) {
      if (
        buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 13 && buffer[i + 3] === 10
      ) {
        end = i;
        break;
      }
    }
    size += count;
  }
  let firstLine = "";
  for (let i = 0; i < end && buffer[i] !== 13; i++) firstLine += String.fromCharCode(buffer[i]!);
  const status = connectStatus(route, target, firstLine);
  if (status < 200 || status > 299) throw proxyRefusal(route, target, status);
  if (size > end + 4) throw proxyBadAnswer(route, target, DATA_BEFORE_HANDSHAKE);
}
