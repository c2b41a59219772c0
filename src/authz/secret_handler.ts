/**
 * The `/secret` proxy handler: authenticates a launcher's service-account token, authorizes the
 * secret its live pod is configured with, fetches it and answers a flat JSON map of strings.
 *
 * Wire compatible with Go Piggy 0.7 launchers: `POST`, `Content-Type:
 * application/json` (parameters such as `; charset=utf-8` are accepted, Go required the exact
 * text), `X-Token: <raw token>`, body `{"resources","name","uid","signature"}`. Failures answer
 * `{"error": code, "message": text}` with the status from `toStatus` (Go answered 400 for almost
 * everything):
 *
 * | Status | When |
 * | --- | --- |
 * | 400 | body not JSON, not an object, `name` not a pod name, `uid`/`signature` not strings |
 * | 401 | `X-Token` missing or empty; token not authenticated or not for `PIGGY_TOKEN_AUDIENCES` (the API server's audience only under `PIGGY_LEGACY_PODS`, and never for a container given `PIGGY_TOKEN_FILE`) |
 * | 403 | refused: not a service account, another pod's token, service account mismatch, uid or signature, denying setting, admission seal missing or not matching, the secret access policy (`PIGGY_SECRET_ACCESS_POLICY`, `PIGGY_ALLOWED_SA`); also any AWS failure for a caller that the secret would have to list, so that not found and not allowed look the same |
 * | 404 | the pod does not exist in the token's namespace |
 * | 405 | method other than POST |
 * | 413 | body larger than `maxBodyBytes` |
 * | 415 | content type other than `application/json` (Go: 400) |
 * | 502 | AWS error: `error` is a short class (`SecretNotFound`, `AwsAccessDenied`, `AwsUnavailable`, `SecretFormat`, `AwsRegion`, `AwsSessionUnavailable`, `AwsError`) and the message is generic (never AWS's text, an ARN or an account id; the audit line has the full reason); the Kubernetes API refused the webhook (4xx, e.g. RBAC) |
 * | 503 | the Kubernetes API is unreachable, answers 5xx or 429: retryable |
 * | 504 | PIGGY_SECRET_TIMEOUT passed (the message names the step that did not finish): retryable |
 *
 * Checks run in Go's order: method, content type, token header, then the body (so a missing token is
 * 401 before any JSON parsing).
 *
 * Every request writes exactly one audit line: info on success, warn on 4xx, error on 5xx, with
 * `namespace`, `pod_name`, `service_account` (`ns:sa`), `secret_name` (or the SSM path) and
 * `status`; message `Request from [sa=ns:sa], [pod=name] was successful` or `… was error: <message>`
 * as Go Piggy. The token, the body and the values are never logged.
 *
 * @module
 */

import { ENV, LIMIT_ENV, TOKEN_HEADER } from "../constants.ts";
import { mayReadUnlisted, policyRefusal, secretDisplayName } from "../secrets/access_policy.ts";
import { podFacingError } from "./pod_answer.ts";
import {
  AccessDeniedError,
  AdmissionDecodeError,
  DeadlineExceededError,
  KubeApiError,
  KubeUnavailableError,
  PiggyError,
  SecretSourceError,
  toErrorBody,
  UnauthenticatedError,
} from "../errors.ts";
import type { KubeCallOptions, KubeClient } from "../k8s/client.ts";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import type { LogFields, Logger } from "../log.ts";
import { deepFreeze, type DeepReadonly, isDeepFrozen } from "../lookup_cache.ts";
import type { SecretSource } from "../secrets/source.ts";
import { resolveConfig } from "../config/resolve_config.ts";
import {
  authorizeValues,
  containerOfUid,
  decideSecretAccess,
  onlyReferencedKeys,
  type ResolvedSettings,
  type SecretDecision,
  type SecretRequest,
} from "./decide.ts";
import { acceptJsonPost, errorResponse, jsonResponse, readJsonBody } from "../http/envelope.ts";
import { gatherFacts, GatherFactsError } from "../pod/gather_facts.ts";
import { referencedSecretKeys } from "../pod/container_refs.ts";
import { settingLookup, type WebhookOptions } from "../config/webhook_options.ts";
import type { SealKey } from "../pod/seal.ts";
import { requireAdmissionSeal } from "./seal_check.ts";
import { reviewCaller, type ReviewedCaller } from "./token_review.ts";
import { startDeadline } from "../abort.ts";
import { setImmediate } from "node:timers";

