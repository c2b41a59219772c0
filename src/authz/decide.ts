/**
 * The `/secret` authorization decision, as pure functions: who the token belongs to
 * ({@link identifyCaller}), whether that caller may read the secret its pod is configured with
 * ({@link decideSecretAccess}), and what may leave the webhook once the values are fetched
 * ({@link authorizeValues}).
 *
 * Differences from Go Piggy 0.7, each refused rather than let
 * through:
 * - a token whose user is not `system:serviceaccount:<namespace>:<name>` (Go failed later, by luck);
 * - a pod-bound token (`user.extra` pod name/uid claims) used for another pod, or for a pod that was
 *   replaced under the same name (StatefulSets), or for a pod that is being deleted;
 * - with integrity on, a `uid` missing from `piggysec.com/piggy-uid` even when the signature is empty
 *   (Go compared the empty map lookup with the empty signature and let it through);
 * - a token whose reviewed audiences do not include one of `PIGGY_TOKEN_AUDIENCES` (the API
 *   server's own audience only under `PIGGY_LEGACY_PODS`, see `token_review.ts`).
 *
 * Legacy tokens without the bound claims (non-projected Secret-based tokens) fall back to the pod
 * name of the request, as Go Piggy did; on current clusters the default service-account token that
 * Go launchers send is projected and pod-bound, so the claims are normally present.
 *
 * @module
 */

import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import type { TokenReviewStatus } from "kubernetes-types/authentication/v1.d.ts";
import { ENV, PIGGY_UID_ANNOTATION } from "../constants.ts";
import { AccessDeniedError, NotFoundError, UnauthenticatedError } from "../errors.ts";
import type { resolveConfig } from "../config/resolve_config.ts";
import type { SecretQuery } from "../secrets/source.ts";
import { podSecretQuery, queryLabel } from "../secrets/query.ts";
import { allowedServiceAccounts, withoutReservedKeys } from "../secrets/filter.ts";
import { parseUidAnnotation } from "../pod/piggy_uid.ts";
import { type AccessGuard, mayRead, placeQuery, policyRefusal } from "../secrets/access_policy.ts";
import type { DeepReadonly } from "../lookup_cache.ts";

/** TokenReview `user.extra` key carrying the name of the pod a projected token is bound to. */
export const POD_NAME_CLAIM = "authentication.kubernetes.io/pod-name";

/** TokenReview `user.extra` key carrying the UID of the pod a projected token is bound to. */
export const POD_UID_CLAIM = "authentication.kubernetes.io/pod-uid";

const SERVICE_ACCOUNT_USER_PREFIX = "system:serviceaccount:";

/** Settings resolved from the live pod's annotations (what `resolveConfig` returns), read only. */
export type ResolvedSettings = DeepReadonly<
  Pick<ReturnType<typeof resolveConfig>, "config" | "problems">
>;

/** The body of a `/secret` request, after shape validation. */
export interface SecretRequest {
  /** Pod name the launcher claims (`PIGGY_POD_NAME`). */
  name: string;
  /** Per-container UID (`PIGGY_UID`). */
  uid: string;
  /** SHA-256 of the launcher's command line. */
  signature: string;
}

/** Who a reviewed token belongs to. */
export interface CallerIdentity {
  /** Namespace of the token's service account: the only namespace the caller may read. */
  namespace: string;
  /** Service account name, without namespace. */
  serviceAccountName: string;
  /** `namespace:name`, the form `PIGGY_ALLOWED_SA` and the audit log use. */
  serviceAccount: string;
  /** Pod to look up: the bound pod name claim, or the request's name for legacy tokens. */
  podName: string;
  /** UID of the bound pod, when the token carries the claim. */
  podUid?: string;
}

/** Options of {@link identifyCaller}. */
export interface IdentifyOptions {
  /**
   * Audiences the token was reviewed for; when non-empty, `status.audiences` must include one.
   * @default []
   */
  audiences?: readonly string[];
}

/** What {@link decideSecretAccess} allows: the pod it checked, the query to run, what to audit. */
export interface SecretDecision {
  /** The live pod the decision was made on. */
  pod: Pod;
  /** What to fetch. */
  query: SecretQuery;
  /** Token (and pod) namespace. */
  namespace: string;
  /** `namespace:name` of the caller. */
  serviceAccount: string;
  /** Pod name. */
  podName: string;
  /** Secret name, or the SSM path when SSM is used: for logs and messages. */
  secretLabel: string;
  /** The secret access policy the values are checked against. */
  guard: AccessGuard;
  /** Whether the query is inside the caller's namespace (see `placeQuery`). */
  inNamespace: boolean;
}

