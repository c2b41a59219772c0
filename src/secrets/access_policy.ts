/**
 * Which secrets a pod may read through the `/secret` proxy: the webhook's secret access policy, as
 * pure functions shared by admission (what can be known from the pod alone) and `/secret` (the
 * final decision, once the secret's `PIGGY_ALLOWED_SA` is known).
 *
 * In proxy mode the webhook's IAM role is every pod's IAM role, so the webhook alone decides:
 *
 * - `namespace` (default): a pod in namespace `ns` reads a Secrets Manager secret whose name starts
 *   with `<guard prefix>ns/`, an SSM path under `/<guard prefix>ns/` (compared segment by segment),
 *   or any secret whose `PIGGY_ALLOWED_SA` lists the pod's `ns:serviceaccount`;
 * - `allowed-sa`: the secret must list the pod in `PIGGY_ALLOWED_SA` (Go Piggy's
 *   `PIGGY_ENFORCE_SERVICE_ACCOUNT=true`);
 * - `any`: Go Piggy's default, for migration only: every secret without `PIGGY_ALLOWED_SA`.
 *
 * In every mode a secret that has `PIGGY_ALLOWED_SA` is read only by the service accounts it lists.
 * The guard prefix is the operator's (a webhook option): the pod annotation
 * `piggy-default-secret-name-prefix` changes only the default secret name, never the boundary.
 *
 * Secret ARNs are reduced to their name (`arn:<partition>:secretsmanager:<region>:<account>:secret:
 * <name>-<6 characters>`); any other text that starts with `arn:` is refused. SSM paths must be
 * absolute, without empty, `.` or `..` segments.
 *
 * @module
 */

import type { SecretQuery } from "./source.ts";

/** The values of `PIGGY_SECRET_ACCESS_POLICY`. */
export const SECRET_ACCESS_POLICIES = ["namespace", "allowed-sa", "any"] as const;

/** Which secrets a pod may read in proxy mode. */
export type SecretAccessPolicy = (typeof SECRET_ACCESS_POLICIES)[number];

/** Name of the webhook option that chooses the policy. */
export const ACCESS_POLICY_OPTION = "PIGGY_SECRET_ACCESS_POLICY";

/** Name of the webhook option that holds the guard prefix. */
export const GUARD_PREFIX_OPTION = "PIGGY_SECRET_NAME_GUARD_PREFIX";

/** The policy and the operator's prefix of every namespace's secrets. */
export interface AccessGuard {
  readonly policy: SecretAccessPolicy;
  /** Prefix of the namespace part of names and paths, e.g. `""` or `piggy/`. */
  readonly prefix: string;
}

/** Where a query points, relative to the caller's namespace. */
export interface QueryPlacement {
  /** True when the name or path is inside the namespace's part of the guard. */
  readonly inNamespace: boolean;
  /** The Secrets Manager name (ARN reduced to its name) or the SSM path, for messages. */
  readonly label: string;
}

/** Characters of a Secrets Manager secret name. */
const NAME_CHARACTERS = /^[A-Za-z0-9/_+=.@-]+$/;

/** A full Secrets Manager secret ARN: partition, region, account, name and the 6-character suffix. */
const SECRET_ARN =
  /^arn:aws(-cn|-us-gov|-iso(-[a-z])?)?:secretsmanager:[a-z]{2}(-[a-z]+)+-\d+:\d{12}:secret:(?<name>[A-Za-z0-9/_+=.@-]+)-[A-Za-z0-9]{6}$/;

/**
 * Parses `PIGGY_SECRET_ACCESS_POLICY`.
 *
 * @throws {SyntaxError} not one of the policies
 */
export function parseAccessPolicy(text: string): SecretAccessPolicy {
  const value = text.trim();
  const found = SECRET_ACCESS_POLICIES.find((policy) => policy === value);
  if (found === undefined) {
    throw new SyntaxError(`not one of ${SECRET_ACCESS_POLICIES.join(", ")}`);
  }
  return found;
}

/**
 * Parses the guard prefix: secret-name characters, segments separated by `/`, no empty, `.` or
 * `..` segment, no leading `/` (the SSM form adds it).
 *
 * @throws {SyntaxError} with the reason
 */
export function parseGuardPrefix(text: string): string {
  if (text === "") return "";
  if (!NAME_CHARACTERS.test(text)) {
    throw new SyntaxError("only letters, digits and /_+=.@- are allowed");
  }
  const segments = text.split("/");
  // A trailing "/" leaves one empty last segment, which is fine ("piggy/" → "piggy/<ns>/").
  const inner = text.endsWith("/") ? segments.slice(0, -1) : segments;
  if (inner.some((segment) => segment === "" || segment === "." || segment === "..")) {
    throw new SyntaxError("empty, . and .. segments are not allowed");
  }
  return text;
}

/**
 * The secret name of a Secrets Manager `SecretId`: the name itself, or the name inside a full
 * secret ARN.
 *
 * @returns the name, or `undefined` when the text starts with `arn:` but is not a full secret ARN
 * (partial ARNs, other services, other resource types)
 */
export function secretNameOf(secretId: string): string | undefined {
  if (!/^arn:/i.test(secretId)) return secretId;
  const match = SECRET_ARN.exec(secretId);
  return match?.groups?.name;
}

/**
 * How a secret is named to the pod and in refusals: the name inside a secret ARN (never the
 * account id it carries), else the label as written (a name, an SSM path or an ARN that does not
 * parse).
 */