/** Default limit of a `/secret` request body: Go launchers send about 200 bytes. */
export const DEFAULT_SECRET_BODY_LIMIT = 64 * 1024;

/**
 * Default deadline of one `/secret` request (PIGGY_SECRET_TIMEOUT): below the launcher's 10 s
 * per-attempt timeout, above one AWS attempt (3 s) and one Kubernetes call (3 s).
 */
export const SECRET_TIMEOUT_MS = 7_000;

/** Dependencies of {@link createSecretHandler}. */
export interface SecretHandlerDeps {
  /** Kubernetes API: TokenReview and pod reads. */
  kube: KubeClient;
  /** Where secret values come from. */
  secrets: SecretSource;
  /**
   * Webhook options: the settings fallbacks, `PIGGY_TOKEN_AUDIENCES`, `PIGGY_ANSWER_ALL_KEYS`,
   * `PIGGY_LEGACY_PODS` and its cutoff, and the lookup limits (each defaults to its option's
   * default when absent).
   */
  options:
    & Pick<
      WebhookOptions,
      | "settingEnv"
      | "tokenAudiences"
      | "answerAllKeys"
      | "legacyPods"
      | "legacyPodsCreatedBefore"
      | "accessGuard"
    >
    & Partial<
      Pick<
        WebhookOptions,
        "maxReferencedObjects" | "kubeLookupConcurrency" | "secretTimeoutMs" | "awsSessionRoleArn"
      >
    >;
  /** Sealing keys: a pod's seal must have been made with one of them (see `seal_check.ts`). */
  sealKeys: readonly SealKey[];
  /** Audit and diagnostics logger. */
  logger: Logger;
  /** Largest accepted body in bytes. @default DEFAULT_SECRET_BODY_LIMIT (64 KiB) */
  maxBodyBytes?: number;
  /** Told each answer's status and reason class (metrics). */
  onAnswer?: (status: number, reason: SecretReason) => void;
  /**
   * Reads the caller's pod, given the UID its token is bound to (a short cache, see
   * `CachingKubeClient.getBoundPod`): the pod may be shared with other requests, deep-frozen.
   * @default `kube.getPod`, a live read every time
   */
  readBoundPod?: (
    namespace: string,
    name: string,
    boundUid: string | undefined,
    options: KubeCallOptions,
  ) => Promise<DeepReadonly<Pod> | null>;
}

/** Why `/secret` answered as it did, in a few bounded classes (a metrics label). */
export const SECRET_REASONS = [
  "served",
  "bad_request",
  "unauthenticated",
  "forbidden",
  "pod_not_found",
  "aws_error",
  "kubernetes_error",
  "kubernetes_unavailable",
  "deadline",
  "internal",
  "audit_failed",
] as const;

/** One of {@link SECRET_REASONS}. */
export type SecretReason = typeof SECRET_REASONS[number];

/** The reason class of a failed `/secret` request, from its error and status. */
export function secretReason(error: unknown, status: number): SecretReason {
  if (error instanceof DeadlineExceededError) return "deadline";
  if (error instanceof SecretSourceError) return "aws_error";
  if (error instanceof KubeApiError) return "kubernetes_error";
  if (error instanceof KubeUnavailableError) return "kubernetes_unavailable";
  if (status === 401) return "unauthenticated";
  if (status === 403) return "forbidden";
  if (status === 404) return "pod_not_found";
  if (status >= 400 && status < 500) return "bad_request";
  return "internal";
}

