/**
 * kubeconfig `exec` credential plugins (client.authentication.k8s.io ExecCredential), with
 * client-go's cache semantics: the token is reused until its `expirationTimestamp` passes (forever
 * when it has none), and the plugin runs again when the API server answers 401 to the cached token.
 * Concurrent callers share one plugin run. The token, the plugin's stdout and its environment never
 * reach an error or a log line.
 *
 * @module
 */

import { KubeUnavailableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { ExecConfig } from "./kubeconfig.ts";

/** What a finished command printed and returned. */
export interface CommandResult {
  /** Exit code (128 + signal number when killed by a signal). */
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command` with `args` (no shell, stdin closed), adding `env` to the caller's environment;
 * rejects when it cannot start (`code` ENOENT), runs longer than `timeoutMs`, or prints more than
 * `maxOutputBytes`. The runtime's is `src/runtime/run_command.ts`; only the local start passes it.
 */
export type RunCommand = (
  command: string,
  args: readonly string[],
  options: { env: Record<string, string>; timeoutMs: number; maxOutputBytes: number },
) => Promise<CommandResult>;

/** Longest a plugin may run (`aws eks get-token` takes about a second). */
export const EXEC_TIMEOUT_MS = 60_000;

/** Largest plugin output kept. */
export const EXEC_MAX_OUTPUT_BYTES = 1024 * 1024;

/** The cluster a plugin may be told about (`provideClusterInfo`). */
export interface ExecCluster {
  server: string;
  caCert?: string | undefined;
  insecureSkipTlsVerify: boolean;
  tlsServerName?: string | undefined;
}

/** Options of {@link ExecCredentialCache}. */
export interface ExecCredentialOptions {
  /** Clock in milliseconds. @default Date.now */
  now?: () => number;
  /** @default EXEC_TIMEOUT_MS */
  timeoutMs?: number;
  logger?: Logger | undefined;
}

/** A token and whether this call ran the plugin to get it. */
export interface ExecToken {
  token: string;
  fresh: boolean;
}

/** Runs an exec plugin when needed and keeps its token. */
export class ExecCredentialCache {
  readonly #exec: ExecConfig;
  readonly #cluster: ExecCluster;
  readonly #run: RunCommand;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  readonly #logger: Logger | undefined;
  #token: string | undefined;
  #expiresAt: number | undefined;
  #pending: Promise<string> | undefined;

  constructor(
    exec: ExecConfig,
    cluster: ExecCluster,
    run: RunCommand,
    options: ExecCredentialOptions = {},
  ) {
    this.#exec = exec;
    this.#cluster = cluster;
    this.#run = run;
    this.#now = options.now ?? Date.now;
    this.#timeoutMs = options.timeoutMs ?? EXEC_TIMEOUT_MS;
    this.#logger = options.logger;
  }

  /**
   * The cached token while it is valid, else a new one from the plugin.
   *
   * @param rejected a token the API server answered 401 to: replaced unless already replaced
   * @throws {KubeUnavailableError} when the plugin fails or prints no valid ExecCredential
   */
  async get(rejected?: string): Promise<ExecToken> {
    const token = this.#token;
    const expired = this.#expiresAt !== undefined && this.#now() >= this.#expiresAt;
    if (token !== undefined && !expired && token !== rejected) return { token, fresh: false };
    if (this.#pending === undefined) {
      this.#pending = this.#refresh().finally(() => {
        this.#pending = undefined;
      });
    }
    return { token: await this.#pending, fresh: true };
  }

  async #refresh(): Promise<string> {
    const name = `"${this.#exec.command}"`;
    const fail = (detail: string, cause?: unknown) =>
      new KubeUnavailableError(
        `Cannot get a Kubernetes credential from the exec plugin ${name}: ${detail}`,
        cause === undefined ? {} : { cause },
      );
    let result;
    try {
      result = await this.#run(this.#exec.command, this.#exec.args, {
        env: { ...this.#exec.env, KUBERNETES_EXEC_INFO: JSON.stringify(this.#execInfo()) },
        timeoutMs: this.#timeoutMs,
        maxOutputBytes: EXEC_MAX_OUTPUT_BYTES,
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "ENOENT") {
        throw fail(`the command was not found${hint(this.#exec.installHint)}`, error);
      }
      throw fail(error instanceof Error ? error.message : String(error), error);
    }
    if (result.code !== 0) {
      throw fail(`it exited with code ${result.code}${lastLine(result.stderr)}`);
    }
    const credential = parseCredential(result.stdout, this.#exec.apiVersion);
    if (typeof credential === "string") throw fail(credential);
    this.#token = credential.token;
    this.#expiresAt = credential.expiresAt;
    this.#logger?.debug("Kubernetes credential from the exec plugin", {
      command: this.#exec.command,
      ...(credential.expiresAt !== undefined
        ? { expires: new Date(credential.expiresAt).toISOString() }
        : {}),
    });
    return credential.token;
  }

  #execInfo(): Record<string, unknown> {
    const cluster = this.#cluster;
    return {
      apiVersion: this.#exec.apiVersion,
      kind: "ExecCredential",
      spec: {
        interactive: false,
        ...(this.#exec.provideClusterInfo
          ? {
            cluster: {
              server: cluster.server,
              ...(cluster.caCert !== undefined
                ? { "certificate-authority-data": btoa(cluster.caCert) }
                : {}),
              ...(cluster.tlsServerName ? { "tls-server-name": cluster.tlsServerName } : {}),
              "insecure-skip-tls-verify": cluster.insecureSkipTlsVerify,
            },
          }
          : {}),
      },
    };
  }
}

function hint(installHint: string | undefined): string {
  return installHint ? ` (${installHint.trim().replace(/\s+/g, " ")})` : "";
}

/** The plugin's last stderr line, cleaned and bounded (plugins print their error there). */
function lastLine(stderr: string): string {
  // deno-lint-ignore no-control-regex
  const line = stderr.trim().split("\n").at(-1)?.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  if (!line) return "";
  return `: ${line.length > 300 ? `${line.slice(0, 300)}…` : line}`;
}

/**
 * Reads an ExecCredential. Returns the problem as a string (never quoting stdout, which holds the
 * token).
 */
export function parseCredential(
  stdout: string,
  apiVersion: string,
): { token: string; expiresAt: number | undefined } | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    return "its output is not JSON";
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return "its output is not an ExecCredential object";
  }
  const credential = parsed as Record<string, unknown>;
  if (credential.kind !== "ExecCredential") return 'its output is not kind "ExecCredential"';
  if (credential.apiVersion !== apiVersion) {
    return `it answered apiVersion "${String(credential.apiVersion)}", not "${apiVersion}"`;
  }
  const status = credential.status as Record<string, unknown> | undefined;
  if (typeof status !== "object" || status === null) return "its output has no status";
  if (status.clientCertificateData !== undefined || status.clientKeyData !== undefined) {
    return "it returned a client certificate, which Piggy does not support (only a token)";
  }
  if (typeof status.token !== "string" || status.token === "") {
    return "its output has no status.token";
  }
  let expiresAt: number | undefined;
  if (status.expirationTimestamp !== undefined) {
    expiresAt = typeof status.expirationTimestamp === "string"
      ? Date.parse(status.expirationTimestamp)
      : NaN;
    if (Number.isNaN(expiresAt)) return "its status.expirationTimestamp is not an RFC 3339 time";
  }
  return { token: status.token, expiresAt };
}
