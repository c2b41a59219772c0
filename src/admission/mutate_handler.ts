/**
 * The `/mutate` endpoint: AdmissionReview v1 in, AdmissionReview v1 out.
 *
 * - Pod CREATE requests (`resource` v1 `pods`, no subresource) are mutated; every other request is
 *   allowed unchanged. The namespace is `request.namespace`, never the object's.
 * - The answer is always an AdmissionReview echoing `request.uid` with HTTP 200 (never Go Piggy's
 *   empty body); `patch` + `patchType` only when something changed; config problems and mutation
 *   remarks as `warnings`. Refusals (bad security setting, missing address or image, container
 *   without `command`, Kubernetes API failure other than NotFound) are `allowed: false` with a
 *   message.
 * - Broken HTTP requests get a 4xx: 405 (method), 415 (content type, checked before the body is
 *   read), 413 (body over 3 MiB), 400 (not an AdmissionReview). When the request UID is readable
 *   the body is an AdmissionReview denial with that code, otherwise `{error, message}`.
 * - Dry-run requests take the same path: admission has no side effects (it only reads).
 * - The handler never throws: unexpected errors become a 500 denial with a generic message.
 *
 * @module
 */

import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { resolveConfig } from "../config/resolve_config.ts";
import { settingLookup, type WebhookOptions } from "../config/webhook_options.ts";
import {
  MethodNotAllowedError,
  toErrorBody,
  toStatus,
  UnsupportedMediaTypeError,
} from "../errors.ts";
import type { KubeClient } from "../k8s/client.ts";
import { describeError, type LogFields, type Logger } from "../log.ts";
import { NO_FACTS } from "../mutate/container_refs.ts";
import { gatherFacts, GatherFactsError } from "../mutate/gather_facts.ts";
import { isTriggered, mutatePod } from "../mutate/mutate_pod.ts";
import { decodeReview, isObject, readReviewUid } from "./decode.ts";
import { createPatch } from "./patch.ts";
import { allowReview, denyReview, patchReview } from "./response.ts";
import type { AdmissionRequest, AdmissionReviewResponse } from "./types.ts";
import { readBodyText } from "../server/read_body.ts";

/** Largest accepted body: the API server's own request limit. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

/** What the `/mutate` handler needs. */
export interface MutateHandlerDeps {
  /** Kubernetes API access (ConfigMaps and Secrets of the request namespace). */
  kube: KubeClient;
  /** Webhook options: the validated settings fallbacks (with `PIGGY_CA_BUNDLE`). */
  options: Pick<WebhookOptions, "settingEnv">;
  /** Root logger; each request logs through a child with uid, namespace and pod or owner. */
  logger: Logger;
  /** Per-container UID generator. @default 32 lowercase hex chars from crypto.randomUUID() */
  newUid?: () => string;
  /** Largest accepted body in bytes. @default MAX_BODY_BYTES (3 MiB) */
  maxBodyBytes?: number;
  /** Monotonic clock in milliseconds for the "took" of log lines. @default performance.now */
  now?: () => number;
  /**
   * Deadline of the ConfigMap/Secret reads of one request, within the webhook's `timeoutSeconds`.
   * @default LOOKUP_TIMEOUT_MS (3 s)
   */
  lookupTimeoutMs?: number;
}

/** Default deadline of the Kubernetes reads of one admission request. */
export const LOOKUP_TIMEOUT_MS = 3000;

/** The production UID generator: a random UUIDv4 without dashes. */
export function randomUid(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  });
}

function reviewResponse(review: AdmissionReviewResponse, status = 200): Response {
  return jsonResponse(status, review);
}

function isJsonContentType(header: string | null): boolean {
  if (header === null) return false;
  const mediaType = header.split(";", 1)[0]?.trim().toLowerCase();
  return mediaType === "application/json";
}

function isPodCreate(request: AdmissionRequest): boolean {
  const resource = request.resource;
  return resource?.group === "" && resource.version === "v1" && resource.resource === "pods" &&
    !request.subResource && request.operation === "CREATE";
}

/**
 * Names the pod for logs: its name, or for controller pods its owner (Go §1.8 step 6), as log
 * fields and as the subject of Go Piggy's "… has been mutated" line.
 */
function describePod(pod: Pod, request: AdmissionRequest): { fields: LogFields; text: string } {
  const name = pod.metadata?.name || request.name || "";
  const owner = pod.metadata?.ownerReferences?.[0];
  if (!name && owner) {
    return {
      fields: { owner: `${owner.kind}/${owner.name}` },
      text: `Pod of ${owner.kind} '${owner.name}'`,
    };
  }
  const shown = name || pod.metadata?.generateName || "";
  return {
    fields: {
      pod_name: name || (pod.metadata?.generateName ? `${pod.metadata.generateName}*` : ""),
    },
    text: `Pod '${shown}'`,
  };
}

/**
 * Builds the `/mutate` handler.
 *
 * @example
 * ```ts
 * const options = parseWebhookOptions((name) => env[name]);
 * const mutate = createMutateHandler({ kube, options, logger });
 * const response = await mutate(new Request("https://piggy/mutate", { method: "POST", ... }));
 * ```
 */
