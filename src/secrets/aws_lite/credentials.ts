/**
 * The credential chain of the light AWS client: the links of `podCredentialProvider`
 * (`../aws_credentials.ts`) that a pod uses, in the same order and with the same rules, without
 * the SDK —
 *
 * 1. environment keys: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`,
 *    `AWS_CREDENTIAL_EXPIRATION`);
 * 2. IRSA web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (+ `AWS_ROLE_SESSION_NAME`)
 *    exchanged with STS `AssumeRoleWithWebIdentity` (unsigned, query protocol, XML answer) in the
 *    calling client's region at the regional endpoint (or `AWS_ENDPOINT_URL_STS`);
 * 3. EKS Pod Identity / container credentials: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (on
 *    169.254.170.2) or `AWS_CONTAINER_CREDENTIALS_FULL_URI`, with the token of
 *    `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or `AWS_CONTAINER_AUTHORIZATION_TOKEN`. A full URI
 *    must be `https:`, or `http:` to a loopback address, `localhost`, the ECS host 169.254.170.2
 *    or the EKS Pod Identity hosts 169.254.170.23 / [fd00:ec2::23] (the SDK's rule). 1 s timeout,
 *    3 retries 1 s apart; any failure here moves on, as in the SDK, except an answer over the size
 *    limit (`PIGGY_AWS_MAX_ANSWER_BYTES`), which fails the chain;
 * 4. otherwise the same "Cannot find AWS credentials" error as the SDK chain: the node's instance
 *    role is never used.
 *
 * The shared config and credentials files are not read here: `choose.ts` sends a process that has
 * them (or `AWS_PROFILE`) to the SDK. Credentials are kept until five minutes before they expire.
 * Tokens and keys are never logged.
 *
 * @module
 */

import type { Logger } from "../../log.ts";
import { endpointFor, type EnvGet, STS } from "./endpoints.ts";
import { type AwsHttp, decodeXml } from "./http.ts";
import type { AwsCredentials } from "./sigv4.ts";

/** What the chain reads. */
export interface CredentialChainDeps {
  env: EnvGet;
  /** Reads a text file (token files). */
  readTextFile(path: string): Promise<string>;
  /** The STS calls (retries, timeouts) and the container credential GETs go through it. */
  http: AwsHttp;
  /** Receives which link answered (never a credential). */
  logger?: Logger | undefined;
  /** Container credential attempts: timeout and spacing, in milliseconds. @default 1000 */
  containerTimeoutMs?: number;
}

/** A credential source: `undefined` when it does not apply (the chain tries the next). */
type Link = (region: string, signal?: AbortSignal) => Promise<AwsCredentials | undefined>;

/** The error the SDK chain's last link throws (same name and text). */
export class CredentialsProviderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CredentialsProviderError";
  }
}

export const NO_CREDENTIALS_MESSAGE = "Cannot find AWS credentials: no IRSA web identity " +
  "(AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE), EKS Pod Identity " +
  "(AWS_CONTAINER_CREDENTIALS_FULL_URI), environment keys or shared profile; the node's " +
  "instance role is not used";

const REFRESH_BEFORE_MS = 5 * 60_000;
const ECS_HOST = "169.254.170.2";
const EKS_HOSTS = new Set(["169.254.170.23", "[fd00:ec2::23]"]);

/** True when the SDK's container provider accepts `url` (see the module comment). */
export function containerUrlAllowed(url: URL): boolean {
  if (url.protocol === "https:") return true;
  if (url.protocol !== "http:") return false;
  const host = url.hostname;
  if (host === ECS_HOST || EKS_HOSTS.has(host)) return true;
  if (host.includes("[")) return host === "[::1]";
  if (host === "localhost") return true;
  const parts = host.split(".");
  return parts.length === 4 && parts[0] === "127" &&
    parts.slice(1).every((part) => /^\d+$/.test(part) && Number(part) <= 255);
}

function readError(what: string, path: string, error: unknown): Error {
  const code = (error as { code?: unknown } | null)?.code;
  return Object.assign(
    new Error(`Cannot read the ${what} "${path}": ${(error as Error)?.message ?? error}`),
    typeof code === "string" ? { code } : {},
  );
}

function fromEnvironment(env: EnvGet): Link {
  return () => {
    const accessKeyId = env("AWS_ACCESS_KEY_ID");
    const secretAccessKey = env("AWS_SECRET_ACCESS_KEY");
    if (!accessKeyId || !secretAccessKey) return Promise.resolve(undefined);
    const sessionToken = env("AWS_SESSION_TOKEN");
    const expiry = env("AWS_CREDENTIAL_EXPIRATION");
    return Promise.resolve({
      accessKeyId,
      secretAccessKey,
      ...(sessionToken ? { sessionToken } : {}),
      ...(expiry ? { expiration: new Date(expiry) } : {}),
    });
  };
}

