/**
 * Finds and parses the Kubernetes client configuration, the way client-go does for the parts Piggy
 * needs: an explicit `KUBECONFIG`, else the in-cluster service account, else `~/.kube/config`.
 *
 * Pure: files and environment come in as functions, so this runs unchanged on Deno and Node.
 * Supported credentials: bearer `token`, `tokenFile` (re-read by the client), client certificates
 * (`client-certificate(-data)` + `client-key(-data)`, as kind uses), and `exec` credential plugins
 * (`aws eks get-token`, `gke-gcloud-auth-plugin`, `kubelogin`; run by the client, see
 * `exec_credential.ts`). `auth-provider`, basic auth and impersonation are refused with a clear
 * error.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { dirname, isAbsolute, join } from "node:path";
import { parse } from "yaml";

/** Directory of the mounted service-account token, CA and namespace files inside a pod. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Where a {@link KubeConfig} came from. */
export type KubeConfigSource = "kubeconfig" | "in-cluster";

/** Everything the HTTPS client needs to reach one API server. */
export interface KubeConfig {
  /** API server base URL without a trailing slash, e.g. `https://10.96.0.1:443`. */
  server: string;
  /** PEM CA bundle that verifies the server; system roots when absent. */
  caCert?: string;
  /** Skip server certificate verification (kubeconfig `insecure-skip-tls-verify`). */
  insecureSkipTlsVerify: boolean;
  /** Name checked against the server certificate instead of the URL host. */
  tlsServerName?: string;
  /** Static bearer token. */
  token?: string;
  /** Bearer token file, re-read by the client (bound tokens rotate). Wins over `token`. */
  tokenFile?: string;
  /** PEM client certificate (with `clientKey`). */
  clientCert?: string;
  /** PEM client private key (with `clientCert`). */
  clientKey?: string;
  /** Credential plugin that prints a bearer token (kubeconfig `exec`). */
  exec?: ExecConfig;
  /** Namespace of the context, or of the pod when in-cluster. */
  namespace?: string;
  /** How the configuration was found. */
  source: KubeConfigSource;
  /** The kubeconfig path, or the service-account directory when in-cluster. */
  location: string;
  /** Context used (kubeconfig only). */
  context?: string;
  /** Things the caller should log as warnings (never secret). */
  warnings: string[];
}

/** API versions of the ExecCredential exchange that Piggy speaks. */
export const EXEC_API_VERSIONS: readonly string[] = [
  "client.authentication.k8s.io/v1",
  "client.authentication.k8s.io/v1beta1",
];

/** A kubeconfig `user.exec` entry: a command that prints an ExecCredential. */
export interface ExecConfig {
  /** The command: a name looked up on PATH, an absolute path, or a path relative to the kubeconfig. */
  command: string;
  args: string[];
  /** Variables added to the plugin's environment. */
  env: Record<string, string>;
  /** `client.authentication.k8s.io/v1` or `v1beta1`; the answer must use the same. */
  apiVersion: string;
  /** Shown when the command cannot be found. */
  installHint?: string;
  /** Pass the cluster (server, CA) to the plugin in `KUBERNETES_EXEC_INFO`. */
  provideClusterInfo: boolean;
}

/** Reads a UTF-8 text file; throws (e.g. `ENOENT`/`NotFound`) when it cannot. */
export type ReadTextFile = (path: string) => string;

/** Looks up an environment variable; `undefined` when unset. */
export type EnvLookup = (name: string) => string | undefined;

/** Options of {@link loadKubeConfig}. */
export interface LoadKubeConfigOptions {
  /** Environment lookup (`KUBECONFIG`, `KUBERNETES_SERVICE_HOST/PORT`, `HOME`). */
  envGet: EnvLookup;
  /** File reader. */
  readFile: ReadTextFile;
  /** Home directory for `~/.kube/config`. @default envGet("HOME") */
  homeDir?: string;
  /** Context to use instead of `current-context` (kubeconfig only). */
  context?: string;
  /** Service-account directory (tests). @default SERVICE_ACCOUNT_DIR */
  serviceAccountDir?: string;
}

