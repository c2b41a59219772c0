/**
 * `requestText` over `node:https` (`node:http` for `http://`): the Node path, and the Deno path
 * when TLS verification is off. Loaded by `src/runtime/http_post.ts` only when needed.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { IncomingMessage } from "node:http";
import * as http from "node:http";
import * as https from "node:https";
import {
  AnswerBodyError,
  AnswerTooLargeError,
  type PostAnswer,
  PostNetworkError,
  type PostRequest,
} from "./http_post.ts";
import { BodyBuffer } from "./http1.ts";

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

/** Sends `request` over `node:https` or `node:http` (see `requestText`). */
export function postWithNodeHttp(request: PostRequest): Promise<PostAnswer> {
  const { url, signal } = request;
  const method = request.method ?? "POST";
  const headers: Record<string, string> = { ...request.headers };
  if (method !== "GET") headers["Content-Length"] = String(Buffer.byteLength(request.body));
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    let settled = false;
    const finish = (error: unknown, answer?: PostAnswer) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      if (answer) resolve(answer);
      else reject(error);
    };
    const onResponse = (response: IncomingMessage) => {
      readBody(response, request.maxBytes).then(
        (text) =>
          finish(undefined, {
            status: response.statusCode ?? 0,
            headers: headersOf(response),
            text,
          }),
        (error) => finish(error),
      );
    };
    const options: https.RequestOptions = { method, headers, agent: false };
    const req = url.protocol === "https:"
      ? https.request(url, {
        ...options,
        rejectUnauthorized: !request.skipVerifyTls,
        ...(request.ca ? { ca: request.ca } : {}),
      }, onResponse)
      : http.request(url, options, onResponse);
    const onAbort = () => {
      finish(signal.reason);
      req.destroy(signal.reason instanceof Error ? signal.reason : undefined);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    req.on("error", (error: Error & { code?: string }) => {
      finish(new PostNetworkError(error.message, error.code, error));
    });
    if (method === "GET") req.end();
    else req.end(request.body);
  });
}
