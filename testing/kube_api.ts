/**
 * A protocol-faithful Kubernetes API stand-in over HTTPS for tests: GET /version, GETs of pods,
 * configmaps, secrets and serviceaccounts, and TokenReview (authentication.k8s.io/v1), answering
 * errors with `Status` bodies shaped exactly as kube-apiserver's.
 *
 * Authentication mirrors kube-apiserver with anonymous auth off: a client certificate signed by the
 * stand-in's CA (user = its CN) or a bearer token (the admin token, or a token from `issueToken`
 * with the API server audience, authenticated as its service account); anything else gets 401.
 * Authorization: the admin token and client-certificate users may do everything; service-account
 * users may only read `/version` (as `system:public-info-viewer` allows) and get 403 otherwise.
 *
 * Built on `node:https` only (no Deno globals), so it runs under `deno test` and Node alike.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import type { TokenReviewStatus } from "kubernetes-types/authentication/v1.d.ts";
import { type CertPair, createTestCa, type TestCa } from "./pki.ts";

/** Default audience of the API server's own tokens. */
export const API_AUDIENCE = "https://kubernetes.default.svc.cluster.local";

/** Object kinds the stand-in stores, by URL plural. */
export type KubeApiKind = "pods" | "configmaps" | "secrets" | "serviceaccounts";

/** What a request targeted; used by `failNext`, `counts` and the request log. */
export type KubeApiTarget = KubeApiKind | "tokenreviews" | "version" | "other";

/** How a request authenticated. */
export type KubeApiAuth = "token" | "clientCert" | "none";

/** One request seen by the stand-in (never the token itself). */
export interface KubeApiRequest {
  method: string;
  /** Raw request path, as encoded by the client. */
  path: string;
  target: KubeApiTarget;
  auth: KubeApiAuth;
  /** Authenticated user name, when authentication succeeded. */
  user?: string;
  /** HTTP status answered (0 when the connection was reset instead). */
  status: number;
  /** `User-Agent` header. */
  userAgent?: string;
}

/** One TokenReview seen by the stand-in: its spec without the token. */
export interface KubeApiTokenReview {
  /** `spec.audiences` as sent (`undefined` when the field was absent). */
  audiences?: unknown;
}

/** An injected failure. */
export interface FailOptions {
  /** HTTP status to answer. @default 500 */
  status?: number;
  /** Destroy the connection without answering (like a load balancer dropping it). */
  reset?: boolean;
  /** How many matching requests fail. @default 1 */
  times?: number;
  /** `Status.reason`. @default the reason kube-apiserver uses for `status` */
  reason?: string;
  /** `Status.message`. @default a message like kube-apiserver's */
  message?: string;
  /** Raw `text/plain` body instead of a `Status` (e.g. a load balancer's error page). */
  body?: string;
}

/** Options of {@link KubeApiStandIn.issueToken}. */
export interface IssueTokenOptions {
  namespace: string;
  serviceAccount: string;
  /** Binds the token to this pod; it must be stored unless `podUid` is given. */
  podName?: string;
  /** UID of the bound pod. @default the stored pod's `metadata.uid` */
  podUid?: string;
  /** Token audiences. @default [API_AUDIENCE] */
  audiences?: string[];
  /** Issue an already expired token. */
  expired?: boolean;
  /** Lifetime of the token in seconds (ignored with `expired`). @default 3600 */
  expiresInSeconds?: number;
}

/** Options of {@link KubeApiStandIn.writeKubeconfig}. */
export interface WriteKubeconfigOptions {
  /** Credentials written for the user. @default "token" */
  auth?: "token" | "clientCert" | "none";
  /** Where certificates go: inline `*-data`, or files next to the kubeconfig (relative paths). */
  certificates?: "data" | "file";
  /** CA written instead of the stand-in's (e.g. a wrong one). */
  caCert?: string;
  /** Bearer token written instead of the admin token. */
  token?: string;
  /** Server URL written instead of the stand-in's. */
  server?: string;
  /** Namespace of the context. */
  namespace?: string;
}