/**
 * Loads the configuration. Order: `KUBECONFIG` when set (only the first file of a `:`-separated
 * list is read; a warning says so when there are more), then in-cluster when
 * `KUBERNETES_SERVICE_HOST` is set, then `$HOME/.kube/config`.
 *
 * @throws {Error} when no configuration is found or a file cannot be read
 * @throws {SyntaxError} when the kubeconfig is not YAML
 * @throws {TypeError} when the kubeconfig is incomplete or uses unsupported credentials
 */
export function loadKubeConfig(options: LoadKubeConfigOptions): KubeConfig {
  const { envGet, readFile } = options;
  const list = (envGet("KUBECONFIG") ?? "").split(":").filter((entry) => entry.trim() !== "");
  const first = list[0];
  if (first !== undefined) {
    const config = readKubeConfigFile(first, readFile, options.context);
    if (list.length > 1) {
      config.warnings.push(
        `KUBECONFIG lists ${list.length} files: only the first one ("${first}") is read`,
      );
    }
    return config;
  }
  if (envGet("KUBERNETES_SERVICE_HOST")) {
    return inClusterConfig(envGet, readFile, { serviceAccountDir: options.serviceAccountDir });
  }
  const home = options.homeDir || envGet("HOME");
  if (home) {
    const path = join(home, ".kube", "config");
    let text: string | undefined;
    try {
      text = readFile(path);
    } catch (error) {
      if (!isNotFound(error)) {
        throw new Error(`Cannot read kubeconfig "${path}"`, { cause: error });
      }
    }
    if (text !== undefined) {
      return parseKubeConfig(text, { path, readFile, context: options.context });
    }
  }
  throw new Error(
    "Cannot find a Kubernetes configuration: set KUBECONFIG, run in a pod with a service account, " +
      "or create ~/.kube/config",
  );
}

/** Options of {@link inClusterConfig}. */
export interface InClusterOptions {
  /** Service-account directory. @default SERVICE_ACCOUNT_DIR */
  serviceAccountDir?: string | undefined;
}

/**
 * The in-cluster configuration: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, the
 * mounted CA, and the mounted token file (checked now, re-read by the client on later requests).
 *
 * @throws {Error} when the host, port, token or CA is missing
 */
export function inClusterConfig(
  envGet: EnvLookup,
  readFile: ReadTextFile,
  options: InClusterOptions = {},
): KubeConfig {
  const dir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const host = envGet("KUBERNETES_SERVICE_HOST");
  const port = envGet("KUBERNETES_SERVICE_PORT");
  if (!host || !port) {
    throw new Error(
      "Cannot use the in-cluster configuration: KUBERNETES_SERVICE_HOST and " +
        "KUBERNETES_SERVICE_PORT must both be set",
    );
  }
  const tokenFile = join(dir, "token");
  const caFile = join(dir, "ca.crt");
  let caCert: string;
  try {
    if (readFile(tokenFile).trim() === "") throw new Error("the file is empty");
  } catch (error) {
    throw new Error(`Cannot read the service account token "${tokenFile}"`, { cause: error });
  }
  try {
    caCert = readFile(caFile);
  } catch (error) {
    throw new Error(`Cannot read the service account CA "${caFile}"`, { cause: error });
  }
  assertPem(caCert, `service account CA "${caFile}"`);
  let namespace: string | undefined;
  try {
    namespace = readFile(join(dir, "namespace")).trim() || undefined;
  } catch {
    // The namespace file is informative only.
  }
  const hostPart = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return {
    server: `https://${hostPart}:${port}`,
    caCert,
    insecureSkipTlsVerify: false,
    tokenFile,
    ...(namespace ? { namespace } : {}),
    source: "in-cluster",
    location: dir,
    warnings: [],
  };
}

