/**
 * `admit(request) → review`: what `/mutate` answers for one decoded AdmissionRequest, without HTTP.
 *
 * - Pod CREATE requests (`resource` v1 `pods`, no subresource) are mutated; every other request is
 *   allowed unchanged. The namespace is `request.namespace`, never the object's.
 * - Wrapped proxy-mode containers get an audience-bound projected token (see
 *   `projected_token.ts`), and the command template when the kubelet would expand `$(VAR)`
 *   in their command (see `command_templates.ts`).
 * - A wrapped pod gets the `piggysec.com/piggy-seal` annotation (see `src/pod/seal.ts`), made over
 *   the mutated pod; re-admission of an unchanged pod yields the same seal.
 * - `patch` + `patchType` only when something changed; config problems and mutation remarks as
 *   `warnings`. Refusals (bad security setting, missing address or image, container without
 *   `command`, Kubernetes API failure other than NotFound) are `allowed: false` with a message.
 * - Dry-run requests take the same path: admission has no side effects (it only reads).
 *
 * @module
 */

import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { type ConfigProblem, resolveConfig } from "../config/resolve_config.ts";
import type { PiggyConfig } from "../config/settings.ts";
import { LIMIT_ENV } from "../constants.ts";
import { InvalidObjectError, LimitExceededError, toStatus } from "../errors.ts";
import type { KubeClient } from "../k8s/client.ts";
import { describeError, type LogFields, type Logger } from "../log.ts";
import type { ImageLookupMode } from "../config/webhook_options.ts";
import { isWrapped, type PodFacts, qualifies } from "../pod/container_refs.ts";
import { factsWithoutReads, gatherFacts, GatherFactsError } from "../pod/gather_facts.ts";
import { checkPodShape } from "../pod/pod_shape.ts";
import {
  checkPodSize,
  DEFAULT_MAX_CONTAINERS,
  DEFAULT_MAX_ENV_PER_CONTAINER,
} from "../pod/pod_limits.ts";
import { type ImageConfigSource, lookUpImageCommands } from "../pod/image_lookup.ts";
import type { EcrCredentialSource } from "../registry/ecr.ts";
import { type SealKey, withSeal } from "../pod/seal.ts";
import { isTriggered, mutatePod, type MutationResult } from "./mutate_pod.ts";
import { withProjectedToken } from "./projected_token.ts";
import { withCommandTemplates } from "./command_templates.ts";
import { isObject } from "./decode.ts";
import { createPatch } from "./patch.ts";
import { allowReview, denyReview, patchReview } from "./response.ts";
import { type AccessGuard, checkAtAdmission } from "../secrets/access_policy.ts";
import { podSecretQuery } from "../secrets/query.ts";
import { addressRefusal } from "../config/allowed_addresses.ts";
import type { AdmissionRequest, AdmissionReviewResponse } from "./types.ts";

/** Default deadline of one admission request (PIGGY_ADMISSION_TIMEOUT). */
export const ADMISSION_TIMEOUT_MS = 4000;

/** The limits of one admission (the webhook options of the same names). */
export interface AdmissionLimits {
  /** Most distinct ConfigMaps plus Secrets read. @default DEFAULT_MAX_REFERENCED_OBJECTS */
  maxReferencedObjects?: number;
  /** Most reads in flight at once. @default DEFAULT_LOOKUP_CONCURRENCY */
  kubeLookupConcurrency?: number;
  /** Most containers (init, app, ephemeral). @default DEFAULT_MAX_CONTAINERS */
  maxContainers?: number;
  /** Most env plus envFrom entries per container. @default DEFAULT_MAX_ENV_PER_CONTAINER */
  maxEnvPerContainer?: number;
}

/** How containers without `command` get their image's Entrypoint/Cmd. */
export interface ImageLookupContext {
  /** The registry client (shared cache). */
  registry: ImageConfigSource;
  /** ECR credentials with the webhook's identity. */
  ecr?: EcrCredentialSource;
  /** `deny`, `warn` or `off` (PIGGY_IMAGE_LOOKUP). */
  mode: ImageLookupMode;
  /** One deadline for all lookups of the admission (PIGGY_IMAGE_LOOKUP_TIMEOUT). */
  timeoutMs: number;
  /** Pull secrets may come from another namespace (PIGGY_IMAGE_PULL_SECRET_ANY_NAMESPACE). */
  allowOtherNamespaces: boolean;
  /** Pods may not skip registry TLS verification (PIGGY_IMAGE_FORBID_SKIP_VERIFY). */
  forbidSkipVerify?: boolean;
}