/** The Kubernetes object name rules (DNS subdomain) a pod name follows. */
const POD_NAME_PATTERN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** What the audit line reports: as much as was known when the request ended. */
export interface SecretAudit {
  namespace?: string;
  podName?: string;
  serviceAccount?: string;
  secretLabel?: string;
}

/** One authenticated request: the token, the validated body and the request's abort signal. */
export interface SecretCall {
  token: string;
  body: SecretRequest;
  signal: AbortSignal;
}

/** Where {@link answerSecret} is: the step running now and what the audit line reports so far. */
export interface SecretProgress {
  /** The step running, as a message names it (e.g. `reading the secret from AWS`). */
  step: string;
  audit: SecretAudit;
}

/** What {@link answerSecret} returns: the values to send, or why not; and what to audit. */
export type SecretOutcome =
  | { values: Record<string, string>; audit: SecretAudit }
  | { error: unknown; audit: SecretAudit };

/** The `X-Token` header. @throws {UnauthenticatedError} missing or empty */
function readToken(request: Request): string {
  const token = request.headers.get(TOKEN_HEADER)?.trim() ?? "";
  if (token === "") {
    throw new UnauthenticatedError(
      `Token is not supplied: header "${TOKEN_HEADER}" is missing or empty`,
    );
  }
  return token;
}

/** Validates the body's shape. `resources` is informational (Go never read it). */
function parseSecretRequest(body: unknown): SecretRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new AdmissionDecodeError("Cannot decode request: body must be a JSON object");
  }
  const fields = body as Record<string, unknown>;
  const { name, uid = "", signature = "" } = fields;
  if (typeof name !== "string" || name === "") {
    throw new AdmissionDecodeError(`Cannot decode request: "name" must be a non-empty string`);
  }
  if (!POD_NAME_PATTERN.test(name)) {
    throw new AdmissionDecodeError(`Cannot decode request: "name" is not a valid pod name`);
  }
  if (typeof uid !== "string" || typeof signature !== "string") {
    throw new AdmissionDecodeError(
      `Cannot decode request: "uid" and "signature" must be strings`,
    );
  }
  return { name, uid, signature };
}

/**
 * Classifies a Kubernetes API failure: no answer, 5xx and 429 are "unavailable" (503, retryable);
 * other statuses (401/403: the webhook's own credentials or RBAC are wrong) stay a `KubeApiError`
 * (502), because retrying will not help and the caller is not at fault.
 */
function kubeFailure(error: unknown, what: string): unknown {
  if (error instanceof KubeUnavailableError) {
    return new KubeUnavailableError(`Cannot ${what}: ${error.message}`, { cause: error });
  }
  if (error instanceof KubeApiError) {
    if (error.status === 0 || error.status === 429 || error.status >= 500) {
      return new KubeUnavailableError(
        `Cannot ${what}: Kubernetes API answered ${error.status}`,
        { cause: error },
      );
    }
    return new KubeApiError(`Cannot ${what}: ${error.message}`, error.status, {
      cause: error,
      reason: error.reason,
    });
  }
  return error;
}

async function kubeCall<T>(call: Promise<T>, what: string): Promise<T> {
  try {
    return await call;
  } catch (error) {
    throw kubeFailure(error, what);
  }
}

/**
 * Reviews the token and checks who it belongs to; a token for the API server's audience (legacy
 * launchers) only under `PIGGY_LEGACY_PODS` (see {@link decide} for which pods). `onAuthenticated`
 * learns the service account of an authenticated token before any other check, so that the audit
 * line names it even when the token is then refused (e.g. a bound token replayed for another pod).
 */
function identify(
  deps: SecretHandlerDeps,
  call: SecretCall,
  onAuthenticated: (account: { namespace: string; serviceAccount: string }) => void,
): Promise<ReviewedCaller> {
  return kubeCall(
    reviewCaller(deps.kube, call.token, call.body.name, {
      audiences: deps.options.tokenAudiences,
      legacyPods: deps.options.legacyPods,
      onAuthenticated,
    }, { signal: call.signal }),
    "review token",
  );
}

