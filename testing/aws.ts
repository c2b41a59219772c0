/**
 * AWS stand-in for tests: ONE loopback HTTP server that speaks just enough of
 *
 * - Secrets Manager (JSON 1.1, `X-Amz-Target: secretsmanager.GetSecretValue`),
 * - SSM Parameter Store (JSON 1.1, `X-Amz-Target: AmazonSSM.GetParametersByPath`),
 * - STS (query protocol, form POST `Action=AssumeRoleWithWebIdentity` or `Action=AssumeRole`, XML
 *   answers),
 * - container credentials (EKS Pod Identity / ECS: `GET /container-credentials/…` with the
 *   `Authorization` token a test registered, JSON temporary keys), counted as `ContainerCredentials`,
 *
 * for the real AWS SDK to talk to it through `AWS_ENDPOINT_URL*`. Plain HTTP, or HTTPS with the
 * certificate a test gives ({@link AwsStandInOptions.tls}). Its answers are chunked (no
 * `Content-Length`), as AWS's often are; {@link AwsStandIn.padNext} makes them as large as a test
 * needs. Secrets Manager and SSM requests
 * must carry a valid SigV4 `Authorization` header: the stand-in recomputes the signature with the
 * secret key it knows (the static test key, or temporary keys its own STS issued) and rejects
 * anything unsigned, signed for another service, or signed with a wrong key. STS
 * `AssumeRoleWithWebIdentity` is unsigned, as in real AWS; it checks the web-identity token against
 * the tokens a test registered. `AssumeRole` must be signed (by the static key), is allowed only for
 * roles a test lists ({@link AwsStandIn.allowAssumeRole}), and records the role, session name,
 * duration and session tags it receives; a Secrets Manager or SSM read signed with the credentials
 * it issued is recorded with that session ({@link AwsRequestRecord.session}), so tests see which
 * identity read which secret.
 *
 * The request log records who asked for what (action, service, region, access key id, secret id or
 * path, version selectors) and never stores secret values.
 *
 * The AWS SDK reads `process.env`; tests that run the SDK in-process wrap their body in
 * {@link withEnv}:
 *
 * ```ts
 * const aws = await startAwsStandIn();
 * aws.putSecret("app/db", { string: '{"DB_USER":"admin"}' });
 * await withEnv(aws.env(), async () => {
 *   // … run code that uses the AWS SDK …
 * });
 * assert.equal(aws.count("GetSecretValue"), 1);
 * await aws.close();
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { mkdirSync, mkdtempSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** Account id used in every ARN the stand-in builds. */
export const STAND_IN_ACCOUNT = "123456789012";

/** Static long-term test credentials accepted by the stand-in (see {@link AwsStandInOptions}). */
export const STATIC_CREDENTIALS = {
  accessKeyId: "AKIAPIGGYSTANDIN0001",
  secretAccessKey: "piggy/stand-in/static/secret/key/0000000",
} as const;

/** Role assumed by default in the web-identity flow of {@link AwsStandIn.env}. */
export const DEFAULT_ROLE_ARN = `arn:aws:iam::${STAND_IN_ACCOUNT}:role/piggy-test`;

/** One version of a Secrets Manager secret. */
export interface StandInSecretVersion {
  /** Version id. @default a random UUID */
  versionId?: string;
  /** Staging labels; a label moves here from any other version. @default ["AWSCURRENT"] */
  stages?: string[];
  /** `SecretString` (exactly one of `string` and `binary`). */
  string?: string;
  /** `SecretBinary`. */
  binary?: Uint8Array;
}

/** SSM parameter types. */
export type SsmParameterType = "String" | "StringList" | "SecureString";

/** Actions the stand-in answers. */
export type AwsAction =
  | "GetSecretValue"
  | "GetParametersByPath"
  | "AssumeRoleWithWebIdentity"
  | "AssumeRole"
  | "GetAuthorizationToken"
  | "ContainerCredentials";

/** One request as the stand-in saw it. Never holds secret values. */
export interface AwsRequestRecord {
  /** `secretsmanager`, `ssm`, `sts`, or `unknown`. */
  service: string;
  /** Action name from `X-Amz-Target` or `Action=`. */
  action: string;
  /** Region from the SigV4 credential scope ("" when unsigned). */
  region: string;
  /** Access key id from the SigV4 credential scope ("" when unsigned). */
  accessKeyId: string;
  /** HTTP status answered. */
  status: number;
  /** AWS error name answered, if any. */
  error?: string;
  /** `SecretId` of GetSecretValue. */
  secretId?: string;
  /** `VersionId` of GetSecretValue. */
  versionId?: string;
  /** `VersionStage` of GetSecretValue. */
  versionStage?: string;
  /** `Path` of GetParametersByPath. */
  path?: string;
  /** `Recursive` of GetParametersByPath. */
  recursive?: boolean;
  /** `WithDecryption` of GetParametersByPath. */
  withDecryption?: boolean;
  /** `MaxResults` of GetParametersByPath. */
  maxResults?: number;
  /** True when GetParametersByPath carried a `NextToken`. */
  withNextToken?: boolean;
  /** `RoleArn` of AssumeRoleWithWebIdentity or AssumeRole. */
  roleArn?: string;
  /** `RoleSessionName` of AssumeRole. */
  roleSessionName?: string;
  /** `DurationSeconds` of AssumeRole (3600 when absent, as AWS). */
  durationSeconds?: number;
  /** Session tags of AssumeRole, key → value. */
  tags?: Record<string, string>;
  /** `TransitiveTagKeys` of AssumeRole. */
  transitiveTagKeys?: string[];
  /** Access key id that AssumeRole issued. */
  issuedAccessKeyId?: string;
  /** For a read signed with AssumeRole credentials: the session that signed it. */
  session?: StandInSession;
}

