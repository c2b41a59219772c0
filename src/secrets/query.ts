/**
 * Builds the {@link SecretQuery} of the resolved settings, in one place for `/secret` and
 * piggy-env's standalone mode, and names a query for messages, audit lines and cache keys.
 *
 * @module
 */

import type { SecretQuery } from "./source.ts";

/** The settings that choose the secret (fields of `PiggyConfig`). */
export interface SecretSettings {
  /** `aws-secret-name`. */
  awsSecretName: string;
  /** `aws-ssm-parameter-path`: SSM wins over Secrets Manager when set. */
  awsSsmParameterPath: string;
  /** `aws-region`. */
  awsRegion: string;
  /** `aws-secret-version` (Secrets Manager only). */
  awsSecretVersion: string;
}

/** {@link SecretSettings} plus the parts of the default secret name (fields of `PiggyConfig`). */
export interface PodSecretSettings extends SecretSettings {
  /** `piggy-default-secret-name-prefix`. */
  piggyDefaultSecretNamePrefix: string;
  /** `piggy-default-secret-name-suffix`. */
  piggyDefaultSecretNameSuffix: string;
}

/**
 * The query of a proxy-mode pod: {@link secretQueryOf}, where a pod with neither a secret name nor
 * an SSM path reads the default name `<prefix><namespace>/<serviceaccount><suffix>`. Admission and
 * `/secret` both take it from here, so they judge the same name.
 */
export function podSecretQuery(
  settings: PodSecretSettings,
  namespace: string,
  serviceAccountName: string,
): SecretQuery | undefined {
  if (settings.awsSecretName !== "" || settings.awsSsmParameterPath !== "") {
    return secretQueryOf(settings);
  }
  return secretQueryOf({
    ...settings,
    awsSecretName: `${settings.piggyDefaultSecretNamePrefix}${namespace}/${serviceAccountName}` +
      settings.piggyDefaultSecretNameSuffix,
  });
}

/**
 * The query the settings select: SSM when a parameter path is set, else Secrets Manager when a
 * secret name is set, else none.
 *
 * @example
 * ```ts
 * secretQueryOf({ awsSecretName: "app/db", awsSsmParameterPath: "", awsRegion: "", awsSecretVersion: "" });
 * // → { kind: "secretsManager", name: "app/db", version: "", region: "" }
 * ```
 */
export function secretQueryOf(settings: SecretSettings): SecretQuery | undefined {
  if (settings.awsSsmParameterPath !== "") {
    return { kind: "ssm", path: settings.awsSsmParameterPath, region: settings.awsRegion };
  }
  if (settings.awsSecretName !== "") {
    return {
      kind: "secretsManager",
      name: settings.awsSecretName,
      version: settings.awsSecretVersion,
      region: settings.awsRegion,
    };
  }
  return undefined;
}

/** What the query reads, for audit lines: the secret name or the SSM path. */
export function queryLabel(query: SecretQuery): string {
  switch (query.kind) {
    case "secretsManager":
      return query.name;
    case "ssm":
      return query.path;
  }
}

/** The start of an error message about the query, e.g. `Cannot load secret "app/db"`. */
export function querySubject(query: SecretQuery): string {
  switch (query.kind) {
    case "secretsManager":
      return `Cannot load secret "${query.name}"`;
    case "ssm":
      return `Cannot load parameters under "${query.path}"`;
  }
}

/** A stable key of the query: its kind and fields, in name order (for caches). */
export function queryKey(query: SecretQuery): string {
  const entries = Object.entries(query).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(entries);
}