/**
 * Refuses a token for the API server's audience sent for a container that admission gave Piggy's
 * projected token (`PIGGY_TOKEN_FILE` in its env, which cannot change): its launcher sends that
 * token, so an API-server token comes from elsewhere — another container of the pod (every
 * container holds the default token; a sidecar's image can be swapped by `update pods`, which the
 * seal does not cover), or an `exec` session. `PIGGY_LEGACY_PODS` is for launchers that were never
 * given the projected token.
 *
 * @throws {UnauthenticatedError} the container was admitted with the projected token
 */
function requireLegacyLauncher(deps: SecretHandlerDeps, decision: SecretDecision, uid: string) {
  const container = containerOfUid(decision.pod, uid);
  if (container.env?.some((entry) => entry?.name === ENV.TOKEN_FILE)) {
    throw new UnauthenticatedError(
      `Token is not valid for audience ${
        deps.options.tokenAudiences.map((audience) => `"${audience}"`).join(", ")
      }: container "${container.name}" was admitted with the projected token in ` +
        `${ENV.TOKEN_FILE}, so a token for the API server's audience is refused even under ` +
        "PIGGY_LEGACY_PODS",
    );
  }
  deps.logger.warn(
    "Accepting a token for the API server's audience under PIGGY_LEGACY_PODS (going away): " +
      `the launcher does not send the projected token for ${ENV.TOKEN_AUDIENCES}; re-create ` +
      "the pod so that it gets one",
    { namespace: decision.namespace, pod_name: decision.podName },
  );
}

/** The settings resolved from each deep-frozen pod object, for the options they were read with. */
const resolvedPods = new WeakMap<object, { options: object; settings: ResolvedSettings }>();

/**
 * The pod's settings (its annotations over the webhook's env). A deep-frozen pod (the pod cache's
 * read, shared by the requests within `PIGGY_POD_CACHE_TTL`) cannot change, so its settings are
 * resolved once per pod object and handed out frozen.
 */
function settingsOf(pod: Pod | null, options: SecretHandlerDeps["options"]): ResolvedSettings {
  const resolve = () => resolveConfig(pod?.metadata?.annotations ?? {}, settingLookup(options));
  if (pod === null || !isDeepFrozen(pod)) return resolve();
  const known = resolvedPods.get(pod);
  if (known?.options === options) return known.settings;
  const settings: ResolvedSettings = deepFreeze(resolve());
  resolvedPods.set(pod, { options, settings });
  return settings;
}

/** Reads the caller's live pod and decides on it. */
async function decide(
  deps: SecretHandlerDeps,
  { identity, legacyToken }: ReviewedCaller,
  call: SecretCall,
): Promise<SecretDecision> {
  // Only the token's namespace is ever read: a pod of another namespace is simply not found.
  const read = deps.readBoundPod
    ? deps.readBoundPod(identity.namespace, identity.podName, identity.podUid, {
      signal: call.signal,
    })
    : deps.kube.getPod(identity.namespace, identity.podName, { signal: call.signal });
  // Only read from here on: a cached pod is shared and deep-frozen (a write would throw).
  const pod = await kubeCall(read, `get pod "${identity.podName}"`) as Pod | null;
  // The seal first: nothing of a pod edited after admission is trusted, and the reason says so.
  const sealed = pod === null ? "sealed" : requireAdmissionSeal(pod, identity.namespace, {
    keys: deps.sealKeys,
    legacyPods: deps.options.legacyPods,
    legacyPodsCreatedBefore: deps.options.legacyPodsCreatedBefore,
  });
  const decision = decideSecretAccess({
    identity,
    pod,
    request: call.body,
    settings: settingsOf(pod, deps.options),
    guard: deps.options.accessGuard,
    warn: (message) => deps.logger.warn(message, { namespace: identity.namespace }),
  });
  if (legacyToken) requireLegacyLauncher(deps, decision, call.body.uid);
  if (sealed === "legacy") {
    deps.logger.warn(
      "Serving a pod without admission seal under PIGGY_LEGACY_PODS (going away): re-create it " +
        "to have it sealed",
      { namespace: identity.namespace, pod_name: identity.podName },
    );
  }
  return decision;
}