/** An AssumeRole session, as the stand-in issued it. */
export interface StandInSession {
  roleArn: string;
  roleSessionName: string;
  tags: Record<string, string>;
}

/** Options of {@link startAwsStandIn}. */
export interface AwsStandInOptions {
  /** When set, SigV4 scopes for another region are rejected. @default undefined (any region, recorded) */
  expectRegion?: string;
  /** Long-term credentials accepted. @default STATIC_CREDENTIALS */
  staticCredentials?: { accessKeyId: string; secretAccessKey: string };
  /** Serve HTTPS with this PEM certificate and key (the URL is then `https://127.0.0.1:…`). */
  tls?: { cert: string; key: string };
}

/** Options of {@link AwsStandIn.env}. */
export interface AwsStandInEnvOptions {
  /**
   * `static`: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`. `web-identity`: IRSA variables
   * (`AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE`) with a token file registered for the role.
   * `container`: EKS Pod Identity variables (`AWS_CONTAINER_CREDENTIALS_FULL_URI` on this
   * stand-in, `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` with a registered token).
   * @default "static"
   */
  credentials?: "static" | "web-identity" | "container";
  /** `AWS_REGION`; `null` leaves it unset. @default "us-east-1" */
  region?: string | null;
  /** Per-service `AWS_ENDPOINT_URL_SECRETS_MANAGER/_SSM/_STS` instead of `AWS_ENDPOINT_URL`. @default false */
  perService?: boolean;
  /** Role of the web-identity flow. @default DEFAULT_ROLE_ARN */
  roleArn?: string;
}

/** A running stand-in. */
export interface AwsStandIn {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** Snapshot of calls per action (rejected requests count under `Rejected`). */
  readonly counts: Record<string, number>;
  /** Requests received, in order (copies). */
  readonly requests: AwsRequestRecord[];
  /** Calls of one action so far. */
  count(action: string): number;
  /** Adds a version to a secret (creating the secret); returns its version id. */
  putSecret(name: string, version: StandInSecretVersion): string;
  /** Stores an SSM parameter under its full name. */
  putParameter(name: string, value: string, type?: SsmParameterType): void;
  /** The next `times` calls of `action` fail with the AWS error `errorName`. */
  failNext(action: AwsAction, errorName: string, times?: number): void;
  /** The next `times` calls of `action` are answered after `delayMs`. */
  delayNext(action: AwsAction, delayMs: number, times?: number): void;
  /**
   * The next `times` successful JSON answers of `action` (Secrets Manager, SSM, container
   * credentials) carry an extra `Padding` field that makes their body at least `bytes` long.
   */
  padNext(action: AwsAction, bytes: number, times?: number): void;
  /** The password ECR GetAuthorizationToken hands out (user `AWS`). */
  ecrPassword: string;
  /** Accepts `token` as the `Authorization` of container credential requests. */
  registerContainerToken(token: string): void;
  /** Accepts `token` in AssumeRoleWithWebIdentity for `roleArn`. */
  registerWebIdentity(token: string, roleArn: string): void;
  /** Lets signed callers AssumeRole `roleArn` (any other role: AccessDenied naming both ARNs). */
  allowAssumeRole(roleArn: string): void;
  /**
   * Lifetime of the credentials AssumeRole issues from now on, in milliseconds; `undefined`: the
   * requested `DurationSeconds`.
   */
  setSessionLifetime(ms: number | undefined): void;
  /** Environment for a process (or {@link withEnv}) that must reach this stand-in. */
  env(options?: AwsStandInEnvOptions): Record<string, string>;
  /** Forgets counters and the request log. */
  resetCounters(): void;
  /**
   * Drops every pending {@link AwsStandIn.failNext}, {@link AwsStandIn.delayNext} and
   * {@link AwsStandIn.padNext}.
   */
  clearInjections(): void;
  /** Stops the server and removes temporary files. */
  close(): Promise<void>;
}

/** HTTP status of the errors tests inject or the stand-in answers. */
const ERROR_STATUS: Record<string, number> = {
  ThrottlingException: 400,
  TooManyRequestsException: 400,
  InternalServiceError: 500,
  InternalServerError: 500,
  ServiceUnavailable: 503,
  AccessDeniedException: 400,
  DecryptionFailure: 400,
  ResourceNotFoundException: 400,
  InvalidRequestException: 400,
  InvalidParameterException: 400,
  ValidationException: 400,
  InvalidNextToken: 400,
  ParameterNotFound: 400,
  MissingAuthenticationTokenException: 403,
  InvalidSignatureException: 403,
  UnrecognizedClientException: 403,
  IncompleteSignatureException: 403,
  // STS (query protocol)
  InvalidIdentityToken: 400,
  ExpiredTokenException: 400,
  AccessDenied: 403,
  ValidationError: 400,
  Throttling: 400,
  InternalFailure: 500,
};

const INJECTED_MESSAGE: Record<string, string> = {
  ThrottlingException: "Rate exceeded",
  Throttling: "Rate exceeded",
  InternalServiceError: "An error occurred on the server side.",
  InternalServerError: "An error occurred on the server side.",
  AccessDeniedException:
    `User: arn:aws:sts::${STAND_IN_ACCOUNT}:assumed-role/piggy-test/session is not authorized to perform this operation`,
  AccessDenied:
    `User: arn:aws:sts::${STAND_IN_ACCOUNT}:assumed-role/piggy-webhooks/caller is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::${STAND_IN_ACCOUNT}:role/piggy-reader`,
  DecryptionFailure:
    "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
};

