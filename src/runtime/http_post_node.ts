/**
 * `requestText` over `node:https` (`node:http` for `http://`): the Node path, and the Deno path
 * when TLS verification is off. Loaded by `src/runtime/http_post.ts` only when needed. Through a
 * proxy (`request.proxy`), an `https:` URL goes through a `CONNECT` tunnel opened with
 * `node:http`, then `node:tls` to the URL's host inside it; an `http:` URL is sent to the proxy in
 * absolute form (src/runtime/http_proxy.ts has the rules and the errors).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { ClientRequest, IncomingMessage } from "node:http";
import * as http from "node:http";
import * as https from "node:https";
import type { Socket } from "node:net";
import * as tls from "node:tls";
import {
  AnswerBodyError,
  AnswerTooLargeError,
  type PostAnswer,
  PostNetworkError,
  type PostRequest,
} from "./http_post.ts";
import { BodyBuffer } from "./http1.ts";
import {
  connectStatus,
  DATA_BEFORE_HANDSHAKE,
  MAX_CONNECT_HEAD_BYTES,
  proxyAddress,
  proxyAuthorization,
  proxyBadAnswer,
  proxyClosed,
  ProxyError,
  proxyRefusal,
  type ProxyRoute,
  proxyUnreachable,
  tunnelAuthority,
} from "./http_proxy.ts";

/** The answer's header fields: lower-case names, repeated ones joined with `, `. */
function headersOf(response: IncomingMessage): Map<string, string> {
  const headers = new Map<string, string>();
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  return headers;
}

function readBody(response: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // One growing buffer, not a list of the pieces: Node's parser gives one piece per chunk of a
    // chunked body, and a list of 1-byte pieces took ~200 bytes of heap per byte.
    const body = new BodyBuffer(maxBytes);
    response.on("data", (chunk: Uint8Array) => {
      try {
        body.append(chunk);
      } catch {
        // Reject first: destroying the stream also fires "aborted"/"error", which then do nothing.
        reject(new AnswerTooLargeError(maxBytes));
        response.destroy();
      }
    });
    response.on("end", () => {
      const bytes = body.bytes();
      resolve(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
    });
    response.on("error", (error) => reject(new AnswerBodyError(error)));
    response.on("aborted", () => reject(new AnswerBodyError(undefined)));
  });
}

/** True for an IP address (a TLS server name must not be one). */
function isIpAddress(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(":");
}

/** Sends `request` over `node:https` or `node:http`, through its proxy if it names one. */
export function postWithNodeHttp(request: PostRequest): Promise<PostAnswer> {
  const { url, signal, proxy } = request;
  const method = request.method ?? "POST";
  const headers: Record<string, string> = { ...request.headers };
  if (method !== "GET") headers["Content-Length"] = String(Buffer.byteLength(request.body));
  const secure = url.protocol === "https:";
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    let settled = false;
    /** What an abort destroys: the tunnel's request, then the request itself. */
    let current: ClientRequest | undefined;
    const finish = (error: unknown, answer?: PostAnswer) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      if (answer) resolve(answer);
      else reject(error);
    };
    const onAbort = () => {
      finish(signal.reason);
      current?.destroy(signal.reason instanceof Error ? signal.reason : undefined);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const onResponse = (response: IncomingMessage) => {
      const status = response.statusCode ?? 0;
      if (proxy && !secure && status === 407) {
        response.destroy();
        finish(proxyRefusal(proxy, url, 407));
        return;
      }
      readBody(response, request.maxBytes).then(
        (text) => finish(undefined, { status, headers: headersOf(response), text }),
        (error) => finish(error),
      );
    };
    const send = (req: ClientRequest) => {
      current = req;
      req.on("error", (error: Error & { code?: string }) => {
        finish(
          error instanceof ProxyError
            ? error
            : new PostNetworkError(error.message, error.code, error),
        );
      });
      if (method === "GET") req.end();
      else req.end(request.body);
    };
    try {
      if (!proxy) {
        const options: https.RequestOptions = { method, headers, agent: false };
        send(
          secure
            ? https.request(url, {
              ...options,
              rejectUnauthorized: !request.skipVerifyTls,
              ...(request.ca ? { ca: request.ca } : {}),
            }, onResponse)
            : http.request(url, options, onResponse),
        );
      } else if (!secure) {
        // Absolute form to the proxy, as Go's transport sends an http: request through one.
        const authorization = proxyAuthorization(proxy);
        const { hostname, port } = proxyAddress(proxy);
        send(http.request({
          host: hostname,
          port,
          method,
          path: `http://${url.host}${url.pathname}${url.search}`,
          headers: {
            Host: url.host,
            ...headers,
            ...(authorization === undefined ? {} : { "Proxy-Authorization": authorization }),
          },
          agent: false,
        }, onResponse));
      } else {
        current = openNodeTunnel(proxy, url, (error, socket) => {
          if (error || !socket) {
            finish(error);
            return;
          }
          if (settled) {
            socket.destroy();
            return;
          }
          const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
          const secureSocket = tls.connect({
            socket,
            ...(isIpAddress(host) ? {} : { servername: host }),
            rejectUnauthorized: !request.skipVerifyTls,
            ...(request.ca ? { ca: request.ca } : {}),
          });
          // No agent: the request runs on this socket (the TLS session to the URL's host).
          send(https.request(url, {
            method,
            headers,
            agent: undefined,
            createConnection: () => secureSocket,
          }, onResponse));
        });
      }
    } catch (error) {
      finish(error);
    }
  });
}

/**
 * Opens a `CONNECT` tunnel to `target` through `proxy`; `done` gets the socket or a
 * {@link ProxyError}.
 *
 * @returns the `CONNECT` request (destroy it to abort)
 */
function openNodeTunnel(
  proxy: ProxyRoute,
  target: URL,
  done: (error: unknown, socket?: Socket) => void,
): ClientRequest {
  const authorization = proxyAuthorization(proxy);
  const { hostname, port } = proxyAddress(proxy);
  const authority = tunnelAuthority(target);
  const request = http.request({
    host: hostname,
    port,
    method: "CONNECT",
    path: authority,
    headers: {
      Host: authority,
      ...(authorization === undefined ? {} : { "Proxy-Authorization": authorization }),
    },
    agent: false,
    maxHeaderSize: MAX_CONNECT_HEAD_BYTES,
  });
  let answered = false;
  request.on("connect", (response: IncomingMessage, socket: Socket, head: Buffer) => {
    answered = true;
    const status = response.statusCode ?? 0;
    let error: ProxyError | undefined;
    try {
      connectStatus(proxy, target, `HTTP/${response.httpVersion} ${status}`);
      if (status < 200 || status > 299) error = proxyRefusal(proxy, target, status);
      else if (head.byteLength > 0) error = proxyBadAnswer(proxy, target, DATA_BEFORE_HANDSHAKE);
    } catch (thrown) {
      error = thrown as ProxyError;
    }
    if (error) {
      socket.destroy();
      done(error);
    } else {
      done(undefined, socket);
    }
  });
  request.on("error", (error: Error & { code?: unknown }) => {
    if (answered) return;
    // An abort destroys the request with the signal's reason, whose `code` is a number.
    const code = typeof error.code === "string" ? error.code : undefined;
    if (code?.startsWith("HPE_")) {
      done(proxyBadAnswer(proxy, target, "the answer is not HTTP/1.x as read here"));
    } else if (code === "ECONNRESET") {
      done(proxyClosed(proxy, target));
    } else {
      done(proxyUnreachable(proxy, error.message, code));
    }
  });
  request.end();
  return request;
}