/**
 * The keys each deep-frozen container refers to, when they depend on nothing but the container (it
 * names no ConfigMap or Secret, whose contents can change and are read each time).
 */
const containerKeys = new WeakMap<object, ReadonlySet<string>>();

/**
 * The secret keys the calling container refers to, or `undefined` when the operator restored Go
 * Piggy's whole-secret answer. The ConfigMaps and Secrets its valueFrom/envFrom name are read (as
 * at admission) before AWS is. For a container of a shared (deep-frozen) pod that names none, the
 * keys are worked out once per container object.
 */
async function referencedKeys(
  deps: SecretHandlerDeps,
  decision: SecretDecision,
  call: SecretCall,
): Promise<ReadonlySet<string> | undefined> {
  const container = containerOfUid(decision.pod, call.body.uid);
  if (deps.options.answerAllKeys) return undefined;
  const frozen = isDeepFrozen(container);
  const known = frozen ? containerKeys.get(container) : undefined;
  if (known) return known;
  try {
    const facts = await gatherFacts(decision.pod, decision.namespace, deps.kube, {
      containers: [container],
      signal: call.signal,
      ...(deps.options.maxReferencedObjects
        ? { maxObjects: deps.options.maxReferencedObjects }
        : {}),
      ...(deps.options.kubeLookupConcurrency
        ? { concurrency: deps.options.kubeLookupConcurrency }
        : {}),
    });
    const keys = referencedSecretKeys(container, facts);
    if (frozen && facts.configMaps.size === 0 && facts.secrets.size === 0) {
      containerKeys.set(container, keys);
    }
    return keys;
  } catch (error) {
    throw kubeFailure(error instanceof GatherFactsError ? error.cause : error, "read references");
  }
}

/**
 * Fetches the decided query. A caller that the policy allows only if the secret lists it gets the
 * policy's refusal for any AWS failure (not found, AWS access denied, …), exactly as for a secret
 * that does not list it: it must not learn which names exist. The real reason goes to the log.
 */
async function fetchFor(
  deps: SecretHandlerDeps,
  decision: SecretDecision,
  call: SecretCall,
): Promise<Record<string, string>> {
  try {
    // With per-pod AWS sessions the read is made, and cached, as the pod's own identity.
    return await deps.secrets.fetchSecret(decision.query, {
      signal: call.signal,
      ...(deps.options.awsSessionRoleArn ? { identity: decision.serviceAccount } : {}),
    });
  } catch (error) {
    if (
      !(error instanceof SecretSourceError) ||
      mayReadUnlisted(decision.guard.policy, decision.inNamespace)
    ) {
      throw error;
    }
    deps.logger.warn("Secret read failed for a caller the secret must list; answered as refused", {
      namespace: decision.namespace,
      service_account: decision.serviceAccount,
      secret_name: decision.secretLabel,
      error_code: error.code,
      error: error.message,
    });
    throw new AccessDeniedError(
      policyRefusal(
        decision.guard,
        secretDisplayName(decision.secretLabel),
        decision.serviceAccount,
      ),
      { cause: error },
    );
  }
}

/**
 * Answers one authenticated `/secret` request: who calls, whether its live pod may read the
 * secret, which keys its container refers to, then the values. Never throws.
 */