interface StoredVersion {
  versionId: string;
  stages: Set<string>;
  string?: string;
  binary?: Uint8Array;
  created: number;
}

interface StoredSecret {
  name: string;
  arn: string;
  versions: StoredVersion[];
}

interface StoredParameter {
  value: string;
  type: SsmParameterType;
  version: number;
  modified: number;
}

interface Credential {
  secretAccessKey: string;
  sessionToken?: string;
  session?: StandInSession;
}

class AwsError extends Error {
  constructor(readonly errorName: string, message: string) {
    super(message);
  }
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: string | Uint8Array, data: string): Uint8Array {
  return createHmac("sha256", key).update(data).digest();
}

function randomText(alphabet: string, length: number): string {
  const bytes = randomBytes(length);
  let text = "";
  for (const byte of bytes) text += alphabet[byte % alphabet.length];
  return text;
}

function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function readBody(req: IncomingMessage): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    req.on("end", () => {
      const total = chunks.reduce((sum, c) => sum + c.length, 0);
      const body = new Uint8Array(total);
      let offset = 0;
      for (const c of chunks) {
        body.set(c, offset);
        offset += c.length;
      }
      resolve(body);
    });
    req.on("error", reject);
  });
}

function headerValue(req: IncomingMessage, name: string): string {
  const value = req.headers[name];
  if (Array.isArray(value)) return value.join(",");
  return value ?? "";
}