/** Options of {@link startKubeApi}. */
export interface StartKubeApiOptions {
  /** CA to use (kept on close). @default a new CA, removed on close */
  ca?: TestCa;
  /** Delay before every answer in milliseconds. @default 0 */
  latencyMs?: number;
}

/** A running stand-in. */
export interface KubeApiStandIn {
  /** Base URL, `https://127.0.0.1:<port>`. */
  readonly url: string;
  /** Bound port (kept across `stop()`/`restart()`). */
  readonly port: number;
  /** PEM of the CA that signed the serving and client certificates. */
  readonly caCert: string;
  /** The CA itself (to issue more certificates). */
  readonly ca: TestCa;
  /** Bearer token of the all-powerful admin user. */
  readonly adminToken: string;
  /** Client certificate of the admin user (CN `kubernetes-admin`). */
  readonly clientCert: CertPair;
  /** A kubeconfig using the admin bearer token and the inline CA. */
  readonly kubeconfigPath: string;
  /** Every request, oldest first. */
  readonly requests: KubeApiRequest[];
  /** Path and query of every request as it arrives, before any latency set by `setLatency`. */
  readonly arrived: string[];
  /** Every TokenReview body that reached the review logic, oldest first (tokens left out). */
  readonly tokenReviews: KubeApiTokenReview[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Requests per target. */
  readonly counts: Record<KubeApiTarget, number>;
  /** Most requests open at once (arrived, not yet answered or dropped) since start or reset. */
  readonly peakInFlight: number;
  /** Starts counting {@link KubeApiStandIn.peakInFlight} afresh. */
  resetPeakInFlight(): void;
  /** Writes a kubeconfig for this server and returns its path. */
  writeKubeconfig(options?: WriteKubeconfigOptions): string;
  /** Stores an object (namespace defaults to `default`); fills uid, kind and apiVersion. */
  put<T extends StoredObject>(kind: KubeApiKind, object: T): T & { metadata: StoredMetadata };
  /** Deletes an object; true when it existed. */
  delete(kind: KubeApiKind, namespace: string, name: string): boolean;
  /** Issues a service-account token that TokenReview recognises. */
  issueToken(options: IssueTokenOptions): string;
  /** Makes a token invalid from now on. */
  revokeToken(token: string): void;
  /** Makes the next matching requests fail. */
  failNext(target: KubeApiTarget | "*", options: FailOptions): void;
  /** Sets the delay before every answer. */
  setLatency(ms: number): void;
  /** Stops listening and drops every connection (the port stays reserved for `restart`). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  restart(): Promise<void>;
  /** Stops and removes temporary files. */
  close(): Promise<void>;
}

/** The minimal shape of a stored object. */
export interface StoredObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** Metadata of an object as stored (filled in by `put`). */
export interface StoredMetadata {
  name: string;
  namespace: string;
  uid: string;
  [key: string]: unknown;
}

interface TokenRecord {
  namespace: string;
  serviceAccount: string;
  serviceAccountUid: string;
  podName?: string;
  podUid?: string;
  audiences: string[];
  expiresAt: number;
  jti: string;
  revoked: boolean;
}

interface Failure {
  target: KubeApiTarget | "*";
  remaining: number;
  options: FailOptions;
}

interface Identity {
  auth: KubeApiAuth;
  user?: string;
  admin: boolean;
}

interface StatusBody {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure";
  message: string;
  reason: string;
  details?: Record<string, unknown>;
  code: number;
}

const KINDS: readonly KubeApiKind[] = ["pods", "configmaps", "secrets", "serviceaccounts"];
const OBJECT_KIND: Record<KubeApiKind, string> = {
  pods: "Pod",
  configmaps: "ConfigMap",
  secrets: "Secret",
  serviceaccounts: "ServiceAccount",
};
const ADMIN_USER = "kubernetes-admin";
const TOKEN_REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews";
const MAX_BODY_BYTES = 3 * 1024 * 1024;
const DELETION_GRACE_MS = 60_000;

const DEFAULT_REASON: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  413: "RequestEntityTooLarge",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

/** A kube-apiserver `Status` failure body. */
export function statusBody(
  code: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
): StatusBody {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

function base64Url(value: string | Buffer): string {
  return Buffer.from(value).toString("base64url");
}

function forbiddenMessage(user: string, target: KubeApiTarget, namespace?: string, name?: string) {
  if (target === "tokenreviews") {
    return `tokenreviews.authentication.k8s.io is forbidden: User "${user}" cannot create resource ` +
      `"tokenreviews" in API group "authentication.k8s.io" at the cluster scope`;
  }
  return `${target} "${name ?? ""}" is forbidden: User "${user}" cannot get resource "${target}" ` +
    `in API group "" in the namespace "${namespace ?? ""}"`;
}

function injectedStatus(failure: FailOptions, target: KubeApiTarget, name?: string): StatusBody {
  const code = failure.status ?? 500;
  const reason = failure.reason ?? DEFAULT_REASON[code] ?? "";
  const defaults: Record<number, string> = {
    401: "Unauthorized",
    403: `${target} "${name ?? ""}" is forbidden: injected failure`,
    404: `${target} "${name ?? ""}" not found`,
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected failure",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted, but may still be " +
      "processing the request",
  };
  const message = failure.message ?? defaults[code] ?? "injected failure";
  const details = code === 500
    ? { causes: [{ message: "injected failure" }] }
    : name !== undefined
    ? { name, kind: target }
    : {};
  return statusBody(code, reason, message, details);
}

/**
 * Starts the stand-in on 127.0.0.1 with an ephemeral port.
 *
 * @example
 * ```ts
 * const api = await startKubeApi();
 * try {
 *   api.put("configmaps", { metadata: { namespace: "ns", name: "cm" }, data: { a: "1" } });
 *   // … point a client at api.kubeconfigPath …
 * } finally {
 *   await api.close();
 * }
 * ```
 */
export async function startKubeApi(options: StartKubeApiOptions = {}): Promise<KubeApiStandIn> {
  const ownCa = options.ca === undefined;
  const ca = options.ca ?? createTestCa("kube-api");
  const serving = ca.issue(`kube-apiserver-${randomBytes(4).toString("hex")}`);
  const clientCert = ca.issue(`kube-admin-${randomBytes(4).toString("hex")}`, {
    clientAuth: true,
    cn: ADMIN_USER,
  });
  const workDir = mkdtempSync(join(tmpdir(), "kube-api-standin-"));
  const adminToken = randomBytes(24).toString("base64url");

  const objects = new Map<string, StoredObject>();
  const tokens = new Map<string, TokenRecord>();
  const serviceAccountUids = new Map<string, string>();
  const failures: Failure[] = [];
  const requests: KubeApiRequest[] = [];
  const arrived: string[] = [];
  const tokenReviews: KubeApiTokenReview[] = [];
  let connections = 0;
  const counts: Record<KubeApiTarget, number> = {
    pods: 0,
    configmaps: 0,
    secrets: 0,
    serviceaccounts: 0,
    tokenreviews: 0,
    version: 0,
    other: 0,
  };
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let latencyMs = options.latencyMs ?? 0;
  let kubeconfigCount = 0;
  let inFlight = 0;
  let peakInFlight = 0;

  const key = (kind: KubeApiKind, namespace: string, name: string) =>
    `${kind} ${namespace}/${name}`;

  const serviceAccountUid = (namespace: string, name: string): string => {
    const stored = objects.get(key("serviceaccounts", namespace, name));
    const uid = stored?.metadata?.uid;
    if (uid) return uid;
    const id = `${namespace}/${name}`;
    let generated = serviceAccountUids.get(id);
    if (!generated) {
      generated = randomUUID();
      serviceAccountUids.set(id, generated);
    }
    return generated;
  };

  const takeFailure = (target: KubeApiTarget): FailOptions | undefined => {
    const index = failures.findIndex((f) => f.target === target || f.target === "*");
    if (index < 0) return undefined;
    const failure = failures[index]!;
    failure.remaining -= 1;
    if (failure.remaining <= 0) failures.splice(index, 1);
    return failure.options;
  };

  /** Mirrors the service-account token authenticator behind TokenReview. */
  const review = (token: string, requested: string[]): TokenReviewStatus => {
    const invalid = (why: string): TokenReviewStatus => ({
      user: {},
      error: `[invalid bearer token, ${why}]`,
    });
    const record = tokens.get(token);
    if (!record) return invalid("square/go-jose: error in cryptographic primitive");
    if (record.revoked) return invalid("token has been invalidated");
    if (record.expiresAt <= Date.now()) return invalid("service account token has expired");
    const targets = requested.length > 0 ? requested : [API_AUDIENCE];
    const audiences = record.audiences.filter((a) => targets.includes(a));
    if (audiences.length === 0) {
      return invalid(
        `token audiences ${JSON.stringify(record.audiences)} is invalid for the target audiences ` +
          JSON.stringify(targets),
      );
    }
    const extra: Record<string, string[]> = {
      "authentication.kubernetes.io/credential-id": [`JTI=${record.jti}`],
    };
    if (record.podName !== undefined) {
      const pod = objects.get(key("pods", record.namespace, record.podName));
      if (!pod) return invalid(`pods "${record.podName}" not found`);
      if (pod.metadata?.uid !== record.podUid) {
        return invalid(
          `the UID in the bound object reference (${record.podUid}) does not match the UID in ` +
            "record. The object might have been deleted and then recreated",
        );
      }
      const deletion = pod.metadata?.deletionTimestamp;
      if (
        typeof deletion === "string" && Date.parse(deletion) + DELETION_GRACE_MS <= Date.now()
      ) {
        return invalid(`pod "${record.podName}" is being deleted`);
      }
      const nodeName = (pod.spec as { nodeName?: unknown } | undefined)?.nodeName;
      if (typeof nodeName === "string" && nodeName !== "") {
        extra["authentication.kubernetes.io/node-name"] = [nodeName];
      }
      extra["authentication.kubernetes.io/pod-name"] = [record.podName];
      extra["authentication.kubernetes.io/pod-uid"] = [record.podUid ?? ""];
    }
    return {
      authenticated: true,
      user: {
        username: `system:serviceaccount:${record.namespace}:${record.serviceAccount}`,
        uid: record.serviceAccountUid,
        groups: [
          "system:serviceaccounts",
          `system:serviceaccounts:${record.namespace}`,
          "system:authenticated",
        ],
        extra,
      },
      audiences,
    };
  };

  const authenticate = (req: IncomingMessage): Identity | undefined => {
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate?.();
    const presented = peer !== undefined && peer !== null && Object.keys(peer).length > 0;
    if (presented) {
      if (!socket.authorized) return undefined;
      const cn: unknown = peer.subject?.CN;
      const user = Array.isArray(cn) ? String(cn[0] ?? "") : String(cn ?? "");
      return { auth: "clientCert", user, admin: true };
    }
    const header = req.headers.authorization;
    if (header === undefined) return { auth: "none", admin: false };
    const match = /^Bearer (\S+)$/i.exec(header);
    if (!match) return undefined;
    const token = match[1]!;
    if (token === adminToken) return { auth: "token", user: ADMIN_USER, admin: true };
    const status = review(token, []);
    if (!status.authenticated) return undefined;
    return { auth: "token", user: status.user?.username ?? "", admin: false };
  };

  const respond = (
    res: ServerResponse,
    status: number,
    body: unknown,
    extraHeaders: Record<string, string> = {},
  ): void => {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    res.writeHead(status, {
      "Content-Type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
      "Content-Length": String(Buffer.byteLength(text)),
      ...extraHeaders,
    });
    res.end(text);
  };

  const readBody = (req: IncomingMessage): Promise<string | undefined> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      });
      req.on(
        "end",
        () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString("utf8")),
      );
      req.on("error", reject);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? "GET";
    // Read the whole body first so that keep-alive connections stay usable after early answers.
    const text = method === "GET" || method === "HEAD" ? "" : await readBody(req);
    const rawPath = req.url ?? "/";
    const pathOnly = rawPath.split("?")[0] ?? "/";
    let segments: string[];
    try {
      segments = pathOnly.split("/").slice(1).map((s) => decodeURIComponent(s));
    } catch {
      segments = [];
    }
    let target: KubeApiTarget = "other";
    let namespace: string | undefined;
    let name: string | undefined;
    if (pathOnly === "/version") target = "version";
    else if (pathOnly === TOKEN_REVIEW_PATH) target = "tokenreviews";
    else if (
      segments.length === 6 && segments[0] === "api" && segments[1] === "v1" &&
      segments[2] === "namespaces" && KINDS.includes(segments[4] as KubeApiKind) &&
      segments[3] !== "" && segments[5] !== ""
    ) {
      target = segments[4] as KubeApiKind;
      namespace = segments[3];
      name = segments[5];
    }
    counts[target] += 1;

    const identity = authenticate(req);
    const record: KubeApiRequest = {
      method,
      path: rawPath,
      target,
      auth: identity?.auth ?? (req.headers.authorization ? "token" : "clientCert"),
      status: 0,
    };
    if (identity?.user !== undefined) record.user = identity.user;
    if (req.headers["user-agent"] !== undefined) record.userAgent = req.headers["user-agent"];
    requests.push(record);
    const send = (status: number, body: unknown, headers?: Record<string, string>) => {
      record.status = status;
      respond(res, status, body, headers);
    };

    if (!identity || identity.auth === "none") {
      send(401, statusBody(401, "Unauthorized", "Unauthorized"));
      return;
    }
    const failure = takeFailure(target);
    if (failure) {
      const status = failure.status ?? 500;
      if (failure.reset) req.socket.destroy();
      else if (failure.body !== undefined) send(status, failure.body);
      else {
        send(
          status,
          injectedStatus(failure, target, name),
          status === 429 ? { "Retry-After": "1" } : {},
        );
      }
      return;
    }
    if (target === "other") {
      send(
        404,
        statusBody(404, "NotFound", "the server could not find the requested resource", {}),
      );
      return;
    }
    const allowedMethod = target === "tokenreviews" ? "POST" : "GET";
    if (method !== allowedMethod) {
      send(
        405,
        statusBody(
          405,
          "MethodNotAllowed",
          "the server does not allow this method on the requested resource",
          {},
        ),
      );
      return;
    }
    if (target === "version") {
      send(200, {
        major: "1",
        minor: "30",
        gitVersion: "v1.30.0-piggy-standin",
        gitCommit: "0000000000000000000000000000000000000000",
        gitTreeState: "clean",
        buildDate: "2026-01-01T00:00:00Z",
        goVersion: "go1.22.0",
        compiler: "gc",
        platform: "linux/amd64",
      });
      return;
    }
    if (!identity.admin) {
      const user = identity.user ?? "system:anonymous";
      const details = target === "tokenreviews"
        ? { group: "authentication.k8s.io", kind: "tokenreviews" }
        : { name, kind: target };
      send(
        403,
        statusBody(403, "Forbidden", forbiddenMessage(user, target, namespace, name), details),
      );
      return;
    }
    if (target === "tokenreviews") {
      if (text === undefined) {
        send(413, statusBody(413, "RequestEntityTooLarge", "the request is too large", {}));
        return;
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (error) {
        send(400, statusBody(400, "BadRequest", `invalid JSON: ${(error as Error).message}`, {}));
        return;
      }
      const reviewBody = body as {
        kind?: unknown;
        spec?: { token?: unknown; audiences?: unknown };
      };
      if (typeof body !== "object" || body === null || reviewBody.kind !== "TokenReview") {
        send(400, statusBody(400, "BadRequest", "the body is not a TokenReview", {}));
        return;
      }
      const token = typeof reviewBody.spec?.token === "string" ? reviewBody.spec.token : "";
      if (token === "") {
        send(
          400,
          statusBody(400, "BadRequest", "token is required for TokenReview in authentication"),
        );
        return;
      }
      tokenReviews.push(
        reviewBody.spec && "audiences" in reviewBody.spec
          ? { audiences: structuredClone(reviewBody.spec.audiences) }
          : {},
      );
      const audiences = Array.isArray(reviewBody.spec?.audiences)
        ? (reviewBody.spec.audiences as unknown[]).filter((a): a is string => typeof a === "string")
        : [];
      // Like kube-apiserver: 201 Created, the spec echoed back, then the status.
      send(201, {
        kind: "TokenReview",
        apiVersion: "authentication.k8s.io/v1",
        metadata: { creationTimestamp: null },
        spec: reviewBody.spec,
        status: review(token, audiences),
      });
      return;
    }
    const stored = objects.get(key(target, namespace!, name!));
    if (!stored) {
      send(
        404,
        statusBody(404, "NotFound", `${target} "${name}" not found`, { name, kind: target }),
      );
      return;
    }
    send(200, stored);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    arrived.push(req.url ?? "");
    inFlight += 1;
    peakInFlight = Math.max(peakInFlight, inFlight);
    res.once("close", () => inFlight -= 1);
    const run = () => {
      handle(req, res).catch((error) => {
        if (!res.headersSent) {
          respond(res, 500, statusBody(500, "InternalError", String(error)));
        }
      });
    };
    if (latencyMs <= 0) {
      run();
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!req.socket.destroyed) run();
    }, latencyMs);
    timers.add(timer);
  };

  const server = https.createServer({
    cert: serving.cert,
    key: serving.key,
    ca: ca.cert,
    requestCert: true,
    rejectUnauthorized: false,
  }, onRequest);
  server.on("connection", (socket: Socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as { port: number }).port;
  const url = `https://127.0.0.1:${port}`;
  let running = true;

  const stop = async (): Promise<void> => {
    if (!running) return;
    running = false;
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    await closed;
  };

  const writeKubeconfig = (config: WriteKubeconfigOptions = {}): string => {
    kubeconfigCount += 1;
    const dir = join(workDir, `kubeconfig-${kubeconfigCount}`);
    mkdirSync(dir);
    const auth = config.auth ?? "token";
    const inline = (config.certificates ?? "data") === "data";
    const caPem = config.caCert ?? ca.cert;
    const cluster: Record<string, string> = { server: config.server ?? url };
    if (inline) cluster["certificate-authority-data"] = Buffer.from(caPem).toString("base64");
    else {
      writeFileSync(join(dir, "ca.crt"), caPem);
      cluster["certificate-authority"] = "ca.crt";
    }
    const user: Record<string, string> = {};
    if (auth === "token") user.token = config.token ?? adminToken;
    if (auth === "clientCert" && inline) {
      user["client-certificate-data"] = Buffer.from(clientCert.cert).toString("base64");
      user["client-key-data"] = Buffer.from(clientCert.key).toString("base64");
    } else if (auth === "clientCert") {
      writeFileSync(join(dir, "client.crt"), clientCert.cert);
      writeFileSync(join(dir, "client.key"), clientCert.key, { mode: 0o600 });
      user["client-certificate"] = "client.crt";
      user["client-key"] = "client.key";
    }
    const context: Record<string, string> = { cluster: "standin", user: "standin-user" };
    if (config.namespace) context.namespace = config.namespace;
    const doc = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "standin", cluster }],
      users: [{ name: "standin-user", user }],
      contexts: [{ name: "standin", context }],
      "current-context": "standin",
    };
    const path = join(dir, "config");
    // JSON is valid YAML, and kubectl reads it too.
    writeFileSync(path, JSON.stringify(doc, null, 2), { mode: 0o600 });
    return path;
  };

  const kubeconfigPath = writeKubeconfig();

  return {
    url,
    port,
    caCert: ca.cert,
    ca,
    adminToken,
    clientCert,
    kubeconfigPath,
    requests,
    arrived,
    tokenReviews,
    get connections() {
      return connections;
    },
    counts,
    get peakInFlight() {
      return peakInFlight;
    },
    resetPeakInFlight() {
      peakInFlight = inFlight;
    },
    writeKubeconfig,
    put(kind, object) {
      const copy = structuredClone(object);
      const metadata = copy.metadata ?? {};
      copy.metadata = metadata;
      metadata.namespace ??= "default";
      if (!metadata.name) throw new TypeError("Cannot store an object without metadata.name");
      metadata.uid ??= randomUUID();
      metadata.resourceVersion ??= String(objects.size + 1);
      metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
      copy.apiVersion ??= "v1";
      copy.kind ??= OBJECT_KIND[kind];
      objects.set(key(kind, metadata.namespace, metadata.name), copy);
      return structuredClone(copy) as typeof object & { metadata: StoredMetadata };
    },
    delete(kind, namespace, name) {
      return objects.delete(key(kind, namespace, name));
    },
    issueToken(issue) {
      if (issue.podUid !== undefined && issue.podName === undefined) {
        throw new TypeError("Cannot issue a token with podUid but no podName");
      }
      let podUid = issue.podUid;
      if (issue.podName !== undefined && podUid === undefined) {
        const pod = objects.get(key("pods", issue.namespace, issue.podName));
        if (!pod) {
          throw new TypeError(
            `Cannot bind a token to pod "${issue.namespace}/${issue.podName}": put the pod first`,
          );
        }
        podUid = pod.metadata?.uid;
      }
      const now = Math.floor(Date.now() / 1000);
      const exp = issue.expired ? now - 60 : now + (issue.expiresInSeconds ?? 3600);
      const audiences = issue.audiences ?? [API_AUDIENCE];
      const jti = randomUUID();
      const saUid = serviceAccountUid(issue.namespace, issue.serviceAccount);
      const claims = {
        aud: audiences,
        exp,
        iat: now - 1,
        iss: API_AUDIENCE,
        jti,
        "kubernetes.io": {
          namespace: issue.namespace,
          ...(issue.podName !== undefined ? { pod: { name: issue.podName, uid: podUid } } : {}),
          serviceaccount: { name: issue.serviceAccount, uid: saUid },
        },
        nbf: now - 1,
        sub: `system:serviceaccount:${issue.namespace}:${issue.serviceAccount}`,
      };
      const token = [
        base64Url(JSON.stringify({ alg: "RS256", kid: "piggy-standin" })),
        base64Url(JSON.stringify(claims)),
        base64Url(randomBytes(32)),
      ].join(".");
      tokens.set(token, {
        namespace: issue.namespace,
        serviceAccount: issue.serviceAccount,
        serviceAccountUid: saUid,
        ...(issue.podName !== undefined ? { podName: issue.podName } : {}),
        ...(podUid !== undefined ? { podUid } : {}),
        audiences: [...audiences],
        expiresAt: exp * 1000,
        jti,
        revoked: false,
      });
      return token;
    },
    revokeToken(token) {
      const record = tokens.get(token);
      if (record) record.revoked = true;
    },
    failNext(target, failure) {
      failures.push({ target, remaining: failure.times ?? 1, options: { ...failure } });
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    stop,
    async restart() {
      if (running) return;
      await listen(port);
      running = true;
    },
    async close() {
      await stop();
      rmSync(workDir, { recursive: true, force: true });
      if (ownCa) rmSync(ca.dir, { recursive: true, force: true });
    },
  };
}