export async function answerSecret(
  deps: SecretHandlerDeps,
  call: SecretCall,
  progress: SecretProgress = { step: "", audit: {} },
): Promise<SecretOutcome> {
  let audit: SecretAudit = { podName: call.body.name };
  const step = (name: string) => {
    progress.step = name;
    progress.audit = audit;
  };
  try {
    step("reviewing the token");
    const caller = await identify(deps, call, (account) => {
      audit = { ...audit, ...account };
    });
    const { identity } = caller;
    audit = { ...audit, namespace: identity.namespace, serviceAccount: identity.serviceAccount };
    step("reading the pod");
    const decision = await decide(deps, caller, call);
    audit = { ...audit, secretLabel: decision.secretLabel };
    step("reading the ConfigMaps and Secrets the container refers to");
    const keys = await referencedKeys(deps, decision, call);
    step("reading the secret from AWS");
    const values = await fetchFor(deps, decision, call);
    const allowed = authorizeValues(values, decision.serviceAccount, {
      guard: decision.guard,
      inNamespace: decision.inNamespace,
      secretLabel: secretDisplayName(decision.secretLabel),
    });
    return { values: keys === undefined ? allowed : onlyReferencedKeys(allowed, keys), audit };
  } catch (error) {
    return { error, audit };
  }
}

/**
 * {@link answerSecret} within PIGGY_SECRET_TIMEOUT: at the deadline every call still running is
 * aborted and the answer is a 504 naming the step that did not finish, whether or not that step
 * honours the abort.
 */
async function answerInTime(
  deps: SecretHandlerDeps,
  call: SecretCall,
  timeoutMs: number,
): Promise<SecretOutcome> {
  const deadline = startDeadline(timeoutMs, call.signal);
  const progress: SecretProgress = { step: "", audit: { podName: call.body.name } };
  const late = (): SecretOutcome => ({
    error: new DeadlineExceededError(
      `Cannot answer within ${LIMIT_ENV.SECRET_TIMEOUT} (${timeoutMs} ms): ${progress.step} ` +
        "did not finish",
      LIMIT_ENV.SECRET_TIMEOUT,
    ),
    audit: progress.audit,
  });
  let onDeadline = () => {};
  const timedOut = new Promise<SecretOutcome>((resolve) => {
    onDeadline = () => {
      if (deadline.expired) resolve(late());
    };
    deadline.signal.addEventListener("abort", onDeadline, { once: true });
  });
  try {
    const outcome = await Promise.race([
      answerSecret(deps, { ...call, signal: deadline.signal }, progress),
      timedOut,
    ]);
    // A step that failed because the deadline aborted it reports the deadline instead.
    return "error" in outcome && deadline.expired &&
        !(outcome.error instanceof DeadlineExceededError)
      ? late()
      : outcome;
  } finally {
    deadline.signal.removeEventListener("abort", onDeadline);
    deadline.dispose();
  }
}

/**
 * Writes the request's one audit line: info on success, warn on 4xx, error on 5xx (the handler
 * then waits for the line to be out before the answer leaves, see {@link createAuditGate}). Only
 * our own message is logged: causes may quote a secret's text (e.g. a JSON parse error).
 */
function writeAudit(logger: Logger, outcome: SecretOutcome, status: number, message: string) {
  const { audit } = outcome;
  let errorCode: string | undefined;
  if ("error" in outcome) {
    errorCode = toErrorBody(outcome.error).error;
    if (!(outcome.error instanceof PiggyError)) {
      const kind = outcome.error instanceof Error ? outcome.error.name : typeof outcome.error;
      errorCode = `${errorCode} (${kind})`;
    }
  }
  const fields: LogFields = {
    namespace: audit.namespace,
    pod_name: audit.podName,
    service_account: audit.serviceAccount,
    secret_name: audit.secretLabel,
    status,
    error_code: errorCode,
  };
  const line = `Request from [sa=${audit.serviceAccount ?? ""}], [pod=${audit.podName ?? ""}] ${
    "error" in outcome ? `was error: ${message}` : "was successful"
  }`;
  if (status < 400) logger.info(line, fields);
  else if (status < 500) logger.warn(line, fields);
  else logger.error(line, fields);
}