interface SignatureScope {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

function parseAuthorization(header: string): SignatureScope | undefined {
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/
      .exec(header.trim());
  if (!match) return undefined;
  const [, accessKeyId, date, region, service, signedHeaders, signature] = match;
  return {
    accessKeyId: accessKeyId!,
    date: date!,
    region: region!,
    service: service!,
    signedHeaders: signedHeaders!.split(";"),
    signature: signature!,
  };
}

/** Recomputes a SigV4 signature over what was received (POST `/`, no query string). */
function computeSignature(
  req: IncomingMessage,
  body: Uint8Array,
  scope: SignatureScope,
  secretAccessKey: string,
): string {
  const url = new URL(req.url ?? "/", "http://stand-in");
  const canonicalHeaders = scope.signedHeaders
    .map((name) => `${name}:${headerValue(req, name).replace(/[ \t]+/g, " ").trim()}\n`)
    .join("");
  // The signature covers the hash of the body actually received (as Secrets Manager and SSM do; a
  // claimed x-amz-content-sha256 that differs from the body fails the comparison below).
  const payloadHash = sha256Hex(body);
  const query = [...url.searchParams.entries()]
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .sort()
    .join("&");
  const canonicalRequest = [
    req.method ?? "POST",
    url.pathname,
    query,
    canonicalHeaders,
    scope.signedHeaders.join(";"),
    payloadHash,
  ].join("\n");
  const credentialScope = `${scope.date}/${scope.region}/${scope.service}/aws4_request`;
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    headerValue(req, "x-amz-date"),
    credentialScope,
    sha256Hex(canonicalRequest),
  ].join("\n");
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${secretAccessKey}`, scope.date), scope.region), scope.service),
    "aws4_request",
  );
  return Buffer.from(hmac(signingKey, stringToSign)).toString("hex");
}

const TARGET_SERVICE: Record<string, string> = {
  secretsmanager: "secretsmanager",
  AmazonSSM: "ssm",
  AmazonEC2ContainerRegistry_V20150921: "ecr",
};

/**
 * Starts the stand-in on 127.0.0.1 with an ephemeral port.
 *
 * @param options region expectation and static credentials
 */
export async function startAwsStandIn(options: AwsStandInOptions = {}): Promise<AwsStandIn> {
  const staticCredentials = options.staticCredentials ?? STATIC_CREDENTIALS;
  const secrets = new Map<string, StoredSecret>();
  const parameters = new Map<string, StoredParameter>();
  const credentials = new Map<string, Credential>([
    [staticCredentials.accessKeyId, { secretAccessKey: staticCredentials.secretAccessKey }],
  ]);
  const webIdentities = new Map<string, string>();
  const containerTokens = new Set<string>();
  const assumableRoles = new Set<string>();
  let sessionLifetimeMs: number | undefined;
  const failures = new Map<string, { errorName: string; times: number }[]>();
  const delays = new Map<string, { delayMs: number; times: number }[]>();
  const paddings = new Map<string, { bytes: number; times: number }[]>();
  const counts: Record<string, number> = {};
  let requests: AwsRequestRecord[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let tempDir: string | undefined;

  function takeQueued<T extends { times: number }>(
    queue: Map<string, T[]>,
    action: string,
  ): T | undefined {
    const entries = queue.get(action);
    const head = entries?.[0];
    if (!entries || !head) return undefined;
    head.times -= 1;
    if (head.times <= 0) entries.shift();
    return head;
  }

  function sendJson(res: ServerResponse, status: number, body: unknown, errorName?: string): void {
    const headers: Record<string, string> = {
      "content-type": "application/x-amz-json-1.1",
      "x-amzn-requestid": randomUUID(),
    };
    if (errorName) headers["x-amzn-errortype"] = `${errorName}:http://internal.amazon.com/coral/`;
    res.writeHead(status, headers);
    res.end(JSON.stringify(body));
  }

  /** `answer` with the padding a test queued for `action`, if any. */
  function padded(action: string, answer: unknown): unknown {
    const padding = takeQueued(paddings, action);
    if (!padding || answer === null || typeof answer !== "object") return answer;
    const length = JSON.stringify(answer).length + ',"Padding":""'.length;
    return { ...answer, Padding: "x".repeat(Math.max(0, padding.bytes - length)) };
  }

  function sendXml(res: ServerResponse, status: number, xml: string): void {
    res.writeHead(status, { "content-type": "text/xml", "x-amzn-requestid": randomUUID() });
    res.end(xml);
  }

  function stsError(errorName: string, message: string): string {
    const type = (ERROR_STATUS[errorName] ?? 400) >= 500 ? "Receiver" : "Sender";
    return `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>${type}</Type><Code>${
      xmlEscape(errorName)
    }</Code><Message>${
      xmlEscape(message)
    }</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
  }

  function findSecret(secretId: string): StoredSecret | undefined {
    return secrets.get(secretId) ??
      [...secrets.values()].find((s) => s.arn === secretId || s.arn.startsWith(`${secretId}-`));
  }

  function getSecretValue(input: Record<string, unknown>, record: AwsRequestRecord): unknown {
    const secretId = input.SecretId;
    if (typeof secretId !== "string" || secretId === "") {
      throw new AwsError("ValidationException", "1 validation error detected: SecretId is null");
    }
    record.secretId = secretId;
    const versionId = input.VersionId;
    const versionStage = input.VersionStage;
    if (versionId !== undefined) record.versionId = String(versionId);
    if (versionStage !== undefined) record.versionStage = String(versionStage);
    if (
      versionId !== undefined &&
      (typeof versionId !== "string" || versionId.length < 32 || versionId.length > 64)
    ) {
      throw new AwsError(
        "ValidationException",
        "1 validation error detected: Value at 'versionId' failed to satisfy constraint: Member must have length between 32 and 64",
      );
    }
    if (
      versionStage !== undefined &&
      (typeof versionStage !== "string" || versionStage.length < 1 || versionStage.length > 256)
    ) {
      throw new AwsError(
        "ValidationException",
        "1 validation error detected: Value at 'versionStage' failed to satisfy constraint: Member must have length between 1 and 256",
      );
    }
    const secret = findSecret(secretId);
    if (!secret) {
      throw new AwsError(
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
      );
    }
    let version: StoredVersion | undefined;
    if (typeof versionId === "string") {
      version = secret.versions.find((v) => v.versionId === versionId);
      if (version && typeof versionStage === "string" && !version.stages.has(versionStage)) {
        throw new AwsError(
          "InvalidRequestException",
          "You provided a VersionStage that is not associated to the provided VersionId.",
        );
      }
      if (!version) {
        throw new AwsError(
          "ResourceNotFoundException",
          `Secrets Manager can't find the specified secret value for VersionId: ${versionId}`,
        );
      }
    } else {
      const stage = typeof versionStage === "string" ? versionStage : "AWSCURRENT";
      version = secret.versions.find((v) => v.stages.has(stage));
      if (!version) {
        throw new AwsError(
          "ResourceNotFoundException",
          `Secrets Manager can't find the specified secret value for staging label: ${stage}`,
        );
      }
    }
    const answer: Record<string, unknown> = {
      ARN: secret.arn,
      Name: secret.name,
      VersionId: version.versionId,
      VersionStages: [...version.stages],
      CreatedDate: version.created / 1000,
    };
    if (version.string !== undefined) answer.SecretString = version.string;
    if (version.binary !== undefined) {
      answer.SecretBinary = Buffer.from(version.binary).toString("base64");
    }
    return answer;
  }

  function getParametersByPath(input: Record<string, unknown>, record: AwsRequestRecord): unknown {
    const path = input.Path;
    if (typeof path !== "string" || path === "") {
      throw new AwsError("ValidationException", "1 validation error detected: Path is null");
    }
    record.path = path;
    const recursive = input.Recursive === true;
    const withDecryption = input.WithDecryption === true;
    record.recursive = recursive;
    record.withDecryption = withDecryption;
    const maxResults = input.MaxResults === undefined ? 10 : input.MaxResults;
    if (typeof maxResults === "number") record.maxResults = maxResults;
    if (typeof maxResults !== "number" || !Number.isInteger(maxResults) || maxResults < 1) {
      throw new AwsError(
        "ValidationException",
        "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1",
      );
    }
    if (maxResults > 10) {
      throw new AwsError(
        "ValidationException",
        `1 validation error detected: Value '${maxResults}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 10`,
      );
    }
    if (!path.startsWith("/")) {
      throw new AwsError(
        "ValidationException",
        'The parameter doesn\'t meet the parameter name requirements. The parameter name must begin with a forward slash "/".',
      );
    }
    const prefix = path.endsWith("/") ? path : `${path}/`;
    const names = [...parameters.keys()]
      .filter((name) =>
        name.startsWith(prefix) && name.length > prefix.length &&
        (recursive || !name.slice(prefix.length).includes("/"))
      )
      .sort();
    let offset = 0;
    if (input.NextToken !== undefined) {
      record.withNextToken = true;
      const token = typeof input.NextToken === "string" ? decodeNextToken(input.NextToken) : null;
      if (!token || token.path !== path || token.recursive !== recursive) {
        throw new AwsError("InvalidNextToken", "The specified token isn't valid.");
      }
      offset = token.offset;
    }
    const page = names.slice(offset, offset + maxResults).map((name) => {
      const parameter = parameters.get(name)!;
      const encrypted = parameter.type === "SecureString" && !withDecryption;
      return {
        Name: name,
        Type: parameter.type,
        Value: encrypted
          ? `AQICAH${sha256Hex(name + parameter.version).slice(0, 40)}`
          : parameter.value,
        Version: parameter.version,
        LastModifiedDate: parameter.modified / 1000,
        ARN: `arn:aws:ssm:${record.region || "us-east-1"}:${STAND_IN_ACCOUNT}:parameter${name}`,
        DataType: "text",
      };
    });
    const answer: Record<string, unknown> = { Parameters: page };
    if (offset + maxResults < names.length) {
      answer.NextToken = Buffer.from(
        JSON.stringify({ path, recursive, offset: offset + maxResults }),
      ).toString("base64");
    }
    return answer;
  }

  function decodeNextToken(
    token: string,
  ): { path: string; recursive: boolean; offset: number } | null {
    try {
      const value = JSON.parse(Buffer.from(token, "base64").toString("utf8"));
      if (
        typeof value?.path === "string" && typeof value.recursive === "boolean" &&
        Number.isInteger(value.offset) && value.offset >= 0
      ) {
        return value;
      }
    } catch {
      // an invalid token is answered below
    }
    return null;
  }

  function assumeRoleWithWebIdentity(form: URLSearchParams, record: AwsRequestRecord): string {
    const roleArn = form.get("RoleArn") ?? "";
    const token = form.get("WebIdentityToken") ?? "";
    const sessionName = form.get("RoleSessionName") ?? "";
    if (roleArn) record.roleArn = roleArn;
    if (form.get("Version") !== "2011-06-15") {
      throw new AwsError("InvalidAction", "Could not find operation for this version");
    }
    if (!roleArn || !token || !sessionName) {
      throw new AwsError(
        "ValidationError",
        "1 validation error detected: RoleArn, RoleSessionName and WebIdentityToken are required",
      );
    }
    const allowedRole = webIdentities.get(token);
    if (allowedRole === undefined) {
      throw new AwsError(
        "InvalidIdentityToken",
        "Couldn't retrieve verification key from your identity provider",
      );
    }
    if (allowedRole !== roleArn) {
      throw new AwsError("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity");
    }
    const keys = newSessionKeys();
    credentials.set(keys.accessKeyId, keys);
    return `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:default:piggy</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
${assumedRoleXml(roleArn, sessionName, keys, 3600_000)}
    <Provider>arn:aws:iam::${STAND_IN_ACCOUNT}:oidc-provider/oidc.eks.stand-in</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>${randomUUID()}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`;
  }

  /** `Name.member.N` (and `Name.member.N.Field`) entries of a query-protocol form, in order. */
  function formMembers(form: URLSearchParams, name: string, field?: string): string[] {
    const values: string[] = [];
    for (let n = 1;; n++) {
      const value = form.get(`${name}.member.${n}${field ? `.${field}` : ""}`);
      if (value === null) return values;
      values.push(value);
    }
  }

  function assumeRole(form: URLSearchParams, record: AwsRequestRecord): string {
    const roleArn = form.get("RoleArn") ?? "";
    const sessionName = form.get("RoleSessionName") ?? "";
    const duration = Number(form.get("DurationSeconds") ?? "3600");
    if (roleArn) record.roleArn = roleArn;
    record.roleSessionName = sessionName;
    record.durationSeconds = duration;
    const keys = formMembers(form, "Tags", "Key");
    const values = formMembers(form, "Tags", "Value");
    const tags: Record<string, string> = {};
    keys.forEach((key, i) => (tags[key] = values[i] ?? ""));
    record.tags = tags;
    record.transitiveTagKeys = formMembers(form, "TransitiveTagKeys");
    if (form.get("Version") !== "2011-06-15") {
      throw new AwsError("InvalidAction", "Could not find operation for this version");
    }
    if (!/^[\w+=,.@-]{2,64}$/.test(sessionName)) {
      throw new AwsError(
        "ValidationError",
        `1 validation error detected: Value '${sessionName}' at 'roleSessionName' failed to ` +
          "satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*",
      );
    }
    if (!Number.isInteger(duration) || duration < 900 || duration > 43_200) {
      throw new AwsError("ValidationError", "The requested DurationSeconds exceeds the limits");
    }
    const tagShape = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
    if (
      keys.length > 50 || keys.length !== values.length || new Set(keys).size !== keys.length ||
      keys.some((k) => k.length < 1 || k.length > 128 || !tagShape.test(k)) ||
      values.some((v) => v.length > 256 || !tagShape.test(v))
    ) {
      throw new AwsError("ValidationError", "1 validation error detected: invalid session tags");
    }
    if (!assumableRoles.has(roleArn)) {
      throw new AwsError(
        "AccessDenied",
        `User: arn:aws:sts::${STAND_IN_ACCOUNT}:assumed-role/piggy-webhooks/caller is not ` +
          `authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
      );
    }
    const issued = newSessionKeys();
    const session: StandInSession = { roleArn, roleSessionName: sessionName, tags: { ...tags } };
    credentials.set(issued.accessKeyId, { ...issued, session });
    record.issuedAccessKeyId = issued.accessKeyId;
    const lifetime = sessionLifetimeMs ?? duration * 1000;
    return `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
${assumedRoleXml(roleArn, sessionName, issued, lifetime)}
    <PackedPolicySize>${keys.length}</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>${randomUUID()}</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>`;
  }

  /** Checks SigV4; returns the error to answer, or undefined when the signature is valid. */
  function checkSignature(
    req: IncomingMessage,
    body: Uint8Array,
    service: string,
    record: AwsRequestRecord,
  ): AwsError | undefined {
    const authorization = headerValue(req, "authorization");
    if (!authorization) {
      return new AwsError("MissingAuthenticationTokenException", "Missing Authentication Token");
    }
    const scope = parseAuthorization(authorization);
    if (!scope) {
      return new AwsError(
        "IncompleteSignatureException",
        "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.",
      );
    }
    record.region = scope.region;
    record.accessKeyId = scope.accessKeyId;
    if (scope.service !== service) {
      return new AwsError(
        "InvalidSignatureException",
        `Credential should be scoped to correct service: '${service}'.`,
      );
    }
    if (options.expectRegion !== undefined && scope.region !== options.expectRegion) {
      return new AwsError(
        "InvalidSignatureException",
        "Credential should be scoped to a valid region.",
      );
    }
    const amzDate = headerValue(req, "x-amz-date");
    if (!amzDate.startsWith(scope.date) || !scope.signedHeaders.includes("host")) {
      return new AwsError(
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided.",
      );
    }
    const credential = credentials.get(scope.accessKeyId);
    if (!credential) {
      return new AwsError(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    if (credential.sessionToken !== undefined) {
      if (
        !scope.signedHeaders.includes("x-amz-security-token") ||
        headerValue(req, "x-amz-security-token") !== credential.sessionToken
      ) {
        return new AwsError(
          "UnrecognizedClientException",
          "The security token included in the request is invalid.",
        );
      }
    }
    const claimedHash = headerValue(req, "x-amz-content-sha256");
    if (claimedHash && claimedHash !== sha256Hex(body)) {
      return new AwsError(
        "InvalidSignatureException",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      );
    }
    const expected = computeSignature(req, body, scope, credential.secretAccessKey);
    if (!timingSafeEqual(Buffer.from(expected), Buffer.from(scope.signature))) {
      return new AwsError(
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided.",
      );
    }
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const target = headerValue(req, "x-amz-target");
    const contentType = headerValue(req, "content-type");
    const record: AwsRequestRecord = {
      service: "unknown",
      action: "",
      region: "",
      accessKeyId: "",
      status: 0,
    };
    requests.push(record);

    const finish = (status: number, error?: string): void => {
      record.status = status;
      if (error !== undefined) record.error = error;
    };
    /** Records `error` as the answer; returns its HTTP status. */
    const fail = (error: AwsError): number => {
      const status = ERROR_STATUS[error.errorName] ?? 400;
      finish(status, error.errorName);
      return status;
    };
    /** Throws the failure a test queued for this action, if any. */
    const throwInjected = (): void => {
      const injected = takeQueued(failures, record.action);
      if (injected) {
        throw new AwsError(
          injected.errorName,
          INJECTED_MESSAGE[injected.errorName] ?? `Injected ${injected.errorName}`,
        );
      }
    };

    if (req.method === "GET" && (req.url ?? "").startsWith("/container-credentials/")) {
      record.service = "container";
      record.action = "ContainerCredentials";
      counts[record.action] = (counts[record.action] ?? 0) + 1;
      await applyDelay(record.action);
      const injected = takeQueued(failures, record.action);
      if (injected) {
        finish(ERROR_STATUS[injected.errorName] ?? 500, injected.errorName);
        res.writeHead(ERROR_STATUS[injected.errorName] ?? 500, {
          "content-type": "application/json",
        });
        res.end(JSON.stringify({ Code: injected.errorName, Message: "Injected" }));
        return;
      }
      if (!containerTokens.has(headerValue(req, "authorization"))) {
        finish(403, "AccessDenied");
        res.writeHead(403, { "content-type": "application/json" });
        res.end(JSON.stringify({ Code: "AccessDenied", Message: "Invalid authorization token" }));
        return;
      }
      const keys = newSessionKeys();
      credentials.set(keys.accessKeyId, keys);
      record.issuedAccessKeyId = keys.accessKeyId;
      finish(200);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(padded(record.action, {
        AccessKeyId: keys.accessKeyId,
        SecretAccessKey: keys.secretAccessKey,
        Token: keys.sessionToken,
        AccountId: STAND_IN_ACCOUNT,
        Expiration: new Date(Date.now() + 3600_000).toISOString().replace(/\.\d{3}Z$/, "Z"),
      })));
      return;
    }

    if (req.method !== "POST") {
      finish(405, "MethodNotAllowed");
      sendJson(res, 405, { __type: "MethodNotAllowed", message: "Only POST" }, "MethodNotAllowed");
      return;
    }

    if (target) {
      const dot = target.indexOf(".");
      const service = TARGET_SERVICE[target.slice(0, dot)] ?? "unknown";
      record.service = service;
      record.action = target.slice(dot + 1);
      const answerError = (error: AwsError): void => {
        const body = { __type: error.errorName, message: error.message };
        sendJson(res, fail(error), body, error.errorName);
      };
      if (service === "unknown" || !contentType.startsWith("application/x-amz-json-1.1")) {
        answerError(new AwsError("UnknownOperationException", "Unknown operation"));
        return;
      }
      const authError = checkSignature(req, body, service, record);
      if (authError) {
        counts.Rejected = (counts.Rejected ?? 0) + 1;
        answerError(authError);
        return;
      }
      counts[record.action] = (counts[record.action] ?? 0) + 1;
      const session = credentials.get(record.accessKeyId)?.session;
      if (session) record.session = { ...session, tags: { ...session.tags } };
      let input: Record<string, unknown>;
      try {
        const parsed = JSON.parse(new TextDecoder().decode(body));
        input = parsed !== null && typeof parsed === "object" ? parsed : {};
      } catch {
        answerError(new AwsError("SerializationException", "Invalid JSON"));
        return;
      }
      await applyDelay(record.action);
      try {
        let answer: unknown;
        if (record.action === "GetSecretValue" && service === "secretsmanager") {
          answer = getSecretValue(input, record);
        } else if (record.action === "GetParametersByPath" && service === "ssm") {
          answer = getParametersByPath(input, record);
        } else if (record.action === "GetAuthorizationToken" && service === "ecr") {
          const ids = Array.isArray(input.registryIds) ? input.registryIds.map(String) : [];
          const id = ids[0] ?? STAND_IN_ACCOUNT;
          answer = {
            authorizationData: [{
              authorizationToken: btoa(`AWS:${standIn.ecrPassword}`),
              expiresAt: Math.floor(Date.now() / 1000) + 12 * 3600,
              proxyEndpoint: `https://${id}.dkr.ecr.${record.region}.amazonaws.com`,
            }],
          };
        } else {
          throw new AwsError("UnknownOperationException", "Unknown operation");
        }
        throwInjected();
        finish(200);
        sendJson(res, 200, padded(record.action, answer));
      } catch (error) {
        if (!(error instanceof AwsError)) throw error;
        answerError(error);
      }
      return;
    }

    if (contentType.startsWith("application/x-www-form-urlencoded")) {
      const form = new URLSearchParams(new TextDecoder().decode(body));
      record.service = "sts";
      record.action = form.get("Action") ?? "";
      const authorization = headerValue(req, "authorization");
      const scope = authorization ? parseAuthorization(authorization) : undefined;
      if (scope) {
        record.region = scope.region;
        record.accessKeyId = scope.accessKeyId;
      }
      counts[record.action] = (counts[record.action] ?? 0) + 1;
      await applyDelay(record.action);
      try {
        let xml: string;
        if (record.action === "AssumeRoleWithWebIdentity") {
          xml = assumeRoleWithWebIdentity(form, record);
        } else if (record.action === "AssumeRole") {
          // Signed, unlike AssumeRoleWithWebIdentity: the caller's own credentials.
          const authError = checkSignature(req, body, "sts", record);
          if (authError) throw authError;
          xml = assumeRole(form, record);
        } else {
          throw new AwsError("InvalidAction", `Could not find operation ${record.action}`);
        }
        throwInjected();
        finish(200);
        sendXml(res, 200, xml);
      } catch (error) {
        if (!(error instanceof AwsError)) throw error;
        sendXml(res, fail(error), stsError(error.errorName, error.message));
      }
      return;
    }

    const unknown = new AwsError("UnknownOperationException", "Unknown operation");
    sendJson(
      res,
      fail(unknown),
      { __type: unknown.errorName, message: unknown.message },
      unknown.errorName,
    );
  }

  function applyDelay(action: string): Promise<void> {
    const delay = takeQueued(delays, action);
    if (!delay) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, delay.delayMs);
      timers.add(timer);
    });
  }

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((error) => {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "application/x-amz-json-1.1" });
        res.end(JSON.stringify({ __type: "InternalFailure", message: String(error) }));
      }
    });
  };
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, listener)
    : createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;

  function ensureTempDir(): string {
    tempDir ??= mkdtempSync(join(tmpdir(), "piggy-aws-"));
    return tempDir;
  }

  const standIn: AwsStandIn = {
    url,
    ecrPassword: "ecr-stand-in-password",
    get counts() {
      return { ...counts };
    },
    get requests() {
      return requests.map((r) => ({ ...r }));
    },
    count(action: string): number {
      return counts[action] ?? 0;
    },
    putSecret(name: string, version: StandInSecretVersion): string {
      if ((version.string === undefined) === (version.binary === undefined)) {
        throw new TypeError("putSecret() needs exactly one of string and binary");
      }
      let secret = secrets.get(name);
      if (!secret) {
        secret = {
          name,
          arn: `arn:aws:secretsmanager:us-east-1:${STAND_IN_ACCOUNT}:secret:${name}-${
            randomText("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 6)
          }`,
          versions: [],
        };
        secrets.set(name, secret);
      }
      const stages = new Set(version.stages ?? ["AWSCURRENT"]);
      for (const other of secret.versions) {
        for (const stage of stages) other.stages.delete(stage);
      }
      const stored: StoredVersion = {
        versionId: version.versionId ?? randomUUID(),
        stages,
        created: Date.now(),
      };
      if (version.string !== undefined) stored.string = version.string;
      if (version.binary !== undefined) stored.binary = version.binary.slice();
      secret.versions = secret.versions.filter((v) => v.versionId !== stored.versionId);
      secret.versions.push(stored);
      return stored.versionId;
    },
    putParameter(name: string, value: string, type: SsmParameterType = "String"): void {
      const version = (parameters.get(name)?.version ?? 0) + 1;
      parameters.set(name, { value, type, version, modified: Date.now() });
    },
    failNext(action: AwsAction, errorName: string, times = 1): void {
      const queue = failures.get(action) ?? [];
      queue.push({ errorName, times });
      failures.set(action, queue);
    },
    padNext(action: AwsAction, bytes: number, times = 1): void {
      const queue = paddings.get(action) ?? [];
      queue.push({ bytes, times });
      paddings.set(action, queue);
    },
    delayNext(action: AwsAction, delayMs: number, times = 1): void {
      const queue = delays.get(action) ?? [];
      queue.push({ delayMs, times });
      delays.set(action, queue);
    },
    registerContainerToken(token: string): void {
      containerTokens.add(token);
    },
    registerWebIdentity(token: string, roleArn: string): void {
      webIdentities.set(token, roleArn);
    },
    allowAssumeRole(roleArn: string): void {
      assumableRoles.add(roleArn);
    },
    setSessionLifetime(ms: number | undefined): void {
      sessionLifetimeMs = ms;
    },
    env(envOptions: AwsStandInEnvOptions = {}): Record<string, string> {
      const dir = ensureTempDir();
      const vars: Record<string, string> = {
        AWS_EC2_METADATA_DISABLED: "true",
        // Keep the developer's ~/.aws files out of the chain.
        AWS_CONFIG_FILE: join(dir, "no-config"),
        AWS_SHARED_CREDENTIALS_FILE: join(dir, "no-credentials"),
      };
      if (envOptions.perService) {
        vars.AWS_ENDPOINT_URL_SECRETS_MANAGER = url;
        vars.AWS_ENDPOINT_URL_SSM = url;
        vars.AWS_ENDPOINT_URL_STS = url;
        vars.AWS_ENDPOINT_URL_ECR = url;
      } else {
        vars.AWS_ENDPOINT_URL = url;
      }
      const region = envOptions.region === undefined ? "us-east-1" : envOptions.region;
      if (region !== null) vars.AWS_REGION = region;
      if ((envOptions.credentials ?? "static") === "static") {
        vars.AWS_ACCESS_KEY_ID = staticCredentials.accessKeyId;
        vars.AWS_SECRET_ACCESS_KEY = staticCredentials.secretAccessKey;
      } else if (envOptions.credentials === "container") {
        const token = `pod-identity-${randomUUID()}`;
        containerTokens.add(token);
        const tokenFile = join(dir, `container-token-${randomUUID()}`);
        writeFileSync(tokenFile, token);
        vars.AWS_CONTAINER_CREDENTIALS_FULL_URI = `${url}/container-credentials/v1/credentials`;
        vars.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = tokenFile;
      } else {
        const roleArn = envOptions.roleArn ?? DEFAULT_ROLE_ARN;
        const token = `eyJ.stand-in.${randomUUID()}`;
        webIdentities.set(token, roleArn);
        const tokenFile = join(dir, `token-${randomUUID()}`);
        writeFileSync(tokenFile, token);
        vars.AWS_ROLE_ARN = roleArn;
        vars.AWS_WEB_IDENTITY_TOKEN_FILE = tokenFile;
        vars.AWS_ROLE_SESSION_NAME = "piggy-test";
      }
      return vars;
    },
    resetCounters(): void {
      for (const key of Object.keys(counts)) delete counts[key];
      requests = [];
    },
    clearInjections(): void {
      failures.clear();
      delays.clear();
      paddings.clear();
    },
    async close(): Promise<void> {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    },
  };
  return standIn;
}