function fromWebIdentity(deps: CredentialChainDeps): Link {
  return async (region, signal) => {
    const tokenFile = deps.env("AWS_WEB_IDENTITY_TOKEN_FILE");
    const roleArn = deps.env("AWS_ROLE_ARN");
    if (!tokenFile || !roleArn) return undefined;
    let token: string;
    try {
      token = await deps.readTextFile(tokenFile);
    } catch (error) {
      throw readError("web identity token file", tokenFile, error);
    }
    const form = new URLSearchParams({
      Action: "AssumeRoleWithWebIdentity",
      Version: "2011-06-15",
      RoleArn: roleArn,
      RoleSessionName: deps.env("AWS_ROLE_SESSION_NAME") || `aws-sdk-js-session-${Date.now()}`,
      WebIdentityToken: token,
    });
    const stsRegion = region || "us-east-1";
    const answer = await deps.http.send({
      service: STS,
      region: stsRegion,
      endpoint: endpointFor(STS, stsRegion, deps.env),
      protocol: "query",
      body: form.toString(),
      signal,
    });
    const credentials = /<Credentials>([\s\S]*?)<\/Credentials>/.exec(answer.text)?.[1] ?? "";
    const field = (name: string) => {
      const value = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(credentials)?.[1];
      return value === undefined ? undefined : decodeXml(value.trim());
    };
    const accessKeyId = field("AccessKeyId");
    const secretAccessKey = field("SecretAccessKey");
    if (!accessKeyId || !secretAccessKey) {
      throw new Error(
        `Invalid response from STS.assumeRoleWithWebIdentity call with role ${roleArn}`,
      );
    }
    const sessionToken = field("SessionToken");
    const expiration = field("Expiration");
    return {
      accessKeyId,
      secretAccessKey,
      ...(sessionToken ? { sessionToken } : {}),
      ...(expiration ? { expiration: new Date(expiration) } : {}),
    };
  };
}

function fromContainer(deps: CredentialChainDeps): Link {
  const timeoutMs = deps.containerTimeoutMs ?? 1000;
  return async (_region, signal) => {
    const relative = deps.env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const full = deps.env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!relative && !full) return undefined;
    let url: URL;
    try {
      url = new URL(relative ? `http://${ECS_HOST}${relative}` : full!);
    } catch {
      deps.logger?.debug("Container credentials skipped: the URI is not a URL");
      return undefined;
    }
    if (!containerUrlAllowed(url)) {
      deps.logger?.debug("Container credentials skipped: the URI is not an allowed host", {
        host: url.host,
      });
      return undefined;
    }
    const tokenFile = deps.env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const token = deps.env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    let lastProblem = "";
    for (let attempt = 1; attempt <= 4; attempt++) {
      if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, timeoutMs));
      signal?.throwIfAborted();
      try {
        const headers: Record<string, string> = {};
        // Leading and trailing whitespace is dropped as a header value's is (a token file written
        // with a final newline); a line break inside the token is still refused below.
        const authorization = (tokenFile ? await deps.readTextFile(tokenFile) : token)
          ?.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
        if (authorization) {
          if (authorization.includes("\r\n")) {
            lastProblem = "the authorization token contains \\r\\n";
            continue;
          }
          headers.Authorization = authorization;
        }
        const timeout = AbortSignal.timeout(timeoutMs);
        const answer = await deps.http.get(
          url,
          headers,
          signal ? AbortSignal.any([signal, timeout]) : timeout,
        );
        if (answer.status !== 200) {
          lastProblem = `status ${answer.status}`;
          continue;
        }
        const text = answer.text;
        const parsed = JSON.parse(text) as Record<string, unknown>;
        const { AccessKeyId, SecretAccessKey, Token, Expiration } = parsed;
        if (
          typeof AccessKeyId !== "string" || typeof SecretAccessKey !== "string" ||
          typeof Token !== "string" || typeof Expiration !== "string"
        ) {
          lastProblem = "the answer is not of the required format";
          continue;
        }
        return {
          accessKeyId: AccessKeyId,
          secretAccessKey: SecretAccessKey,
          sessionToken: Token,
          expiration: new Date(Expiration),
        };
      } catch (error) {
        if (signal?.aborted) throw signal.reason ?? error;
        // Too large is not a passing failure: the chain stops with the error naming the limit.
        if ((error as { name?: unknown })?.name === "AnswerTooLarge") throw error;
        lastProblem = error instanceof SyntaxError
          ? "the answer is not JSON"
          : (error as { name?: unknown })?.name === "ProxyError"
          ? (error as Error).message
          : "no answer";
      }
    }
    deps.logger?.debug("Container credentials unavailable", { reason: lastProblem });
    return undefined;
  };
}

/**
 * The memoized chain. Call it with the region of the calling client (the STS exchange uses it).
 *
 * @returns a provider that throws what a link threw (an STS refusal, an unreadable token file),
 * or {@link CredentialsProviderError} when no link applies
 */
export function lightCredentialChain(
  deps: CredentialChainDeps,
): (region: string, signal?: AbortSignal) => Promise<AwsCredentials> {
  const links: [string, Link][] = [
    ["environment", fromEnvironment(deps.env)],
    ["web identity", fromWebIdentity(deps)],
    ["container", fromContainer(deps)],
  ];
  let cached: AwsCredentials | undefined;
  let pending: Promise<AwsCredentials> | undefined;
  const resolve = async (region: string, signal?: AbortSignal): Promise<AwsCredentials> => {
    for (const [name, link] of links) {
      const credentials = await link(region, signal);
      if (credentials) {
        deps.logger?.debug("AWS credentials found", { credentials: name });
        return credentials;
      }
    }
    throw new CredentialsProviderError(NO_CREDENTIALS_MESSAGE);
  };
  return async (region, signal) => {
    const remaining = cached?.expiration === undefined
      ? Infinity
      : cached.expiration.getTime() - Date.now();
    if (cached !== undefined && remaining >= REFRESH_BEFORE_MS) return cached;
    pending ??= resolve(region, signal).then((credentials) => (cached = credentials)).finally(
      () => (pending = undefined),
    );
    try {
      return await pending;
    } catch (error) {
      if (cached !== undefined && remaining > 0) return cached;
      throw error;
    }
  };
}