/** Input of {@link decideSecretAccess}. */
export interface DecideInput {
  /** Output of {@link identifyCaller} for the request's token. */
  identity: CallerIdentity;
  /** The live pod read from the API in `identity.namespace`, or `null` when it does not exist. */
  pod: Pod | null;
  /** The validated request body. */
  request: SecretRequest;
  /** `resolveConfig(livePod.metadata.annotations, envGet)`. */
  settings: ResolvedSettings;
  /** The webhook's secret access policy (`WebhookOptions.accessGuard`). */
  guard: AccessGuard;
  /** Receives non-fatal findings (e.g. an unparsable `piggy-uid` annotation). @default ignore */
  warn?: (message: string) => void;
}

/** What {@link authorizeValues} checks the values against. */
export interface AuthorizeValuesOptions {
  /** The secret access policy. */
  guard: AccessGuard;
  /** Whether the query is inside the caller's namespace (see `placeQuery`). */
  inNamespace: boolean;
  /** Secret name or SSM path, for the refusal message. @default "" */
  secretLabel?: string;
}

function singleClaim(
  extra: DeepReadonly<Record<string, string[]>> | undefined,
  key: string,
): string | undefined {
  const values = extra?.[key];
  if (values === undefined) return undefined;
  if (!Array.isArray(values) || values.length !== 1 || typeof values[0] !== "string") {
    throw new AccessDeniedError(`Cannot trust token: claim "${key}" must have exactly one value`);
  }
  return values[0];
}

/**
 * The service account of an authenticated TokenReview, for the audit line, before any other check:
 * `undefined` when the token is not authenticated or its user is not a service account.
 */
export function reviewedServiceAccount(
  status: DeepReadonly<TokenReviewStatus>,
): { namespace: string; serviceAccount: string } | undefined {
  if (status.authenticated !== true || status.error) return undefined;
  const account = serviceAccountOfUser(status.user?.username ?? "");
  return account && { namespace: account[0], serviceAccount: account.join(":") };
}

/** `[namespace, name]` of a `system:serviceaccount:<namespace>:<name>` user, else `undefined`. */
function serviceAccountOfUser(username: string): [string, string] | undefined {
  if (!username.startsWith(SERVICE_ACCOUNT_USER_PREFIX)) return undefined;
  const parts = username.slice(SERVICE_ACCOUNT_USER_PREFIX.length).split(":");
  const [namespace, name] = parts;
  return parts.length === 2 && namespace && name ? [namespace, name] : undefined;
}

/**
 * Checks a TokenReview status and extracts the caller's service account and bound pod.
 *
 * @param status what the API answered for the request's token
 * @param requestName the pod name of the request body
 * @throws {UnauthenticatedError} token not authenticated, or no expected audience
 * @throws {AccessDeniedError} not a service account, or bound to another pod than `requestName`
 */
export function identifyCaller(
  status: DeepReadonly<TokenReviewStatus>,
  requestName: string,
  options: IdentifyOptions = {},
): CallerIdentity {
  if (status.authenticated !== true || status.error) {
    const detail = status.error ? `: ${status.error}` : "";
    throw new UnauthenticatedError(`Token is not authenticated${detail}`);
  }
  const audiences = options.audiences ?? [];
  if (audiences.length > 0) {
    // An empty status.audiences means "valid for the API server" (TokenReview v1 docs): refuse.
    const granted = status.audiences ?? [];
    if (!granted.some((audience) => audiences.includes(audience))) {
      throw new UnauthenticatedError(
        `Token is not valid for audience ${audiences.map((a) => `"${a}"`).join(", ")}`,
      );
    }
  }
  const username = status.user?.username ?? "";
  const account = serviceAccountOfUser(username);
  if (!account) throw new AccessDeniedError(`User "${username}" is not a service account`);
  const [namespace, serviceAccountName] = account;
  const boundName = singleClaim(status.user?.extra, POD_NAME_CLAIM);
  const boundUid = singleClaim(status.user?.extra, POD_UID_CLAIM);
  if (boundName !== undefined && boundName !== requestName) {
    throw new AccessDeniedError(
      `Token is bound to pod "${boundName}", not to pod "${requestName}"`,
    );
  }
  const identity: CallerIdentity = {
    namespace,
    serviceAccountName,
    serviceAccount: `${namespace}:${serviceAccountName}`,
    podName: boundName ?? requestName,
  };
  if (boundUid !== undefined) identity.podUid = boundUid;
  return identity;
}

/** Compares two strings in time independent of where they differ. */
function equalStrings(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let index = 0; index < a.length; index++) {
    difference |= a.charCodeAt(index) ^ b.charCodeAt(index);
  }
  return difference === 0;
}

/**
 * Decides whether the caller may read the secret configured on its live pod, and which one.
 *
 * Order: pod exists → same bound UID → not being deleted → same service account → no denying
 * settings problem → uid (and signature, with integrity on) listed in `piggysec.com/piggy-uid`.
 *
 * @throws {NotFoundError} the pod does not exist in the token's namespace
 * @throws {AccessDeniedError} any other refusal, with a message saying why
 */
