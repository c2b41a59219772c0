/**
 * The secret-source interface shared by the webhook's `/secret` proxy and piggy-env's standalone
 * mode. A query is a tagged union by backend `kind`; {@link secretQueryOf} in `query.ts` builds it
 * from the resolved settings, and `RouterSecretSource` hands it to the source of its kind.
 *
 * @module
 */

/** Read every key of one AWS Secrets Manager secret (a JSON object of strings). */
export interface SecretsManagerQuery {
  readonly kind: "secretsManager";
  /** `SecretId`: name or ARN. */
  readonly name: string;
  /**
   * A `VersionId` when it has the shape of one, otherwise a `VersionStage`; empty means
   * `AWSCURRENT`.
   */
  readonly version: string;
  /** AWS region; empty means the SDK's own chain (`AWS_REGION`, profile, …). */
  readonly region: string;
}

/** Read every AWS SSM Parameter Store parameter under a path (recursively, decrypted). */
export interface SsmQuery {
  readonly kind: "ssm";
  /** Parameter path, e.g. `/app/prod`. */
  readonly path: string;
  /** AWS region; empty means the SDK's own chain. */
  readonly region: string;
}

/** What to read, after settings are resolved: one member per backend. */
export type SecretQuery = SecretsManagerQuery | SsmQuery;

/** The backend a query is for. */
export type SecretKind = SecretQuery["kind"];

/** Per-call options. */
export interface SecretFetchOptions {
  /** Aborts the call. */
  signal?: AbortSignal;
  /**
   * Names the AWS identity the read is made with when it is not the webhook's own, e.g. a
   * session for one `namespace:serviceaccount`. Caches keep reads of different identities apart.
   * @default the webhook's own identity
   */
  identity?: string;
}

/**
 * Reads a secret as a flat map of string values. Reserved `PIGGY_*` keys (such as
 * `PIGGY_ALLOWED_SA`) are included; callers filter them before anything leaves the process.
 *
 * Failures are `SecretSourceError` whose `code` is the backend's error name.
 */
export interface SecretSource<Q extends SecretQuery = SecretQuery> {
  /** Fetches every key of the secret (or every parameter under the path). */
  fetchSecret(query: Q, options?: SecretFetchOptions): Promise<Record<string, string>>;
}