/** What {@link admit} needs besides the request. */
export interface AdmitContext {
  /** Kubernetes API access (ConfigMaps and Secrets of the request namespace). */
  kube: KubeClient;
  /** The secret access policy: proxy-mode pods whose secret it always refuses are denied. */
  accessGuard: AccessGuard;
  /** Normalised `piggy-address` values proxy-mode pods may use; empty denies every such pod. */
  allowedAddresses: readonly string[];
  /** Lookup of the settings' webhook env fallbacks (validated at start-up), `PIGGY_CA_BUNDLE` included. */
  settingEnv: (name: string) => string | undefined;
  /** The request's logger (with uid, namespace and pod or owner). */
  log: Logger;
  /** Per-container UID generator. */
  newUid: () => string;
  /** Sealing keys: the first seals each wrapped pod (see `src/pod/seal.ts`). */
  sealKeys: readonly SealKey[];
  /** Audience of the projected token mounted into wrapped proxy-mode containers. */
  tokenAudience: string;
  /** Monotonic clock in milliseconds for the "took" of log lines. @default performance.now */
  now?: () => number;
  /**
   * The admission deadline, started by the caller when the request arrived: once it aborts, no
   * read starts and the pod is denied (504). @default a new one of ADMISSION_TIMEOUT_MS
   */
  deadline?: AbortSignal;
  /** The deadline's length in milliseconds, for the denial message. @default ADMISSION_TIMEOUT_MS */
  deadlineMs?: number;
  /** Caps of the request. @default each limit's default */
  limits?: AdmissionLimits;
  /** Image lookups for containers without `command`; absent: such containers are denied. */
  images?: ImageLookupContext;
  /** Mount the launcher from an image volume (PIGGY_LAUNCHER_IMAGE_VOLUME). @default false */
  launcherImageVolume?: boolean;
}

function isPodCreate(request: AdmissionRequest): boolean {
  const resource = request.resource;
  return resource?.group === "" && resource.version === "v1" && resource.resource === "pods" &&
    !request.subResource && request.operation === "CREATE";
}

/**
 * Names the pod for logs: its name, or for controller pods its owner, as log fields and as the
 * subject of Go Piggy's "… has been mutated" line.
 */
