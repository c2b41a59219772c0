/**
 * Opt-in per-pod AWS identity for the webhook's `/secret` proxy (`PIGGY_AWS_SESSION_ROLE_ARN`):
 * each read is made with credentials of `sts:AssumeRole` on one role, tagged with the
 * authenticated pod's `kubernetes-namespace` and `kubernetes-service-account`, so IAM policies can
 * scope by `aws:PrincipalTag/…` as EKS Pod Identity does. The webhook's own identity (IRSA, Pod
 * Identity) only assumes the role; it never reads a secret itself in this mode.
 *
 * - Sessions are per `namespace:serviceaccount` ({@link SecretFetchOptions.identity}, required:
 *   a read without it is refused rather than made with a broader identity). Tags are not
 *   transitive.
 * - Credentials are kept until one minute before they expire, one AssumeRole in flight per
 *   identity; at most `maxSessions` identities are kept (least recently used dropped, its clients
 *   closed).
 * - A failed AssumeRole is never cached. The caller gets a short code and a message without the
 *   role ARN or account; the full AWS reason goes to the log.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/nested-clients/sts";
import { AwsSecretSource } from "./aws_source.ts";
import type { AwsCredentialProvider, AwsSecretSourceOptions } from "./aws_clients.ts";
import { isRetryableAwsError, retriesAndTimeouts } from "./aws_clients.ts";
import { type AwsCallObserver, observeAwsCalls } from "./aws_metrics.ts";
import { podCredentialProvider } from "./aws_credentials.ts";
import type { SecretFetchOptions, SecretQuery, SecretSource } from "./source.ts";
import { IAM_ROLE_ARN_PATTERN } from "../constants.ts";
import { SecretSourceError } from "../errors.ts";
import type { Logger } from "../log.ts";

/** Session tag with the pod's namespace. */
export const NAMESPACE_TAG = "kubernetes-namespace";
/** Session tag with the pod's service account name. */
export const SERVICE_ACCOUNT_TAG = "kubernetes-service-account";

/** Error code of a failed AssumeRole, as the caller sees it. */
export const SESSION_ERROR_CODE = "AwsSessionUnavailable";

/** Credentials are renewed this long before they expire. */
export const SESSION_REFRESH_BEFORE_MS = 60_000;

/** Longest RoleSessionName AWS accepts. */
const MAX_SESSION_NAME = 64;
/** Characters AWS accepts in a RoleSessionName. */
const SESSION_NAME_CHARS = /[^\w+=,.@-]/g;

/** Options of {@link SessionSecretSource}. */
export interface SessionSecretSourceOptions {
  /** The role every session assumes. */
  roleArn: string;
  /** `DurationSeconds` of AssumeRole (900..43200). @default 900 */
  durationSeconds?: number;
  /** Most identities whose sessions (and clients) are kept. @default 256 */
  maxSessions?: number;
  /** Region of the STS client. */
  stsRegion: string;
  /**
   * Credentials that call AssumeRole. @default {@link podCredentialProvider} (the webhook's own
   * identity, never the node's unless `allowInstanceMetadata`)
   */
  credentials?: AwsCredentialProvider;
  /** Settings of the per-session Secrets Manager and SSM clients (and of the STS client). */
  clients?: Omit<AwsSecretSourceOptions, "credentials" | "logger" | "observe">;
  /** Full reasons of AssumeRole failures, and one debug line per new session. */
  logger?: Logger;
  /** Told about every AWS call, AssumeRole included (metrics). */
  observe?: AwsCallObserver;
  /** Millisecond clock. @default Date.now */
  clock?: () => number;
}

interface SessionCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

interface Session {
  source: AwsSecretSource;
  credentials?: SessionCredentials;
  pending?: Promise<SessionCredentials> | undefined;
}

/**
 * The RoleSessionName of an identity: `namespace@serviceaccount` (both DNS names, so already in
 * AWS's character set and unambiguous), cut to 64 characters with a hash of the whole identity
 * when longer or when it had to be changed.
 */
