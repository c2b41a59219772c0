/**
 * Serves a web `(Request) => Promise<Response>` handler with `node:http` / `node:https`: converts
 * each `IncomingMessage` into a `Request` (streamed body, aborted when the client goes away) and
 * writes the `Response` back to the `ServerResponse` (status, headers, streamed body).
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

/** A web request handler, as built by `createApp`. */
export type WebHandler = (request: Request) => Promise<Response>;

/** Options of {@link toWebRequest}. */
export interface ToWebRequestOptions {
  /** URL scheme of the server. @default "http" */
  scheme?: "http" | "https";
  /** Aborts the request (and its body stream), e.g. when the client disconnects. */
  signal?: AbortSignal;
}

/** Options of {@link createNodeListener}. */
export interface NodeListenerOptions {
  /** URL scheme of the server. @default "http" */
  scheme?: "http" | "https";
  /** Called when the handler throws or a response cannot be written. @default ignore */
  onError?: (error: unknown) => void;
  /**
   * True while the server drains: responses then carry `Connection: close` so keep-alive sockets
   * end after their in-flight request. @default never
   */
  closing?: () => boolean;
}

const BODYLESS_METHODS = new Set(["GET", "HEAD"]);

function requestUrl(request: IncomingMessage, scheme: string): URL {
  const target = request.url ?? "/";
  const host = request.headers.host;
  if (host) {
    try {
      return new URL(target, `${scheme}://${host}`);
    } catch {
      // A malformed Host header must not fail the request: fall back to localhost.
    }
  }
  return new URL(target, `${scheme}://localhost`);
}

/**
 * Converts a Node request into a web `Request`. The body is streamed, not buffered.
 *
 * @param request the incoming Node request
 * @param options scheme and abort signal
 * @throws {TypeError} when the request target cannot form a URL
 */
export function toWebRequest(request: IncomingMessage, options: ToWebRequestOptions = {}): Request {
  const url = requestUrl(request, options.scheme ?? "http");
  const headers = new Headers();
  const raw = request.rawHeaders;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = raw[index];
    const value = raw[index + 1];
    if (name === undefined || value === undefined) continue;
    try {
      headers.append(name, value);
    } catch {
      // Node already rejects invalid header names; skip anything the web Headers still refuses.
    }
  }
  const method = request.method ?? "GET";
  const init: RequestInit & { duplex?: "half" } = { method, headers };
  if (options.signal) init.signal = options.signal;
  if (!BODYLESS_METHODS.has(method.toUpperCase())) {
    init.body = Readable.toWeb(request) as unknown as ReadableStream<Uint8Array>;
    // Required by fetch implementations for a streamed request body.
    init.duplex = "half";
  }
  return new Request(url, init);
}

/**
 * Writes a web `Response` to a Node response: status, headers (repeated `Set-Cookie` kept) and
 * the body, streamed with back-pressure. Resolves when the response is finished or the client is
 * gone (the body stream is then cancelled).
 *
 * @param response what the handler answered
 * @param target the Node response
 * @param options `close: true` adds `Connection: close`
 */
export async function sendWebResponse(
  response: Response,
  target: ServerResponse,
  options: { close?: boolean } = {},
): Promise<void> {
  target.statusCode = response.status;
  if (response.statusText) target.statusMessage = response.statusText;
  const cookies = response.headers.getSetCookie();
  for (const [name, value] of response.headers) {
    if (name === "set-cookie") continue;
    target.setHeader(name, value);
  }
  if (cookies.length > 0) target.setHeader("set-cookie", cookies);
  if (options.close) target.setHeader("connection", "close");
  if (!response.body) {
    target.end();
    return;
  }
  const body = Readable.fromWeb(
    response.body as unknown as Parameters<typeof Readable.fromWeb>[0],
  );
  await pipeline(body, target);
}

function isPrematureClose(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "ERR_STREAM_PREMATURE_CLOSE";
}

function plainResponse(target: ServerResponse, status: number, text: string): void {
  if (target.headersSent) {
    target.destroy();
    return;
  }
  target.statusCode = status;
  target.setHeader("content-type", "text/plain; charset=utf-8");
  target.setHeader("cache-control", "no-store");
  target.end(text);
}

/**
 * Builds a `node:http` / `node:https` request listener that serves `handler`.
 *
 * @param handler the web handler (e.g. `createApp(deps).handler`)
 * @param options scheme, error callback and drain state
 */
export function createNodeListener(
  handler: WebHandler,
  options: NodeListenerOptions = {},
): (request: IncomingMessage, response: ServerResponse) => void {
  const onError = options.onError ?? (() => {});
  const scheme = options.scheme ?? "http";
  return (request, response) => {
    const controller = new AbortController();
    // The client went away before the answer was complete: abort the handler's work.
    response.once("close", () => {
      if (!response.writableFinished) controller.abort();
    });
    void (async () => {
      let webRequest: Request;
      try {
        webRequest = toWebRequest(request, { scheme, signal: controller.signal });
      } catch (error) {
        onError(error);
        plainResponse(response, 400, "bad request");
        return;
      }
      let webResponse: Response;
      try {
        webResponse = await handler(webRequest);
      } catch (error) {
        onError(error);
        plainResponse(response, 500, "internal error");
        return;
      }
      // A body the handler did not read would stall the keep-alive socket: close it instead.
      const close = (options.closing?.() ?? false) || !request.complete;
      try {
        await sendWebResponse(webResponse, response, { close });
      } catch (error) {
        if (!isPrematureClose(error)) onError(error);
        response.destroy();
      }
    })();
  };
}