export function describePod(
  pod: Pod,
  request: AdmissionRequest,
): { fields: LogFields; text: string } {
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

/** How many problems a summary log line quotes. */
const LOGGED_PROBLEMS = 3;

/**
 * Logs the settings problems of one request as one line: the problem itself when there is one,
 * else the count and the first few (a pod with thousands of bad settings writes one line).
 */
function logProblems(log: Logger, problems: readonly ConfigProblem[]): void {
  const [first] = problems;
  if (first === undefined) return;
  if (problems.length === 1) {
    log.warn(first.message, { setting: first.key, deny: first.deny });
    return;
  }
  const shown = problems.slice(0, LOGGED_PROBLEMS).map((problem) => problem.message).join("; ");
  log.warn(
    `${problems.length} settings problems: ${shown}` +
      (problems.length > LOGGED_PROBLEMS ? "; …" : ""),
    {
      count: problems.length,
      settings: problems.slice(0, LOGGED_PROBLEMS).map((problem) => problem.key).join(","),
      deny: problems.some((problem) => problem.deny),
    },
  );
}

/** The pod's settings, with every problem logged once and the non-denying ones as warnings. */
function resolvePodSettings(
  pod: Pod,
  context: AdmitContext,
): { config: PiggyConfig; problems: ConfigProblem[]; warnings: string[] } {
  const { config, problems } = resolveConfig(
    pod.metadata?.annotations ?? undefined,
    context.settingEnv,
  );
  logProblems(context.log, problems);
  const warnings = problems.filter((problem) => !problem.deny).map((problem) => problem.message);
  return { config, problems, warnings };
}

/** Rejects with the signal's reason once it aborts (settles with `work` otherwise). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener("abort", onAbort));
}

/** The facts of the pod's namespace, or the denial when they cannot be read in time. */
async function lookUpFacts(
  pod: Pod,
  namespace: string,
  context: AdmitContext,
): Promise<PodFacts | { status: number; message: string }> {
  const deadlineMs = context.deadlineMs ?? ADMISSION_TIMEOUT_MS;
  const deadline = context.deadline ?? AbortSignal.timeout(deadlineMs);
  // Nothing to read: no race with the deadline to set up (while it has not passed yet).
  const ready = deadline.aborted ? undefined : factsWithoutReads(pod);
  if (ready !== undefined) return ready;
  const limits = context.limits ?? {};
  const work = gatherFacts(pod, namespace, context.kube, {
    signal: deadline,
    ...(limits.maxReferencedObjects ? { maxObjects: limits.maxReferencedObjects } : {}),
    ...(limits.kubeLookupConcurrency ? { concurrency: limits.kubeLookupConcurrency } : {}),
  });
  try {
    return await untilAborted(work, deadline);
  } catch (error) {
    if (error instanceof LimitExceededError) {
      context.log.warn("Pod refused: over a limit", { setting: error.setting });
      return { status: error.httpStatus, message: error.message };
    }
    if (deadline.aborted) {
      // The reads still running were aborted too; their outcome no longer matters.
      work.catch(() => {});
      const message = `Cannot admit the pod within ${LIMIT_ENV.ADMISSION_TIMEOUT} ` +
        `(${deadlineMs} ms): the ConfigMaps and Secrets it refers to were not read in time`;
      context.log.error("Admission deadline passed", { deadline_ms: deadlineMs });
      return { status: 504, message };
    }
    if (!(error instanceof GatherFactsError)) throw error;
    context.log.error("Cannot read the objects the pod refers to", {
      error: describeError(error),
    });
    return { status: toStatus(error.cause), message: error.message };
  }
}

/**
 * Reads the image config of every container Piggy will wrap that has no `command`, into the facts;
 * a failure denies the pod (mode `deny`) or leaves that container unwrapped with a warning
 * (`warn`).
 */
async function lookUpImages(
  pod: Pod,
  namespace: string,
  config: PiggyConfig,
  facts: PodFacts,
  context: AdmitContext,
  warnings: string[],
): Promise<PodFacts | { denial: string }> {
  const images = context.images;
  if (!images || images.mode === "off") return facts;
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]
    .filter((c) => c && !isWrapped(c) && !(c.command?.length) && qualifies(c, facts));
  if (containers.length === 0) return facts;
  if (config.imageSkipVerifyRegistry && images.forbidSkipVerify) {
    return {
      denial: `Cannot look up the image of container ${
        containers.map((c) => `"${c.name}"`).join(", ")
      }: "piggysec.com/image-skip-verify-registry" is forbidden by the webhook ` +
        "(PIGGY_IMAGE_FORBID_SKIP_VERIFY). Remove it (the operator can trust the registry's CA " +
        'with PIGGY_REGISTRY_CA_BUNDLE_FILE) or set "command"',
    };
  }
  const started = (context.now ?? (() => performance.now()))();
  const result = await lookUpImageCommands(
    pod,
    namespace,
    containers,
    config,
    {
      kube: context.kube,
      registry: images.registry,
      ...(images.ecr ? { ecr: images.ecr } : {}),
      allowOtherNamespaces: images.allowOtherNamespaces,
    },
    AbortSignal.any([
      context.deadline ?? AbortSignal.timeout(ADMISSION_TIMEOUT_MS),
      AbortSignal.timeout(images.timeoutMs),
    ]),
  );
  context.log.debug("Image lookups done", {
    containers: containers.length,
    failed: result.failures.length,
    took_ms: Math.round((context.now ?? (() => performance.now()))() - started),
  });
  if (result.failures.length > 0) {
    for (const failure of result.failures) {
      context.log.warn("Cannot read the image config of a container without command", {
        container: failure.container,
        image: failure.image,
        reason: failure.reason,
        mode: images.mode,
      });
    }
    const described = result.failures.map((f) =>
      `container "${f.container}" (image "${f.image}"): ${f.reason}`
    );
    if (images.mode === "deny") {
      const podLabel = pod.metadata?.name || pod.metadata?.generateName || "";
      return {
        denial: `Cannot inject secrets into pod "${podLabel}": cannot read the Entrypoint/Cmd ` +
          `of ${described.join("; ")}. Set "command" (and "args") on the container so Piggy ` +
          "needs no registry lookup",
      };
    }
    // Warnings are cut at 120 characters: what to do comes first, the reason is in the log.
    for (const failure of result.failures) {
      warnings.push(
        `Container "${failure.container}" left unwrapped (piggy: values unresolved): set ` +
          `"command"; image lookup failed: ${failure.reason}`,
      );
    }
  }
  return {
    ...facts,
    images: result.images,
    unwrapped: new Set(result.failures.map((f) => f.container)),
  };
}

/** Why the pod is refused: denying settings (only for pods Piggy would wrap) and the mutation's. */
function refusalOf(result: MutationResult, problems: readonly ConfigProblem[]): string | undefined {
  const settingDenials = result.denial || result.wrapped.length > 0
    ? problems.filter((problem) => problem.deny).map((problem) => problem.message)
    : [];
  if (!result.denial && settingDenials.length === 0) return undefined;
  return [...settingDenials, ...(result.denial ? [result.denial.message] : [])].join("; ");
}