export function roleSessionName(namespace: string, serviceAccount: string): string {
  const plain = `${namespace}@${serviceAccount}`;
  const safe = plain.replace(SESSION_NAME_CHARS, "-");
  if (safe === plain && safe.length <= MAX_SESSION_NAME && safe.length >= 2) return safe;
  const hash = createHash("sha256").update(plain).digest("hex").slice(0, 12);
  return `${safe.slice(0, MAX_SESSION_NAME - hash.length - 1)}.${hash}`;
}

/** What the caller is told when AssumeRole failed (the log has the reason). */
function sessionUnavailable(retryable: boolean): SecretSourceError {
  return new SecretSourceError(
    "Cannot read AWS: the webhook could not start this pod's AWS session (the webhook log has " +
      "the reason)",
    { code: SESSION_ERROR_CODE, retryable },
  );
}

/**
 * Splits `namespace:serviceaccount`.
 *
 * @throws {SecretSourceError} `SessionIdentityMissing` when the identity is absent or malformed
 */
function parseIdentity(identity: string | undefined): [string, string] {
  const at = identity?.indexOf(":") ?? -1;
  const namespace = at > 0 ? identity?.slice(0, at) ?? "" : "";
  const serviceAccount = at > 0 ? identity?.slice(at + 1) ?? "" : "";
  const name = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
  if (!name.test(namespace) || !name.test(serviceAccount)) {
    throw new SecretSourceError(
      "Cannot read AWS with a session role: the caller's namespace and service account are unknown",
      { code: "SessionIdentityMissing" },
    );
  }
  return [namespace, serviceAccount];
}

/** Reads secrets with a per-`namespace:serviceaccount` AssumeRole session (see the module doc). */
export class SessionSecretSource implements SecretSource {
  readonly #roleArn: string;
  readonly #durationSeconds: number;
  readonly #maxSessions: number;
  readonly #clock: () => number;
  readonly #logger: Logger | undefined;
  readonly #observe: AwsCallObserver | undefined;
  readonly #clientOptions: Omit<AwsSecretSourceOptions, "credentials" | "logger" | "observe">;
  readonly #sts: STSClient;
  readonly #sessions = new Map<string, Session>();

