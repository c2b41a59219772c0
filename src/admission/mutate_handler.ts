/**
 * The `/mutate` endpoint: the shared HTTP envelope around {@link admit}.
 *
 * - The answer is always an AdmissionReview echoing `request.uid` with HTTP 200 (never Go Piggy's
 *   empty body).
 * - Broken HTTP requests get a 4xx: 405 (method), 415 (content type, checked before the body is
 *   read), 413 (body over 3 MiB), 400 (not an AdmissionReview). When the request UID is readable
 *   the body is an AdmissionReview denial with that code, otherwise `{error, message}`.
 * - The handler never throws: unexpected errors become a 500 denial with a generic message.
 *
 * @module
 */

import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { settingLookup, type WebhookOptions } from "../config/webhook_options.ts";
import { toStatus } from "../errors.ts";
import type { KubeClient } from "../k8s/client.ts";
import { describeError, type Logger } from "../log.ts";
import {
  acceptJsonPost,
  errorResponse,
  jsonResponse,
  jsonTextResponse,
  readJsonBody,
} from "../http/envelope.ts";
import { ADMISSION_TIMEOUT_MS, admit, describePod, type ImageLookupContext } from "./admit.ts";
import type { SealKey } from "../pod/seal.ts";
import { DEFAULT_TOKEN_AUDIENCE } from "../constants.ts";
import { decodeReview, isObject, readReviewUid } from "./decode.ts";
import { denyReview, reviewJson } from "./response.ts";
import type { AdmissionRequest, AdmissionReviewResponse } from "./types.ts";
import { startDeadline } from "../abort.ts";

export { ADMISSION_TIMEOUT_MS };

/** Largest accepted body: the API server's own request limit. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

/** What the `/mutate` handler needs. */
export interface MutateHandlerDeps {
  /** Kubernetes API access (ConfigMaps and Secrets of the request namespace). */
  kube: KubeClient;
  /**
   * Webhook options: the validated settings fallbacks (with `PIGGY_CA_BUNDLE`), the token audiences
   * (the first is the projected token's) and the limits of one admission (each defaults to its option's default when absent).
   */
  options:
    & Pick<WebhookOptions, "settingEnv" | "tokenAudiences" | "accessGuard" | "allowedAddresses">
    & Partial<
      Pick<
        WebhookOptions,
        | "admissionTimeoutMs"
        | "maxReferencedObjects"
        | "kubeLookupConcurrency"
        | "maxContainers"
        | "maxEnvPerContainer"
        | "launcherImageVolume"
      >
    >;
  /** Root logger; each request logs through a child with uid, namespace and pod or owner. */
  logger: Logger;
  /** Per-container UID generator. @default 32 lowercase hex chars from crypto.randomUUID() */
  newUid?: () => string;
  /** Sealing keys: the first seals each wrapped pod; `/secret` must hold the same ones. */
  sealKeys: readonly SealKey[];
  /** Largest accepted body in bytes. @default MAX_BODY_BYTES (3 MiB) */
  maxBodyBytes?: number;
  /** Monotonic clock in milliseconds for the "took" of log lines. @default performance.now */
  now?: () => number;
  /**
   * Told how each request ended and how long it took (metrics): `mutated` (a patch), `unchanged`
   * (allowed as it is), `denied` (the pod or the request was refused: a 4xx denial or a malformed
   * request), `error` (the webhook could not decide: a 5xx denial).
   */
  onAdmission?: (outcome: AdmissionOutcome, seconds: number) => void;
  /** Image lookups for wrapped containers without `command`; absent: such pods are denied. */
  images?: ImageLookupContext;
}

/** How an admission request ended. */
export type AdmissionOutcome = "mutated" | "unchanged" | "denied" | "error";

/** The outcome of an answered AdmissionReview. */
export function admissionOutcome(review: AdmissionReviewResponse): AdmissionOutcome {
  const response = review.response;
  if (response.allowed) return response.patch ? "mutated" : "unchanged";
  return (response.status?.code ?? 500) >= 500 ? "error" : "denied";
}

/** `Uint8Array.prototype.toHex` (Deno; not Node 20, which takes `crypto.randomUUID()` instead). */
type ToHex = (this: Uint8Array) => string;
const toHex = (Uint8Array.prototype as { toHex?: ToHex }).toHex;

/** Bytes of one UID (a UUID). */
const UID_BYTES = 16;

/** Random bytes for the next UIDs, drawn 64 UIDs at a time; each byte is used once. */
const uidBytes = new Uint8Array(UID_BYTES * 64);
let uidBytesUsed = uidBytes.byteLength;

/**
 * The production UID generator: a random UUIDv4 without dashes (32 lowercase hex characters), as
 * `crypto.randomUUID().replaceAll("-", "")` gives it. On Deno, made from a buffer of random bytes
 * drawn for 64 UIDs at once and written by `toHex`: a flat string (`replaceAll` makes a rope of
 * the five parts), in about half the time.
 */
