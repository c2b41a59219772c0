/**
 * One HTTP(S) POST with a text answer, for piggy-env's proxy call. On Deno it is `fetch` with a
 * `Deno.createHttpClient({ caCerts })`: the request runs in Deno's native HTTP client, and the
 * launcher loads none of the `node:http`/`node:https` compatibility layer (a measurable part of its
 * start). On Node, and on Deno when TLS verification is off (Deno's client has no such switch), it
 * is `node:https` (`node:http` for `http://`), loaded only then.
 *
 * @module
 */

import { denoGlobal } from "./deno.ts";

/** One POST. */
export interface PostRequest {
  /** Absolute `http:` or `https:` URL. */
  url: URL;
  /** Request headers (`Content-Length` is set from the body). */
  headers: Record<string, string>;
  /** Request body (UTF-8). */
  body: string;
  /** PEM CA text to trust instead of the default roots; empty uses the default roots. */
  ca: string;
  /** Do not verify the server certificate. */
  skipVerifyTls: boolean;
  /** Largest answer body read; a larger one rejects with {@link AnswerTooLargeError}. */
  maxBytes: number;
  /** Aborts the request (connection and body). */
  signal: AbortSignal;
}

/** The status and body of an answer. */
export interface PostAnswer {
  status: number;
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

/** The Deno HTTP client API used here (declared: `src/runtime/` also compiles for Node). */
interface DenoHttp {
  createHttpClient(options: { caCerts?: string[]; http2?: boolean }): { close(): void };
}

/** Errno names of the OS errors Deno's client reports as `(os error N)` (Linux numbers). */
const OS_ERROR_CODES: Record<string, string> = {
  "101": "ENETUNREACH",
  "104": "ECONNRESET",
  "110": "ETIMEDOUT",
  "111": "ECONNREFUSED",
  "113": "EHOSTUNREACH",
};

/** The errno name in a Deno fetch error message, when there is one. */
export function osErrorCode(message: string): string | undefined {
  const number = /\(os error (\d+)\)/.exec(message)?.[1];
  return number === undefined ? undefined : OS_ERROR_CODES[number];
}

/**
 * Reads `body` as UTF-8 up to `maxBytes`.
 *
 * @throws {AnswerTooLargeError} past the limit (the stream is cancelled)
 * @throws {AnswerBodyError} when the stream fails
 */
async function readLimited(body: ReadableStream<Uint8Array> | null, maxBytes: number) {
  if (!body) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const step = await reader.read().catch((error: unknown) => {
      throw new AnswerBodyError(error);
    });
    if (step.done) break;
    size += step.value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new AnswerTooLargeError(maxBytes);
    }
    chunks.push(step.value);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(all);
}

async function postWithFetch(request: PostRequest, deno: DenoHttp): Promise<PostAnswer> {
  const client = deno.createHttpClient({
    ...(request.ca ? { caCerts: [request.ca] } : {}),
    http2: false,
  });
  try {
    let response: Response;
    try {
      response = await fetch(request.url, {
        method: "POST",
        headers: request.headers,
        body: request.body,
        // The webhook never redirects: a redirect is an answer like any other non-200.
        redirect: "manual",
        signal: request.signal,
        client,
      } as RequestInit);
    } catch (error) {
      if (request.signal.aborted) throw request.signal.reason;
      const message = error instanceof Error ? error.message : String(error);
      throw new PostNetworkError(message, osErrorCode(message), error);
    }
    const text = await readLimited(response.body, request.maxBytes).catch((error) => {
      throw request.signal.aborted ? request.signal.reason : error;
    });
    return { status: response.status, text };
  } finally {
    client.close();
  }
}

/**
 * POSTs `request.body` and reads the answer.
 *
 * @throws {PostNetworkError} no answer (refused, reset, TLS failure)
 * @throws {AnswerTooLargeError} the body is over the limit
 * @throws {AnswerBodyError} the body stopped before its end
 * @throws the signal's reason when it aborts the request
 */
export async function postText(request: PostRequest): Promise<PostAnswer> {
  const deno = denoGlobal() as unknown as Partial<DenoHttp> | undefined;
  if (deno?.createHttpClient && !request.skipVerifyTls) {
    return await postWithFetch(request, deno as DenoHttp);
  }
  const { postWithNodeHttp } = await import("./http_post_node.ts");
  return await postWithNodeHttp(request);
}
