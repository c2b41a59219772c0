/**
 * Decoding of the `/mutate` body into an AdmissionReview request.
 *
 * @module
 */

import { AdmissionDecodeError } from "../errors.ts";
import { ADMISSION_API_VERSION, ADMISSION_KIND, type AdmissionReviewRequest } from "./types.ts";

/** True for a plain JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Checks a decoded AdmissionReview. `apiVersion` and `kind` may be missing; when present they
 * must be `admission.k8s.io/v1` and `AdmissionReview` (Piggy answers in v1 only).
 *
 * @param parsed the decoded request body
 * @returns the review, with `request.uid` a string
 * @throws {AdmissionDecodeError} on a value that is not an object, a missing or null `request`, a
 *   missing uid, or an unsupported version
 */
export function decodeReview(parsed: unknown): AdmissionReviewRequest {
  if (!isObject(parsed)) {
    throw new AdmissionDecodeError("Cannot decode AdmissionReview: expecting a JSON object");
  }
  if (parsed.apiVersion !== undefined && parsed.apiVersion !== ADMISSION_API_VERSION) {
    throw new AdmissionDecodeError(
      `Cannot use AdmissionReview version ${JSON.stringify(parsed.apiVersion)}: expecting ` +
        `"${ADMISSION_API_VERSION}"`,
    );
  }
  if (parsed.kind !== undefined && parsed.kind !== ADMISSION_KIND) {
    throw new AdmissionDecodeError(
      `Cannot decode kind ${JSON.stringify(parsed.kind)}: expecting "${ADMISSION_KIND}"`,
    );
  }
  const request = parsed.request;
  if (!isObject(request)) {
    throw new AdmissionDecodeError("Cannot decode AdmissionReview: request is missing");
  }
  if (typeof request.uid !== "string" || request.uid === "") {
    throw new AdmissionDecodeError("Cannot decode AdmissionReview: request.uid is missing");
  }
  for (const field of ["name", "namespace", "operation", "subResource"] as const) {
    if (
      request[field] !== undefined && request[field] !== null && typeof request[field] !== "string"
    ) {
      throw new AdmissionDecodeError(
        `Cannot decode AdmissionReview: request.${field} is not a string`,
      );
    }
  }
  if (
    request.dryRun !== undefined && request.dryRun !== null && typeof request.dryRun !== "boolean"
  ) {
    throw new AdmissionDecodeError(
      "Cannot decode AdmissionReview: request.dryRun is not a boolean",
    );
  }
  return parsed as unknown as AdmissionReviewRequest;
}

/**
 * Reads `request.uid` from a body that {@link decodeReview} rejected, so the error can still be
 * answered as an AdmissionReview.
 *
 * @returns the uid, or `undefined` when the body has no string uid
 */
export function readReviewUid(parsed: unknown): string | undefined {
  if (!isObject(parsed) || !isObject(parsed.request)) return undefined;
  const uid = parsed.request.uid;
  return typeof uid === "string" && uid !== "" ? uid : undefined;
}