export function decideSecretAccess(input: DecideInput): SecretDecision {
  const { identity, pod, request, settings } = input;
  const { namespace, podName } = identity;
  if (pod === null) {
    throw new NotFoundError(`Pod "${podName}" not found in namespace "${namespace}"`);
  }
  const liveUid = pod.metadata?.uid ?? "";
  if (identity.podUid !== undefined && identity.podUid !== liveUid) {
    throw new AccessDeniedError(
      `Token is bound to pod uid "${identity.podUid}" but pod "${podName}" has uid "${liveUid}"`,
    );
  }
  if (pod.metadata?.deletionTimestamp) {
    throw new AccessDeniedError(`Pod "${podName}" is being deleted`);
  }
  const podServiceAccount = `${namespace}:${pod.spec?.serviceAccountName ?? ""}`;
  if (podServiceAccount !== identity.serviceAccount) {
    throw new AccessDeniedError(
      `Invalid service account found "${podServiceAccount}", expected "${identity.serviceAccount}"`,
    );
  }
  const denial = settings.problems.find((problem) => problem.deny);
  if (denial) throw new AccessDeniedError(denial.message);

  const { config } = settings;
  const { signatures, problem } = parseUidAnnotation(
    pod.metadata?.annotations?.[PIGGY_UID_ANNOTATION],
  );
  if (problem) input.warn?.(problem);
  const expected = request.uid === "" ? undefined : signatures.get(request.uid);
  if (config.piggyEnforceIntegrity) {
    // A missing uid never matches, not even an empty signature (Go Piggy compared the missing entry with an empty signature and let it through).
    if (expected === undefined || !equalStrings(expected, request.signature)) {
      throw new AccessDeniedError(`Invalid signature for pod "${podName}"`);
    }
  } else if (expected === undefined) {
    throw new AccessDeniedError(`Invalid uid for pod "${podName}"`);
  }

  const query = podSecretQuery(config, namespace, identity.serviceAccountName);
  if (!query) throw new AccessDeniedError(`No secret is configured for pod "${podName}"`);
  let inNamespace: boolean;
  try {
    // The operator's guard prefix, never the pod's default-name prefix, draws the boundary.
    inNamespace = placeQuery(query, namespace, input.guard.prefix).inNamespace;
  } catch (error) {
    throw new AccessDeniedError(error instanceof Error ? error.message : String(error));
  }
  return {
    pod,
    query,
    namespace,
    serviceAccount: identity.serviceAccount,
    podName,
    secretLabel: queryLabel(query),
    guard: input.guard,
    inNamespace,
  };
}

/**
 * Applies the secret access policy (see `access_policy.ts`) with the secret's `PIGGY_ALLOWED_SA`
 * (comma-separated `namespace:name`, entries trimmed), then drops the reserved keys.
 *
 * @param values every key of the fetched secret (not modified)
 * @param callerSa `namespace:name` of the caller
 * @returns a new map without {@link RESERVED_KEYS}
 * @throws {AccessDeniedError} the caller may not read the secret (the message names the policy)
 */
export function authorizeValues(
  values: Readonly<Record<string, string>>,
  callerSa: string,
  options: AuthorizeValuesOptions,
): Record<string, string> {
  const allowed = allowedServiceAccounts(values);
  if (
    !mayRead(options.guard.policy, {
      allowed,
      serviceAccount: callerSa,
      inNamespace: options.inNamespace,
    })
  ) {
    throw new AccessDeniedError(policyRefusal(options.guard, options.secretLabel ?? "", callerSa));
  }
  return withoutReservedKeys(values);
}

/**
 * The container (init or app) of the live pod whose `PIGGY_UID` is the request's uid: the
 * container the launcher runs in, whose references bound what `/secret` answers.
 *
 * @throws {AccessDeniedError} no container of the pod has that uid
 */
export function containerOfUid(pod: Pod, uid: string): Container {
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  const found = containers.find((container) =>
    container.env?.some((entry) => entry.name === ENV.UID && entry.value === uid)
  );
  if (!found || uid === "") {
    throw new AccessDeniedError(
      `No container of pod "${pod.metadata?.name ?? ""}" runs with uid "${uid}"`,
    );
  }
  return found;
}

/**
 * Keeps only the keys the container refers to (Go Piggy answered every key of the secret).
 *
 * @param values the authorized values (reserved keys already removed)
 * @param keys the secret keys the container's environment refers to
 */
export function onlyReferencedKeys(
  values: Readonly<Record<string, string>>,
  keys: ReadonlySet<string>,
): Record<string, string> {
  return Object.fromEntries(Object.entries(values).filter(([key]) => keys.has(key)));
}
