/**
 * The secret-source interface shared by the webhook's `/secret` proxy and piggy-env's standalone
 * mode.
 *
 * @module
 */

/** What to read, after settings are resolved. */
export interface SecretQuery {
  /** Secrets Manager `SecretId` (name or ARN); used when `ssmParameterPath` is empty. */
  secretName: string;
  /** SSM Parameter Store path; when non-empty SSM is read instead of Secrets Manager. */
  ssmParameterPath: string;
  /** AWS region; empty means the SDK's own chain (`AWS_REGION`, profile, …). */
  region: string;
  /**
   * Secrets Manager version: a `VersionId` when it has the shape of one, otherwise a
   * `VersionStage`; empty means `AWSCURRENT`.
   */
  version: string;
}

/** Per-call options. */
export interface SecretFetchOptions {
  /** Aborts the call. */
  signal?: AbortSignal;
}

/**
 * Reads a secret as a flat map of string values. Reserved `PIGGY_*` keys (such as
 * `PIGGY_ALLOWED_SA`) are included; callers filter them before anything leaves the process.
 *
 * Failures are `SecretSourceError` whose `code` is the AWS error name.
 */
export interface SecretSource {
  /** Fetches every key of the secret or every parameter under the path. */
  fetchSecret(query: SecretQuery, options?: SecretFetchOptions): Promise<Record<string, string>>;
}