const ENV_LOCK = join(tmpdir(), "piggy-aws-env.lock");
const ENV_LOCK_STALE_MS = 60_000;

async function acquireEnvLock(): Promise<void> {
  for (;;) {
    try {
      mkdirSync(ENV_LOCK);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== "EEXIST") throw error;
      try {
        if (Date.now() - statSync(ENV_LOCK).mtimeMs > ENV_LOCK_STALE_MS) rmdirSync(ENV_LOCK);
      } catch {
        // another holder released or removed it meanwhile
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/**
 * Runs `fn` with `vars` set on `process.env` (the AWS SDK reads it), then restores the previous
 * environment, even when `fn` throws. Every existing `AWS_*` variable is removed for the duration so
 * the developer's own AWS configuration cannot leak in; a `vars` value of `undefined` removes that
 * variable too.
 *
 * `process.env` is process-wide and `deno test --parallel` runs test files in one process, so calls
 * are serialized with a lock directory in the temp dir (shared across test workers and processes).
 * Do not nest `withEnv` calls.
 *
 * @param vars variables to set, typically from {@link AwsStandIn.env}
 * @param fn code that uses the AWS SDK in-process
 * @returns what `fn` returns
 */
export async function withEnv<T>(
  vars: Record<string, string | undefined>,
  fn: () => T | Promise<T>,
): Promise<T> {
  await acquireEnvLock();
  const saved = new Map<string, string | undefined>();
  const remember = (name: string): void => {
    if (!saved.has(name)) saved.set(name, process.env[name]);
  };
  try {
    for (const name of Object.keys(process.env)) {
      if (name.startsWith("AWS_")) {
        remember(name);
        delete process.env[name];
      }
    }
    for (const [name, value] of Object.entries(vars)) {
      remember(name);
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    return await fn();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    try {
      rmdirSync(ENV_LOCK);
    } catch {
      // removed as stale by another waiter; nothing to release
    }
  }
}

/** Temporary credentials of a new STS session. */
interface SessionKeys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

function newSessionKeys(): SessionKeys {
  return {
    accessKeyId: `ASIA${randomText("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)}`,
    secretAccessKey: randomBytes(30).toString("base64"),
    sessionToken: randomBytes(96).toString("base64"),
  };
}

/** The `AssumedRoleUser` and `Credentials` elements both AssumeRole answers carry. */
function assumedRoleXml(
  roleArn: string,
  sessionName: string,
  keys: SessionKeys,
  lifetimeMs: number,
): string {
  const expiration = new Date(Date.now() + lifetimeMs).toISOString().replace(/\.\d{3}Z$/, "Z");
  const roleName = roleArn.slice(roleArn.lastIndexOf("/") + 1);
  return `    <AssumedRoleUser>
      <Arn>arn:aws:sts::${STAND_IN_ACCOUNT}:assumed-role/${xmlEscape(roleName)}/${
    xmlEscape(sessionName)
  }</Arn>
      <AssumedRoleId>AROAPIGGYSTANDIN:${xmlEscape(sessionName)}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>${keys.sessionToken}</SessionToken>
      <SecretAccessKey>${keys.secretAccessKey}</SecretAccessKey>
      <Expiration>${expiration}</Expiration>
      <AccessKeyId>${keys.accessKeyId}</AccessKeyId>
    </Credentials>`;
}