/** Options of {@link parseKubeConfig}. */
export interface ParseKubeConfigOptions {
  /** Path of the kubeconfig: relative file references resolve against its directory. */
  path: string;
  /** Reads `certificate-authority`, `client-certificate` and `client-key` files. */
  readFile: ReadTextFile;
  /** Context to use instead of `current-context`. */
  context?: string | undefined;
}

/** What the parts of one kubeconfig share while it is read. */
interface Reading {
  /** `kubeconfig "<path>"`, for messages. */
  where: string;
  /** Resolves a file reference against the kubeconfig's directory. */
  resolve(file: string): string;
  /** Reads a referenced file; `what` names it in the error. */
  readReferenced(file: string, what: string): string;
  warnings: string[];
}

/** The context in use and the cluster and user it names. */
function selectContext(
  doc: Entry,
  requested: string | undefined,
  where: string,
): {
  contextName: string;
  context: Entry;
  clusterName: string;
  cluster: Entry;
  userName?: string;
  user: Entry;
} {
  const contextName = requested ?? stringField(doc, "current-context");
  if (!contextName) {
    throw new TypeError(
      `Cannot use ${where}: current-context is not set (run "kubectl config use-context <name>")`,
    );
  }
  const context = findNamed(doc, "contexts", "context", contextName, where);
  const clusterName = stringField(context, "cluster");
  if (!clusterName) {
    throw new TypeError(`Cannot use ${where}: context "${contextName}" names no cluster`);
  }
  const cluster = findNamed(doc, "clusters", "cluster", clusterName, where);
  const userName = stringField(context, "user");
  const user = userName ? findNamed(doc, "users", "user", userName, where) : {};
  return { contextName, context, clusterName, cluster, ...(userName ? { userName } : {}), user };
}

/** The cluster's server (no trailing slash), checked to be an http(s) URL. */
function clusterServer(
  cluster: Entry,
  clusterName: string,
  where: string,
): { server: string; url: URL } {
  const server = stringField(cluster, "server")?.replace(/\/+$/, "");
  if (!server) throw new TypeError(`Cannot use ${where}: cluster "${clusterName}" has no server`);
  let url: URL;
  try {
    url = new URL(server);
  } catch (error) {
    throw new TypeError(`Cannot use ${where}: cluster "${clusterName}" server is not a URL`, {
      cause: error,
    });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new TypeError(
      `Cannot use ${where}: cluster "${clusterName}" server must use https (got "${url.protocol}")`,
    );
  }
  return { server, url };
}

/** The cluster's CA and TLS options; warns about weak settings. */
function clusterTls(cluster: Entry, clusterName: string, url: URL, reading: Reading) {
  const { where, warnings } = reading;
  const caCert = pemFromDataOrFile(
    cluster,
    "certificate-authority",
    `cluster "${clusterName}"`,
    where,
    reading.readReferenced,
    warnings,
  );
  const insecure = cluster["insecure-skip-tls-verify"] === true;
  if (insecure && caCert !== undefined) {
    throw new TypeError(
      `Cannot use ${where}: cluster "${clusterName}" sets both a certificate authority and ` +
        "insecure-skip-tls-verify",
    );
  }
  if (insecure) {
    warnings.push(
      `cluster "${clusterName}" sets insecure-skip-tls-verify: the API server certificate is not verified`,
    );
  }
  if (url.protocol === "http:") {
    warnings.push(`cluster "${clusterName}" server uses plain HTTP: requests are not encrypted`);
  }
  if (stringField(cluster, "proxy-url")) {
    warnings.push(`cluster "${clusterName}" proxy-url is ignored: Piggy connects directly`);
  }
  const tlsServerName = stringField(cluster, "tls-server-name");
  return {
    ...(caCert !== undefined ? { caCert } : {}),
    insecureSkipTlsVerify: insecure,
    ...(tlsServerName ? { tlsServerName } : {}),
  };
}

/** User entries Piggy refuses: other authentication methods and impersonation. */
const UNSUPPORTED_USER_KEYS = [
  "auth-provider",
  "username",
  "password",
  "as",
  "as-uid",
  "as-groups",
  "as-user-extra",
];

