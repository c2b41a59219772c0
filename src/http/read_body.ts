/**
 * Reads a request body as UTF-8 text within a size limit and a deadline, for `/mutate` and
 * `/secret`: a client that declares or streams too much gets 413, one that stalls gets 408 (so it
 * cannot hold memory or block a graceful shutdown), and invalid UTF-8 gets 400.
 *
 * @module
 */

import { AdmissionDecodeError, PayloadTooLargeError, RequestTimeoutError } from "../errors.ts";

/** Options of {@link readBodyText}. */
export interface ReadBodyOptions {
  /** Largest body accepted, in bytes. */
  limit: number;
  /** Time allowed to receive the whole body, in milliseconds. @default 10000 */
  timeoutMs?: number;
}

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
  const declared = Number(request.headers.get("content-length") ?? "");
  if (Number.isFinite(declared) && declared > limit) {
    await request.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!request.body) return "";
  const reader = request.body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new RequestTimeoutError("Cannot read the request body: the client sent it too slowly"),
      );
    }, options.timeoutMs ?? BODY_TIMEOUT_MS);
  });
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
  } finally {
    clearTimeout(timer);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new AdmissionDecodeError("Cannot decode the request body: it is not UTF-8", {
      cause: error,
    });
  }
}
