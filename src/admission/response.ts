/**
 * AdmissionReview response builders. Every review carries `apiVersion`, `kind` and the request
 * UID; `patch` and `patchType` come together or not at all; warnings respect the API server's
 * limits (each at most 120 characters, 4096 in total, no "Warning:" prefix).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Operation } from "fast-json-patch";
import {
  ADMISSION_API_VERSION,
  ADMISSION_KIND,
  type AdmissionResponse,
  type AdmissionReviewResponse,
} from "./types.ts";

/** Longest warning kept whole; longer ones are cut with an ellipsis. */
export const MAX_WARNING_LENGTH = 120;

/** Total characters of all warnings; further warnings are dropped. */
export const MAX_WARNINGS_TOTAL = 4096;

/** Options shared by the builders. */
export interface ResponseOptions {
  /** Remarks shown by kubectl; sanitized by {@link sanitizeWarnings}. */
  warnings?: readonly string[];
}

/**
 * Cleans warnings for the API server: one line each, no "Warning:" prefix, duplicates and empty
 * ones removed, cut to {@link MAX_WARNING_LENGTH}, stopping before {@link MAX_WARNINGS_TOTAL}.
 */
export function sanitizeWarnings(warnings: readonly string[]): string[] {
  const out: string[] = [];
  let total = 0;
  for (const raw of warnings) {
    // Control characters (newlines included) would break the one-line Warning header.
    // deno-lint-ignore no-control-regex
    let text = raw.replace(/[\u0000-\u001f\u007f]+/g, " ").replace(/^\s*warning:\s*/i, "").trim();
    if (text === "" || out.includes(text)) continue;
    if (text.length > MAX_WARNING_LENGTH) text = `${text.slice(0, MAX_WARNING_LENGTH - 1)}…`;
    if (total + text.length > MAX_WARNINGS_TOTAL) break;
    if (out.includes(text)) continue;
    out.push(text);
    total += text.length;
  }
  return out;
}

function review(response: AdmissionResponse, options: ResponseOptions): AdmissionReviewResponse {
  const warnings = sanitizeWarnings(options.warnings ?? []);
  return {
    apiVersion: ADMISSION_API_VERSION,
    kind: ADMISSION_KIND,
    response: warnings.length > 0 ? { ...response, warnings } : response,
  };
}

/** `Uint8Array.prototype.toBase64` (Deno; not Node 20, which takes `node:buffer` instead). */
type ToBase64 = (this: Uint8Array) => string;
const toBase64 = (Uint8Array.prototype as { toBase64?: ToBase64 }).toBase64;
const utf8 = new TextEncoder();
/** Where {@link encodeBase64} writes the UTF-8 bytes of texts up to its size. */
const scratch = new Uint8Array(64 * 1024);

/**
 * Base64 of the UTF-8 encoding of `text`. On Deno: the bytes written into one reused buffer (for
 * texts up to ~21,000 characters) and encoded by the runtime's `toBase64` (half the time of
 * `node:buffer`).
 */
export function encodeBase64(text: string): string {
  if (toBase64 === undefined) return Buffer.from(text, "utf8").toString("base64");
  // At most 3 bytes of UTF-8 per UTF-16 code unit; a larger text gets its own bytes.
  if (text.length * 3 > scratch.byteLength) return toBase64.call(utf8.encode(text));
  const { written } = utf8.encodeInto(text, scratch);
  return toBase64.call(scratch.subarray(0, written));
}

/**
 * The JSON text of a review, as `JSON.stringify` gives it but without scanning the patch (the one
 * large part, base64: nothing in it needs escaping) a second time: the patch is put in last.
 */
export function reviewJson(review: AdmissionReviewResponse): string {
  const { patch, ...rest } = review.response;
  if (patch === undefined) return JSON.stringify(review);
  const head = JSON.stringify({ apiVersion: review.apiVersion, kind: review.kind, response: rest });
  // `head` ends with the two closing braces of `response` and of the review.
  return `${head.slice(0, -2)},"patch":"${patch}"}}`;
}

/** Allows the object unchanged: no `patch`, no `patchType`. */
export function allowReview(uid: string, options: ResponseOptions = {}): AdmissionReviewResponse {
  return review({ uid, allowed: true }, options);
}

/**
 * Allows the object with a JSON Patch. An empty patch gives {@link allowReview}.
 *
 * @param uid the request UID
 * @param patch RFC 6902 operations against the raw request object
 */
export function patchReview(
  uid: string,
  patch: readonly Operation[],
  options: ResponseOptions = {},
): AdmissionReviewResponse {
  if (patch.length === 0) return allowReview(uid, options);
  return review(
    { uid, allowed: true, patchType: "JSONPatch", patch: encodeBase64(JSON.stringify(patch)) },
    options,
  );
}

/**
 * Refuses the object.
 *
 * @param uid the request UID
 * @param code HTTP-like status code shown by the API server (400 and up)
 * @param message the reason shown to the user; never a secret value
 */
export function denyReview(
  uid: string,
  code: number,
  message: string,
  options: ResponseOptions = {},
): AdmissionReviewResponse {
  return review({ uid, allowed: false, status: { code, message } }, options);
}