export function createMutateHandler(
  deps: MutateHandlerDeps,
): (request: Request) => Promise<Response> {
  const newUid = deps.newUid ?? randomUid;
  const limit = deps.maxBodyBytes ?? MAX_BODY_BYTES;
  const now = deps.now ?? (() => performance.now());
  const lookupTimeoutMs = deps.lookupTimeoutMs ?? LOOKUP_TIMEOUT_MS;
  const settingEnv = settingLookup(deps.options);

  async function admit(
    request: AdmissionRequest,
    log: Logger,
  ): Promise<AdmissionReviewResponse> {
    const started = now();
    const uid = request.uid;
    if (!isPodCreate(request)) {
      log.debug("Skip request: not a pod CREATE", {
        operation: request.operation ?? "",
        resource: request.resource?.resource ?? "",
      });
      return allowReview(uid);
    }
    if (!isObject(request.object)) {
      log.warn("Refusing request: request.object is not a pod");
      return denyReview(uid, 400, "Cannot admit the request: request.object is missing");
    }
    const raw = request.object;
    const pod = raw as Pod;
    const { config, problems } = resolveConfig(pod.metadata?.annotations ?? undefined, settingEnv);
    const warnings = problems.filter((problem) => !problem.deny).map((problem) => problem.message);
    for (const problem of problems) {
      log.warn(problem.message, { setting: problem.key, deny: problem.deny });
    }
    if (!isTriggered(config)) {
      log.debug("Skip mutating pod: No piggy annotations found.");
      const annotationWarnings = problems
        .filter((problem) => problem.source === "annotation")
        .map((problem) => problem.message);
      return allowReview(uid, { warnings: annotationWarnings });
    }

    const namespace = request.namespace ?? "";
    let facts = NO_FACTS;
    if (namespace === "") {
      return denyReview(uid, 400, "Cannot admit the pod: request.namespace is empty", { warnings });
    }
    try {
      facts = await gatherFacts(pod, namespace, deps.kube, {
        signal: AbortSignal.timeout(lookupTimeoutMs),
      });
    } catch (error) {
      if (!(error instanceof GatherFactsError)) throw error;
      log.error("Cannot read the objects the pod refers to", { error: describeError(error) });
      return denyReview(uid, toStatus(error.cause), error.message, { warnings });
    }

    const result = await mutatePod(pod, config, facts, newUid);
    warnings.push(...result.warnings);
    // Settings that must not be guessed deny only pods Piggy would otherwise wrap.
    const settingDenials = result.denial || result.wrapped.length > 0
      ? problems.filter((problem) => problem.deny).map((problem) => problem.message)
      : [];
    if (result.denial || settingDenials.length > 0) {
      const message = [...settingDenials, ...(result.denial ? [result.denial.message] : [])]
        .join("; ");
      log.info("Pod denied", { reason: message });
      return denyReview(uid, result.denial?.code ?? 400, message, { warnings });
    }
    if (result.skipReason !== undefined) {
      log.debug(`Skip mutating pod: ${result.skipReason}`);
      return allowReview(uid, { warnings });
    }
    const patch = result.changed ? createPatch(raw, result.pod) : [];
    const took = Math.round(now() - started);
    if (patch.length === 0) {
      log.info(
        `Mutation is skipped since it was already mutated for ${describePod(pod, request).text}`,
      );
      return allowReview(uid, { warnings });
    }
    for (const name of result.wrapped) log.debug(`Container '${name}' has been mutated`);
    log.info(`${describePod(pod, request).text} has been mutated (took ${took}ms)`, {
      containers: result.wrapped.join(","),
      dry_run: request.dryRun === true,
    });
    return patchReview(uid, patch, { warnings });
  }

  return async function mutate(request: Request): Promise<Response> {
    let uid: string | undefined;
    let log = deps.logger;
    try {
      if (request.method !== "POST") {
        throw new MethodNotAllowedError(
          `Cannot accept method ${request.method}: only POST is allowed`,
        );
      }
      const contentType = request.headers.get("content-type");
      if (!isJsonContentType(contentType)) {
        throw new UnsupportedMediaTypeError(
          `Cannot accept content type ${JSON.stringify(contentType ?? "")}: only ` +
            "application/json is supported",
        );
      }
      const text = await readBodyText(request, { limit });
      let review;
      try {
        review = decodeReview(text);
      } catch (error) {
        uid = readReviewUid(text);
        throw error;
      }
      uid = review.request.uid;
      const pod = isObject(review.request.object) ? review.request.object as Pod : {};
      log = deps.logger.child({
        uid,
        namespace: review.request.namespace ?? "",
        ...describePod(pod, review.request).fields,
        ...(review.request.dryRun ? { dry_run: true } : {}),
      });
      return reviewResponse(await admit(review.request, log));
    } catch (error) {
      const status = toStatus(error);
      if (status === 500) {
        log.error("Cannot admit the request", { error: describeError(error) });
        const message = "Cannot admit the request: internal error in piggy-webhooks";
        return uid === undefined
          ? jsonResponse(500, { error: "InternalError", message })
          : reviewResponse(denyReview(uid, 500, message), 200);
      }
      log.warn("Rejecting request", { status, error: describeError(error) });
      const headers: Record<string, string> = status === 405 ? { allow: "POST" } : {};
      const message = error instanceof Error ? error.message : String(error);
      return uid === undefined
        ? jsonResponse(status, toErrorBody(error), headers)
        : jsonResponse(status, denyReview(uid, status, message), headers);
    }
  };
}