export function secretDisplayName(label: string): string {
  return secretNameOf(label) ?? label;
}

/**
 * The segments of an SSM path, or `undefined` when it is not absolute or has an empty, `.` or
 * `..` segment (one trailing `/` is allowed).
 */
export function ssmPathSegments(path: string): string[] | undefined {
  if (!path.startsWith("/")) return undefined;
  const body = path.endsWith("/") && path.length > 1 ? path.slice(1, -1) : path.slice(1);
  const segments = body.split("/");
  if (segments.some((segment) => segment === "" || segment === "." || segment === "..")) {
    return undefined;
  }
  return segments;
}

/**
 * Places a query relative to the caller's namespace.
 *
 * @param query what the pod's settings select
 * @param namespace the caller's (token's) namespace
 * @param prefix the operator's guard prefix
 * @throws {RangeError} the secret id is an ARN that is not a full secret ARN, or the SSM path is
 * not absolute or has an empty, `.` or `..` segment (the message says which)
 */
export function placeQuery(query: SecretQuery, namespace: string, prefix: string): QueryPlacement {
  const base = `${prefix}${namespace}`;
  if (query.kind === "secretsManager") {
    const name = secretNameOf(query.name);
    if (name === undefined) {
      throw new RangeError(
        `Secret "${query.name}" is not a secret name or a full Secrets Manager secret ARN`,
      );
    }
    return { inNamespace: name.startsWith(`${base}/`), label: name };
  }
  const segments = ssmPathSegments(query.path);
  if (segments === undefined) {
    throw new RangeError(
      `SSM path "${query.path}" must start with "/" and have no empty, "." or ".." segment`,
    );
  }
  const guard = base.split("/");
  const inNamespace = segments.length >= guard.length &&
    guard.every((segment, index) => segments[index] === segment);
  return { inNamespace, label: query.path };
}

/** What {@link mayRead} decides on, once the secret is fetched. */
export interface ReadCheck {
  /** The secret's `PIGGY_ALLOWED_SA` entries, or `undefined` when it has none. */
  allowed: readonly string[] | undefined;
  /** The caller's `namespace:serviceaccount`. */
  serviceAccount: string;
  /** Whether the query is inside the caller's namespace ({@link placeQuery}). */
  inNamespace: boolean;
}

/**
 * Whether the policy lets the caller read the secret: a secret with `PIGGY_ALLOWED_SA` only by
 * those it lists, any other as {@link mayReadUnlisted} says.
 */
export function mayRead(policy: SecretAccessPolicy, check: ReadCheck): boolean {
  if (check.allowed !== undefined) return check.allowed.includes(check.serviceAccount);
  return mayReadUnlisted(policy, check.inNamespace);
}

/**
 * Whether the caller could be allowed without being listed in the secret's `PIGGY_ALLOWED_SA`:
 * only then may it learn that a secret does not exist, or why AWS refused.
 */
export function mayReadUnlisted(policy: SecretAccessPolicy, inNamespace: boolean): boolean {
  return policy === "any" || (policy === "namespace" && inNamespace);
}

/** The one refusal text of the policy, the same whether the secret exists or not. */
export function policyRefusal(
  guard: AccessGuard,
  label: string,
  serviceAccount: string,
): string {
  const rule = guard.policy === "namespace"
    ? `names under "${guard.prefix}<namespace>/" or secrets whose PIGGY_ALLOWED_SA lists it`
    : guard.policy === "allowed-sa"
    ? "secrets whose PIGGY_ALLOWED_SA lists it"
    : "secrets whose PIGGY_ALLOWED_SA lists it, or that have none";
  return `Service account "${serviceAccount}" may not read "${label}": ` +
    `${ACCESS_POLICY_OPTION}=${guard.policy} allows only ${rule}`;
}

/** What admission can tell about a proxy-mode pod's secret before any secret is read. */
export interface AdmissionFinding {
  /** Set when no content of any secret could let the pod read it: deny the pod. */
  denial?: string;
  /** Set when only the secret's `PIGGY_ALLOWED_SA` can let the pod read it. */
  warning?: string;
}

/**
 * Checks a pod's query at admission, where the secret's `PIGGY_ALLOWED_SA` is unknown: a name or
 * path that `/secret` always refuses is a denial naming the policy; a query that needs the secret
 * to list the pod is a warning.
 *
 * @param query the pod's query, with the default name filled in
 * @param serviceAccount the pod's `namespace:serviceaccount`
 */
export function checkAtAdmission(
  guard: AccessGuard,
  query: SecretQuery,
  serviceAccount: string,
): AdmissionFinding {
  const namespace = serviceAccount.slice(0, serviceAccount.indexOf(":"));
  let placement: QueryPlacement;
  try {
    placement = placeQuery(query, namespace, guard.prefix);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { denial: `${reason}: ${ACCESS_POLICY_OPTION}=${guard.policy} refuses it` };
  }
  if (mayReadUnlisted(guard.policy, placement.inNamespace)) return {};
  return {
    warning:
      `"${placement.label}" is served only if its PIGGY_ALLOWED_SA lists "${serviceAccount}" ` +
      `(${ACCESS_POLICY_OPTION}=${guard.policy}${
        guard.policy === "namespace" ? `, outside "${guard.prefix}${namespace}/"` : ""
      })`,
  };
}