export function randomUid(): string {
  if (toHex === undefined) return crypto.randomUUID().replaceAll("-", "");
  if (uidBytesUsed === uidBytes.byteLength) {
    crypto.getRandomValues(uidBytes);
    uidBytesUsed = 0;
  }
  const bytes = uidBytes.subarray(uidBytesUsed, uidBytesUsed + UID_BYTES);
  uidBytesUsed += UID_BYTES;
  // RFC 9562: version 4 in the high nibble of byte 6, variant 10 in the top bits of byte 8.
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  return toHex.call(bytes);
}

/** The request's child logger: uid, namespace, pod or owner, dry run. */
function requestLogger(logger: Logger, request: AdmissionRequest): Logger {
  const pod = isObject(request.object) ? request.object as Pod : {};
  return logger.child({
    uid: request.uid,
    namespace: request.namespace ?? "",
    ...describePod(pod, request).fields,
    ...(request.dryRun ? { dry_run: true } : {}),
  });
}

/**
 * The answer to a request that failed before or outside {@link admit}: an AdmissionReview denial
 * when the uid is known, `{error, message}` otherwise; unexpected errors are logged and hidden.
 */
function failureResponse(error: unknown, uid: string | undefined, log: Logger): Response {
  const status = toStatus(error);
  if (status === 500) {
    log.error("Cannot admit the request", { error: describeError(error) });
    const message = "Cannot admit the request: internal error in piggy-webhooks";
    return uid === undefined
      ? errorResponse(error)
      : jsonResponse(200, denyReview(uid, 500, message));
  }
  log.warn("Rejecting request", { status, error: describeError(error) });
  const message = error instanceof Error ? error.message : String(error);
  return uid === undefined
    ? errorResponse(error)
    : jsonResponse(status, denyReview(uid, status, message));
}

/**
 * Builds the `/mutate` handler.
 *
 * @example
 * ```ts
 * const options = parseWebhookOptions((name) => env[name]);
 * const mutate = createMutateHandler({ kube, options, logger, sealKeys: [key] });
 * const response = await mutate(new Request("https://piggy/mutate", { method: "POST", ... }));
 * ```
 */
export function createMutateHandler(
  deps: MutateHandlerDeps,
): (request: Request) => Promise<Response> {
  const limit = deps.maxBodyBytes ?? MAX_BODY_BYTES;
  const options = deps.options;
  const context = {
    kube: deps.kube,
    settingEnv: settingLookup(deps.options),
    accessGuard: deps.options.accessGuard,
    allowedAddresses: deps.options.allowedAddresses,
    newUid: deps.newUid ?? randomUid,
    sealKeys: deps.sealKeys,
    tokenAudience: deps.options.tokenAudiences[0] ?? DEFAULT_TOKEN_AUDIENCE,
    ...(deps.now ? { now: deps.now } : {}),
    limits: {
      ...(options.maxReferencedObjects
        ? { maxReferencedObjects: options.maxReferencedObjects }
        : {}),
      ...(options.kubeLookupConcurrency
        ? { kubeLookupConcurrency: options.kubeLookupConcurrency }
        : {}),
      ...(options.maxContainers ? { maxContainers: options.maxContainers } : {}),
      ...(options.maxEnvPerContainer ? { maxEnvPerContainer: options.maxEnvPerContainer } : {}),
    },
    ...(deps.images ? { images: deps.images } : {}),
    launcherImageVolume: options.launcherImageVolume ?? false,
  };
  const deadlineMs = options.admissionTimeoutMs ?? ADMISSION_TIMEOUT_MS;

  const observe = deps.onAdmission;
  const clock = deps.now ?? (() => performance.now());
  return async function mutate(request: Request): Promise<Response> {
    const started = clock();
    // One deadline for the whole admission, from the moment the request arrived (cleared when
    // it is answered: a pending AbortSignal.timeout would keep its signal for the full deadline).
    const deadline = startDeadline(deadlineMs);
    let uid: string | undefined;
    let log = deps.logger;
    try {
      acceptJsonPost(request);
      const body = await readJsonBody(request, "AdmissionReview", { limit });
      uid = readReviewUid(body);
      const review = decodeReview(body);
      log = requestLogger(deps.logger, review.request);
      const answer = await admit(review.request, {
        ...context,
        log,
        deadline: deadline.signal,
        deadlineMs,
      });
      observe?.(admissionOutcome(answer), (clock() - started) / 1000);
      return jsonTextResponse(200, reviewJson(answer));
    } catch (error) {
      observe?.(toStatus(error) >= 500 ? "error" : "denied", (clock() - started) / 1000);
      return failureResponse(error, uid, log);
    } finally {
      deadline.dispose();
    }
  };
}