  /**
   * Creates the source; no network call happens before the first fetch.
   *
   * @throws {RangeError} when the role ARN, duration or size is not valid
   */
  constructor(options: SessionSecretSourceOptions) {
    this.#roleArn = options.roleArn;
    this.#durationSeconds = options.durationSeconds ?? 900;
    this.#maxSessions = options.maxSessions ?? 256;
    this.#clock = options.clock ?? Date.now;
    this.#logger = options.logger;
    this.#observe = options.observe;
    this.#clientOptions = options.clients ?? {};
    if (!IAM_ROLE_ARN_PATTERN.test(this.#roleArn)) {
      throw new RangeError(`Cannot use role ARN "${this.#roleArn}": not an IAM role ARN`);
    }
    if (
      !Number.isInteger(this.#durationSeconds) || this.#durationSeconds < 900 ||
      this.#durationSeconds > 43_200
    ) {
      throw new RangeError(
        `Cannot use durationSeconds "${this.#durationSeconds}": expected 900..43200`,
      );
    }
    if (!Number.isInteger(this.#maxSessions) || this.#maxSessions < 1) {
      throw new RangeError(`Cannot use maxSessions "${this.#maxSessions}": expected >= 1`);
    }
    this.#sts = new STSClient({
      region: options.stsRegion,
      credentials: options.credentials ?? podCredentialProvider({
        allowInstanceMetadata: this.#clientOptions.allowInstanceMetadata ?? false,
        stsRegion: options.stsRegion,
      }),
      ...retriesAndTimeouts(this.#clientOptions),
    });
    if (this.#observe) observeAwsCalls(this.#sts, this.#observe);
  }

  /** Identities whose session is kept. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /**
   * Reads with the session of `options.identity` (`namespace:serviceaccount`).
   *
   * @throws {SecretSourceError} `SessionIdentityMissing`, {@link SESSION_ERROR_CODE} (AssumeRole
   * failed), or what the AWS source throws
   */
  async fetchSecret(
    query: SecretQuery,
    options: SecretFetchOptions = {},
  ): Promise<Record<string, string>> {
    const [namespace, serviceAccount] = parseIdentity(options.identity);
    return await this.#session(namespace, serviceAccount).source.fetchSecret(query, options);
  }

  /** Closes every client and forgets every session. */
  destroy(): void {
    for (const session of this.#sessions.values()) session.source.destroy();
    this.#sessions.clear();
    this.#sts.destroy();
  }

  #session(namespace: string, serviceAccount: string): Session {
    const key = `${namespace}:${serviceAccount}`;
    let session = this.#sessions.get(key);
    if (session) {
      this.#sessions.delete(key); // most recently used goes last
    } else {
      for (const [oldest, evicted] of this.#sessions) {
        if (this.#sessions.size < this.#maxSessions) break;
        this.#sessions.delete(oldest);
        evicted.source.destroy();
      }
      const created: Session = {
        source: new AwsSecretSource({
          ...this.#clientOptions,
          ...(this.#logger ? { logger: this.#logger } : {}),
          ...(this.#observe ? { observe: this.#observe } : {}),
          credentials: () => this.#credentials(created, namespace, serviceAccount),
        }),
      };
      session = created;
    }
    this.#sessions.set(key, session);
    return session;
  }

  /** The session's credentials: cached until a minute before expiry, one AssumeRole at a time. */
  #credentials(
    session: Session,
    namespace: string,
    serviceAccount: string,
  ): Promise<SessionCredentials> {
    const cached = session.credentials;
    if (cached && cached.expiration.getTime() - this.#clock() > SESSION_REFRESH_BEFORE_MS) {
      return Promise.resolve(cached);
    }
    session.pending ??= this.#assumeRole(namespace, serviceAccount).then((credentials) => {
      session.credentials = credentials;
      return credentials;
    }).finally(() => {
      session.pending = undefined;
    });
    return session.pending;
  }

  async #assumeRole(namespace: string, serviceAccount: string): Promise<SessionCredentials> {
    const sessionName = roleSessionName(namespace, serviceAccount);
    let credentials;
    try {
      const output = await this.#sts.send(
        new AssumeRoleCommand({
          RoleArn: this.#roleArn,
          RoleSessionName: sessionName,
          DurationSeconds: this.#durationSeconds,
          Tags: [
            { Key: NAMESPACE_TAG, Value: namespace },
            { Key: SERVICE_ACCOUNT_TAG, Value: serviceAccount },
          ],
        }),
      );
      credentials = output.Credentials;
    } catch (error) {
      const shape = (error ?? {}) as { name?: unknown; message?: unknown };
      const code = typeof shape.name === "string" ? shape.name : "UnknownError";
      this.#logger?.error(
        `AssumeRole of ${this.#roleArn} for ${namespace}:${serviceAccount} failed: ${code}: ${
          String(shape.message ?? "").replace(/\s+/g, " ").slice(0, 300)
        }`,
        { namespace, service_account: `${namespace}:${serviceAccount}`, error_code: code },
      );
      throw sessionUnavailable(isRetryableAwsError(error));
    }
    const { AccessKeyId, SecretAccessKey, SessionToken, Expiration } = credentials ?? {};
    if (!AccessKeyId || !SecretAccessKey || !SessionToken || !(Expiration instanceof Date)) {
      this.#logger?.error(
        `AssumeRole of ${this.#roleArn} for ${namespace}:${serviceAccount} answered no credentials`,
        { namespace, service_account: `${namespace}:${serviceAccount}` },
      );
      throw sessionUnavailable(false);
    }
    this.#logger?.debug(`AWS session ${sessionName} started`, {
      namespace,
      service_account: `${namespace}:${serviceAccount}`,
    });
    return {
      accessKeyId: AccessKeyId,
      secretAccessKey: SecretAccessKey,
      sessionToken: SessionToken,
      expiration: Expiration,
    };
  }
}