/**
 * What the operator's limits say of a proxy-mode pod (standalone pods read AWS with their own role
 * and call no webhook): its `piggy-address` must be allowed, and the secret access policy must be
 * able to serve its secret (`/secret` would fill in the same default name).
 */
function policyFinding(
  pod: Pod,
  config: PiggyConfig,
  namespace: string,
  { guard, allowedAddresses }: { guard: AccessGuard; allowedAddresses: readonly string[] },
): { denial?: string; warning?: string } {
  if (config.standalone) return {};
  const refusal = addressRefusal(config.piggyAddress, allowedAddresses);
  if (refusal !== undefined) return { denial: refusal };
  const serviceAccountName = pod.spec?.serviceAccountName || "default";
  const query = podSecretQuery(config, namespace, serviceAccountName);
  if (query === undefined) return {};
  return checkAtAdmission(guard, query, `${namespace}:${serviceAccountName}`);
}

/**
 * Answers one AdmissionRequest: mutates pod creations that reference Piggy settings, allows the
 * rest unchanged.
 *
 * @param request the decoded request (its uid is echoed)
 * @param context Kubernetes access, env lookup, logger, UID generator
 * @returns the AdmissionReview to answer with HTTP 200
 */
export async function admit(
  request: AdmissionRequest,
  context: AdmitContext,
): Promise<AdmissionReviewResponse> {
  const { log } = context;
  const now = context.now ?? (() => performance.now());
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
  try {
    checkPodShape(raw);
  } catch (error) {
    if (!(error instanceof InvalidObjectError)) throw error;
    log.warn("Refusing request: the pod is malformed", { error: error.message });
    return denyReview(uid, error.httpStatus, error.message);
  }
  const pod = raw as Pod;
  const { config, problems, warnings } = resolvePodSettings(pod, context);
  if (!isTriggered(config)) {
    log.debug("Skip mutating pod: No piggy annotations found.");
    const annotationWarnings = problems
      .filter((problem) => problem.source === "annotation")
      .map((problem) => problem.message);
    return allowReview(uid, { warnings: annotationWarnings });
  }

  try {
    checkPodSize(pod, {
      maxContainers: context.limits?.maxContainers ?? DEFAULT_MAX_CONTAINERS,
      maxEnvPerContainer: context.limits?.maxEnvPerContainer ?? DEFAULT_MAX_ENV_PER_CONTAINER,
    });
  } catch (error) {
    if (!(error instanceof LimitExceededError)) throw error;
    log.warn("Pod refused: over a limit", { setting: error.setting });
    return denyReview(uid, error.httpStatus, error.message, { warnings });
  }

  const namespace = request.namespace ?? "";
  if (namespace === "") {
    return denyReview(uid, 400, "Cannot admit the pod: request.namespace is empty", { warnings });
  }
  const referenceFacts = await lookUpFacts(pod, namespace, context);
  if ("status" in referenceFacts) {
    return denyReview(uid, referenceFacts.status, referenceFacts.message, { warnings });
  }
  const facts = await lookUpImages(pod, namespace, config, referenceFacts, context, warnings);
  if ("denial" in facts) {
    log.info("Pod denied", { reason: facts.denial });
    return denyReview(uid, 400, facts.denial, { warnings });
  }

  const result = mutatePod(pod, config, facts, context.newUid, {
    imageVolume: context.launcherImageVolume ?? false,
  });
  warnings.push(...result.warnings);
  const finding = result.wrapped.length > 0
    ? policyFinding(pod, config, namespace, {
      guard: context.accessGuard,
      allowedAddresses: context.allowedAddresses,
    })
    : {};
  if (finding.warning !== undefined) warnings.push(finding.warning);
  const refusal = [refusalOf(result, problems), finding.denial].filter((text) => text).join("; ") ||
    undefined;
  if (refusal !== undefined) {
    log.info("Pod denied", { reason: refusal });
    return denyReview(uid, result.denial?.code ?? 400, refusal, { warnings });
  }
  if (result.skipReason !== undefined) {
    log.debug(`Skip mutating pod: ${result.skipReason}`);
    return allowReview(uid, { warnings });
  }
  // Sealed last, over the final pod: the seal covers the uid map the mutation wrote.
  const templated = withCommandTemplates(withProjectedToken(result.pod, context.tokenAudience), {
    enforceIntegrity: config.piggyEnforceIntegrity,
  });
  warnings.push(...templated.warnings);
  // The seal reads the uid map the mutation wrote instead of parsing its text back (only while the
  // pod still holds that very text).
  const final = withSeal(
    templated.pod,
    namespace,
    context.sealKeys,
    result.uidAnnotation === undefined
      ? {}
      : { knownUids: { text: result.uidAnnotation, signatures: result.signatures } },
  );
  const patch = createPatch(raw, final);
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