/** Refuses a user with an authentication method or impersonation Piggy does not support. */
function refuseUnsupportedUser(user: Entry, userName: string | undefined, where: string): void {
  const unsupported = UNSUPPORTED_USER_KEYS
    .filter((key) => user[key] !== undefined && user[key] !== null);
  if (unsupported.length > 0) {
    throw new TypeError(
      `Cannot use ${where}: user "${userName}" uses ${
        unsupported.map((k) => `"${k}"`).join(", ")
      }, ` +
        "which Piggy does not support: use exec, token, tokenFile or a client certificate",
    );
  }
}

/** The user's credentials: one of exec, a token (or token file) and a client certificate. */
function userCredentials(
  user: Entry,
  userName: string | undefined,
  reading: Reading,
  base: string,
) {
  const { where, warnings } = reading;
  const owner = `user "${userName}"`;
  const read = reading.readReferenced;
  const clientCert = pemFromDataOrFile(user, "client-certificate", owner, where, read, warnings);
  const clientKey = pemFromDataOrFile(user, "client-key", owner, where, read, warnings);
  if ((clientCert === undefined) !== (clientKey === undefined)) {
    throw new TypeError(
      `Cannot use ${where}: user "${userName}" needs both a client certificate and a client key`,
    );
  }
  const token = stringField(user, "token");
  const tokenFile = stringField(user, "tokenFile");
  if (tokenFile !== undefined) read(tokenFile, "token file");
  const exec = user.exec === undefined || user.exec === null
    ? undefined
    : parseExec(user.exec, owner, where, base);
  if (exec !== undefined) {
    const others = [
      token !== undefined ? "token" : "",
      tokenFile !== undefined ? "tokenFile" : "",
      clientCert !== undefined ? "a client certificate" : "",
    ].filter(Boolean);
    if (others.length > 0) {
      throw new TypeError(
        `Cannot use ${where}: user "${userName}" sets exec and ${others.join(", ")}: use one`,
      );
    }
  }
  return {
    ...(token ? { token } : {}),
    ...(tokenFile ? { tokenFile: reading.resolve(tokenFile) } : {}),
    ...(clientCert !== undefined && clientKey !== undefined ? { clientCert, clientKey } : {}),
    ...(exec ? { exec } : {}),
  };
}

/**
 * Parses kubeconfig text and resolves its current (or the given) context.
 *
 * @throws {SyntaxError} when the text is not YAML
 * @throws {TypeError} when entries are missing or credentials are unsupported
 * @throws {Error} when a referenced file cannot be read
 */
export function parseKubeConfig(text: string, options: ParseKubeConfigOptions): KubeConfig {
  const { path, readFile } = options;
  const where = `kubeconfig "${path}"`;
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (error) {
    throw new SyntaxError(`Cannot parse ${where}: ${(error as Error).message}`, { cause: error });
  }
  if (!isRecord(doc)) throw new TypeError(`Cannot use ${where}: the file is empty or not a map`);
  const selected = selectContext(doc, options.context, where);

  const base = dirname(path);
  const resolve = (file: string) => (isAbsolute(file) ? file : join(base, file));
  const reading: Reading = {
    where,
    resolve,
    readReferenced: (file, what) => {
      const full = resolve(file);
      try {
        return readFile(full);
      } catch (error) {
        throw new Error(`Cannot read ${what} "${full}" named in ${where}`, { cause: error });
      }
    },
    warnings: [],
  };
  const { cluster, clusterName, user, userName } = selected;
  const { server, url } = clusterServer(cluster, clusterName, where);
  refuseUnsupportedUser(user, userName, where);
  const tls = clusterTls(cluster, clusterName, url, reading);
  const credentials = userCredentials(user, userName, reading, base);
  const namespace = stringField(selected.context, "namespace");
  return {
    server,
    ...tls,
    ...credentials,
    ...(namespace ? { namespace } : {}),
    source: "kubeconfig",
    location: path,
    context: selected.contextName,
    warnings: reading.warnings,
  };
}

