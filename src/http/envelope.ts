/**
 * The HTTP envelope `/mutate` and `/secret` share: only `POST`, only `application/json`, a body
 * within a size limit and a deadline, JSON decoding, and one `{error, message}` error body. The
 * endpoints' own logic works on decoded values and domain errors; this is the only HTTP around it.
 *
 * @module
 */

import {
  AdmissionDecodeError,
  MethodNotAllowedError,
  toErrorBody,
  toStatus,
  UnsupportedMediaTypeError,
} from "../errors.ts";
import { type ReadBodyOptions, readBodyText } from "./read_body.ts";

/** Headers of every JSON answer: no caching, no content sniffing. */
const JSON_HEADERS = {
  "content-type": "application/json",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
};

/** A JSON answer with {@link JSON_HEADERS}. */
export function jsonResponse(
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): Response {
  return jsonTextResponse(status, JSON.stringify(body), headers);
}

/** {@link jsonResponse} of a body already serialised. */
export function jsonTextResponse(
  status: number,
  text: string,
  headers: Readonly<Record<string, string>> = {},
): Response {
  return new Response(text, { status, headers: { ...JSON_HEADERS, ...headers } });
}

/**
 * Checks the method and the content type, before the body is read. Parameters such as
 * `; charset=utf-8` are accepted.
 *
 * @throws {MethodNotAllowedError} a method other than `POST`
 * @throws {UnsupportedMediaTypeError} a content type other than `application/json`
 */
export function acceptJsonPost(request: Request): void {
  if (request.method !== "POST") {
    throw new MethodNotAllowedError(
      `Cannot accept method "${request.method}": only POST is allowed`,
    );
  }
  const header = request.headers.get("content-type");
  const mediaType = (header ?? "").split(";", 1)[0]?.trim().toLowerCase() ?? "";
  if (mediaType !== "application/json") {
    throw new UnsupportedMediaTypeError(
      `Cannot accept content type "${header ?? ""}": only application/json is supported`,
    );
  }
}

/**
 * Parses JSON text. The parser's message is dropped: it quotes the text, which may hold a secret.
 *
 * @param text the body
 * @param subject what the body should be, for the message (e.g. `AdmissionReview`)
 * @throws {AdmissionDecodeError} the text is not JSON
 */
export function decodeJson(text: string, subject: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new AdmissionDecodeError(`Cannot decode ${subject}: body is not valid JSON`, {
      cause: error,
    });
  }
}

/**
 * Reads and decodes a JSON body after {@link acceptJsonPost}.
 *
 * @param subject what the body should be, for messages
 * @param options size limit and deadline
 * @throws {PayloadTooLargeError} the body is larger than the limit
 * @throws {RequestTimeoutError} the body did not arrive in time
 * @throws {AdmissionDecodeError} the body is not UTF-8 JSON
 */
export async function readJsonBody(
  request: Request,
  subject: string,
  options: ReadBodyOptions,
): Promise<unknown> {
  return decodeJson(await readBodyText(request, options), subject);
}

/**
 * The `{error, message}` answer for a failed request: the status `toStatus` gives, and an `Allow`
 * header on 405.
 *
 * @param error anything thrown
 * @param redact applied to the message before it leaves (e.g. to hide a token)
 */
export function errorResponse(
  error: unknown,
  redact: (message: string) => string = (message) => message,
): Response {
  const status = toStatus(error);
  const body = toErrorBody(error);
  return jsonResponse(
    status,
    { ...body, message: redact(body.message) },
    status === 405 ? { allow: "POST" } : {},
  );
}