/**
 * Group commit of the audit lines: the answers ready within one event-loop turn wait for one
 * `logger.flush()` at the end of that turn (`setImmediate`: after the turn's I/O callbacks; a
 * `setTimeout(…, 0)` waited ~2 ms under Deno 2.8, on every `/secret` answer), which writes all
 * their lines at once; only then do they leave. No answer (and so no served secret) leaves before its audit line is written, and
 * under load one write carries the lines of many requests instead of one write each. Resolves to
 * false when the flush threw; a sink that counts its failed writes instead (the webhook's stderr
 * sink) is checked by the handler with `logger.writeFailures()`. Either way every answer waiting
 * for it is then replaced by a 500.
 */
function createAuditGate(logger: Logger): () => Promise<boolean> {
  let pending: Promise<boolean> | undefined;
  return () => {
    pending ??= new Promise<boolean>((resolve) => {
      setImmediate(() => {
        pending = undefined; // lines written from now on wait for the next write
        try {
          logger.flush();
          resolve(true);
        } catch {
          resolve(false);
        }
      });
    });
    return pending;
  };
}

/**
 * The error the pod is answered with: AWS failures become a short code and a generic message (no
 * ARN, no account id, no AWS text); everything else is ours and goes out as is. The audit line
 * keeps the full reason.
 */
function podFacing(outcome: { error: unknown; audit: SecretAudit }): unknown {
  const { error, audit } = outcome;
  if (!(error instanceof SecretSourceError)) return error;
  return podFacingError(error, secretDisplayName(audit.secretLabel ?? ""));
}

/**
 * Builds the `/secret` handler: the shared HTTP envelope, the token header, then
 * {@link answerSecret}. The handler never throws: every failure is an `{error, message}` JSON
 * answer, and every request writes one audit line.
 *
 * @example
 * ```ts
 * const options = parseWebhookOptions((name) => env[name]);
 * const handle = createSecretHandler({ kube, secrets, options, logger, sealKeys: [key] });
 * const response = await handle(request);
 * ```
 */
export function createSecretHandler(
  deps: SecretHandlerDeps,
): (request: Request) => Promise<Response> {
  const limit = deps.maxBodyBytes ?? DEFAULT_SECRET_BODY_LIMIT;
  const timeoutMs = deps.options.secretTimeoutMs ?? SECRET_TIMEOUT_MS;
  const audited = createAuditGate(deps.logger);

  return async function handleSecret(request: Request): Promise<Response> {
    let token = "";
    let outcome: SecretOutcome;
    try {
      acceptJsonPost(request);
      token = readToken(request);
      const body = parseSecretRequest(await readJsonBody(request, "request", { limit }));
      outcome = await answerInTime(deps, { token, body, signal: request.signal }, timeoutMs);
    } catch (error) {
      outcome = { error, audit: {} };
    }
    let response: Response;
    let reason: SecretReason = "served";
    // A write failure counted from here on may have lost this request's audit line.
    const failedWrites = deps.logger.writeFailures();
    if ("values" in outcome) {
      writeAudit(deps.logger, outcome, 200, "");
      response = jsonResponse(200, outcome.values);
    } else {
      // Defence in depth: never echo the token, even if an upstream message quoted it.
      const redact = (message: string) =>
        token.length >= 8 ? message.replaceAll(token, "[token]") : message;
      response = errorResponse(podFacing(outcome), redact);
      reason = secretReason(outcome.error, response.status);
      writeAudit(deps.logger, outcome, response.status, redact(toErrorBody(outcome.error).message));
    }
    if (!(await audited()) || deps.logger.writeFailures() !== failedWrites) {
      // The audit line may not have been written (stderr gone or full): nothing leaves without
      // it, no value and no other answer either.
      response = errorResponse(new Error("Cannot write the audit log line of this request"));
      reason = "audit_failed";
    }
    deps.onAnswer?.(response.status, reason);
    return response;
  };
}