/**
 * Reads `user.exec`. A command with a path separator that is not absolute is relative to the
 * kubeconfig's directory, as in client-go.
 */
function parseExec(value: unknown, owner: string, where: string, base: string): ExecConfig {
  const fail = (detail: string) => new TypeError(`Cannot use ${where}: ${owner} exec ${detail}`);
  if (!isRecord(value)) throw fail("is not a map");
  const command = stringField(value, "command");
  if (!command) throw fail("has no command");
  const apiVersion = stringField(value, "apiVersion");
  if (!apiVersion || !EXEC_API_VERSIONS.includes(apiVersion)) {
    throw fail(
      `apiVersion "${apiVersion ?? ""}" is not supported: use ${EXEC_API_VERSIONS.join(" or ")}`,
    );
  }
  if (value.interactiveMode === "Always") {
    throw fail('sets interactiveMode "Always": Piggy runs plugins without a terminal');
  }
  const rawArgs = value.args ?? [];
  if (!Array.isArray(rawArgs) || rawArgs.some((arg) => typeof arg !== "string")) {
    throw fail("args must be a list of strings");
  }
  const env: Record<string, string> = {};
  const rawEnv = value.env ?? [];
  if (!Array.isArray(rawEnv)) throw fail("env must be a list of name/value entries");
  for (const entry of rawEnv) {
    if (!isRecord(entry) || typeof entry.name !== "string" || typeof entry.value !== "string") {
      throw fail("env must be a list of name/value entries");
    }
    env[entry.name] = entry.value;
  }
  const installHint = stringField(value, "installHint");
  return {
    command: command.includes("/") && !isAbsolute(command) ? join(base, command) : command,
    args: rawArgs as string[],
    env,
    apiVersion,
    ...(installHint ? { installHint } : {}),
    provideClusterInfo: value.provideClusterInfo === true,
  };
}

function readKubeConfigFile(
  path: string,
  readFile: ReadTextFile,
  context: string | undefined,
): KubeConfig {
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    throw new Error(`Cannot read kubeconfig "${path}"`, { cause: error });
  }
  return parseKubeConfig(text, { path, readFile, context });
}

type Entry = Record<string, unknown>;

function isRecord(value: unknown): value is Entry {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringField(entry: Entry, key: string): string | undefined {
  const value = entry[key];
  return typeof value === "string" && value !== "" ? value : undefined;
}

function findNamed(doc: Entry, list: string, field: string, name: string, where: string): Entry {
  const entries = Array.isArray(doc[list]) ? doc[list] as unknown[] : [];
  for (const item of entries) {
    if (isRecord(item) && item.name === name) {
      const value = item[field];
      return isRecord(value) ? value : {};
    }
  }
  throw new TypeError(`Cannot use ${where}: ${field} "${name}" is not defined in ${list}`);
}

function assertPem(text: string, what: string): void {
  if (!text.includes("-----BEGIN ")) throw new TypeError(`Cannot use ${what}: it is not PEM`);
}

/** Reads `<key>-data` (base64 PEM) or `<key>` (a file path); data wins, as in client-go. */
function pemFromDataOrFile(
  entry: Entry,
  key: string,
  owner: string,
  where: string,
  readReferenced: (file: string, what: string) => string,
  warnings: string[],
): string | undefined {
  const data = stringField(entry, `${key}-data`);
  const file = stringField(entry, key);
  if (data !== undefined) {
    if (file !== undefined) warnings.push(`${owner} sets ${key}-data and ${key}: ${key}-data wins`);
    const pem = Buffer.from(data, "base64").toString("utf8");
    assertPem(pem, `${owner} ${key}-data in ${where}`);
    return pem;
  }
  if (file !== undefined) {
    const pem = readReferenced(file, key);
    assertPem(pem, `${owner} ${key} "${file}" in ${where}`);
    return pem;
  }
  return undefined;
}

function isNotFound(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (error as { code?: unknown }).code === "ENOENT" || error.name === "NotFound";
}
