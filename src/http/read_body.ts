/**
 * Reads a request body as UTF-8 text within a size limit and a deadline, for `/mutate` and
 * `/secret`: a client that declares or streams too much gets 413, one that stalls gets 408 (so it
 * cannot hold memory or block a graceful shutdown), and invalid UTF-8 gets 400.
 *
 * @module
 */

import { schedule } from "../abort.ts";
import { AdmissionDecodeError, PayloadTooLargeError, RequestTimeoutError } from "../errors.ts";

/** Options of {@link readBodyText}. */
export interface ReadBodyOptions {
  /** Largest body accepted, in bytes. */
  limit: number;
  /** Time allowed to receive the whole body, in milliseconds. @default 10000 */
  timeoutMs?: number;
}

/** Strict UTF-8 (a decode without `stream` keeps no state between calls: one serves all). */
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Default time allowed to receive a request body. */
export const BODY_TIMEOUT_MS = 10_000;

/**
 * Reads the whole body.
 *
 * @throws {PayloadTooLargeError} the body is (or is declared) larger than `limit`
 * @throws {RequestTimeoutError} the body did not arrive within `timeoutMs`
 * @throws {AdmissionDecodeError} the body is not UTF-8
 */
export async function readBodyText(request: Request, options: ReadBodyOptions): Promise<string> {
  const { limit } = options;
  const tooLarge = () =>
    new PayloadTooLargeError(`Cannot read the request body: it is larger than ${limit} bytes`);
  const length = request.headers.get("content-length");
  const declared = Number(length ?? "");
  if (Number.isFinite(declared) && declared > limit) {
    await request.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  // A declared length within the limit bounds the body (HTTP framing): it is read in one go,
  // without `request.body`, whose stream Deno makes only when it is asked for (~3.5 µs a request).
  // Without one (chunked), the chunks are counted as they come.
  const stream = length !== null && Number.isFinite(declared) ? undefined : request.body;
  if (stream === null) return "";
  let timedOut: (error: Error) => void = () => {};
  const deadline = new Promise<never>((_, reject) => (timedOut = reject));
  // On the shared timer of its length (`schedule`), not a runtime timer per request.
  const cancel = schedule(options.timeoutMs ?? BODY_TIMEOUT_MS, () => {
    timedOut(
      new RequestTimeoutError("Cannot read the request body: the client sent it too slowly"),
    );
  });
  let bytes: Uint8Array;
  try {
    bytes = stream === undefined
      ? await readDeclared(request, deadline, limit, tooLarge)
      : await readChunks(stream, deadline, limit, tooLarge);
  } finally {
    cancel();
  }
  try {
    return utf8.decode(bytes);
  } catch (error) {
    throw new AdmissionDecodeError("Cannot decode the request body: it is not UTF-8", {
      cause: error,
    });
  }
}

/** The body of a request whose `Content-Length` is within the limit. */
async function readDeclared(
  request: Request,
  deadline: Promise<never>,
  limit: number,
  tooLarge: () => Error,
): Promise<Uint8Array> {
  try {
    const bytes = new Uint8Array(await Promise.race([request.arrayBuffer(), deadline]));
    // Defence in depth: a runtime that did not hold the body to its declared length.
    if (bytes.byteLength > limit) throw tooLarge();
    return bytes;
  } catch (error) {
    if (!request.bodyUsed) await request.body?.cancel().catch(() => {});
    throw error;
  }
}

/** The body read chunk by chunk, refused as soon as it passes the limit. */
async function readChunks(
  body: ReadableStream<Uint8Array>,
  deadline: Promise<never>,
  limit: number,
  tooLarge: () => Error,
): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), deadline]);
      if (done) break;
      size += value.byteLength;
      if (size > limit) throw tooLarge();
      chunks.push(value);
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
