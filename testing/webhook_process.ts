/**
 * Starts the real piggy-webhooks entry (`cli/webhook.ts`) as a child process with the shipped
 * permission flags, over HTTPS with a test CA, pointed at the stand-ins. Collects its log lines.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import https from "node:https";
import { fileURLToPath } from "node:url";
import { WEBHOOK_FLAGS, webhookFlagsWithV8 } from "../cli/permissions.ts";
import { createTestCa, type TestCa } from "./pki.ts";

const ENTRY = fileURLToPath(new URL("../cli/webhook.ts", import.meta.url));

/** Options of {@link startWebhook}. */
export interface StartWebhookOptions {
  /** Extra environment (KUBECONFIG, AWS_*, settings). */
  env?: Record<string, string>;
  /** Serve HTTPS with a certificate from `ca`. @default true */
  tls?: boolean;
  /** CA that issues the serving certificate. @default a new CA */
  ca?: TestCa;
  /** V8 flags instead of the shipped ones (`WEBHOOK_V8_FLAGS`). @default the shipped ones */
  v8Flags?: readonly string[];
  /** Extra `deno run` flags before the entry, e.g. `--inspect=127.0.0.1:0`. @default none */
  denoArgs?: readonly string[];
  /**
   * Listen on a port picked beforehand and add the webhook's own URL (`https://127.0.0.1:<port>`)
   * to PIGGY_ALLOWED_ADDRESSES, for flows whose pods use the webhook's real address as their
   * `piggy-address` (the launcher then calls it). @default false
   */
  allowOwnAddress?: boolean;
  /**
   * A file the webhook's stderr is opened on instead of a pipe (e.g. `/dev/full`, where every
   * write fails with ENOSPC). `logs` then stays empty and the port is picked beforehand: the
   * webhook is up when it accepts connections. @default a pipe, collected into `logs`
   */
  stderrFile?: string;
}

/** A port that was free a moment ago on 127.0.0.1. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** A running webhook process. */
export interface WebhookProcess {
  /** `https://127.0.0.1:<port>` (or http). */
  url: string;
  port: number;
  /** PEM CA that verifies the serving certificate. */
  caCert: string;
  /** CA object (issue more certificates, file paths). */
  ca: TestCa;
  /** Paths of the serving certificate and key. */
  certFile: string;
  keyFile: string;
  /** Every stderr line so far. */
  logs: string[];
  /**
   * Closes the reading end of the webhook's stderr pipe: its later writes to stderr fail with
   * EPIPE. Lines written before are in `logs`.
   */
  closeStderr(): Promise<void>;
  /** Every stdout chunk so far (must stay empty). */
  stdout: string[];
  child: Deno.ChildProcess;
  /** HTTP client trusting the test CA. */
  client: Deno.HttpClient;
  /** fetch() against the webhook with the trusting client. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /**
   * POST over `node:https` with a keep-alive agent. Unlike Deno's fetch, Node's client sets
   * TCP_NODELAY, so a request body does not wait for a delayed ACK: use it for latency checks.
   */
  post(path: string, body: string): Promise<{ status: number; body: string }>;
  /** GET over `node:https` with the same keep-alive agent as {@link WebhookProcess.post}. */
  get(path: string): Promise<{ status: number; body: string }>;
  /** Sends `signal` and waits for the exit; sends SIGKILL after `killAfterMs` when given. */
  stop(signal?: Deno.Signal, killAfterMs?: number): Promise<Deno.CommandStatus>;
  /** Resolves with the exit status. */
  status: Promise<Deno.CommandStatus>;
}

async function collectLines(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  sink: string[],
  onLine: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value: chunk } = await reader.read().catch(() => ({ done: true, value: null }));
    if (done || !chunk) break;
    buffer += decoder.decode(chunk, { stream: true });
    let index;
    while ((index = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, index);
      buffer = buffer.slice(index + 1);
      sink.push(line);
      onLine(line);
    }
  }
  if (buffer) {
    sink.push(buffer);
    onLine(buffer);
  }
}

/** Resolves with `port` once 127.0.0.1:`port` accepts a connection (not after the exit). */
async function waitForPort(port: number, exited: Promise<unknown>): Promise<number> {
  let done = false;
  exited.then(() => (done = true), () => (done = true));
  while (!done) {
    try {
      const connection = await Deno.connect({ hostname: "127.0.0.1", port });
      connection.close();
      return port;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return new Promise<number>(() => {}); // the exit is reported by the caller
}

/**
 * Starts the webhook on 127.0.0.1 with a free port and waits for its "Listening on" line.
 *
 * @throws {Error} when it exits or does not listen within 60 s (its log is in the message)
 */
export async function startWebhook(options: StartWebhookOptions = {}): Promise<WebhookProcess> {
  const tls = options.tls ?? true;
  const ca = options.ca ?? createTestCa("piggy-webhook");
  const serving = ca.issue(`webhook-${crypto.randomUUID().slice(0, 8)}`);
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/tmp",
    DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
    LISTEN_ADDRESS: "127.0.0.1:0",
    AWS_EC2_METADATA_DISABLED: "true",
    // Tests stop webhooks often: no not-ready period before the listener closes.
    PIGGY_SHUTDOWN_DELAY: "0s",
    ...(tls ? { TLS_CERT_FILE: serving.certFile, TLS_PRIVATE_KEY_FILE: serving.keyFile } : {}),
    ...options.env,
  };
  const fixedPort = options.allowOwnAddress || options.stderrFile !== undefined
    ? freePort()
    : undefined;
  if (fixedPort !== undefined) env.LISTEN_ADDRESS = `127.0.0.1:${fixedPort}`;
  if (options.allowOwnAddress) {
    env.PIGGY_ALLOWED_ADDRESSES = [env.PIGGY_ALLOWED_ADDRESSES, `https://127.0.0.1:${fixedPort}`]
      .filter((entry) => entry).join(",");
  }
  if (!env.DENO_DIR) delete env.DENO_DIR;
  const denoArgs = [
    "run",
    ...(options.v8Flags ? webhookFlagsWithV8(options.v8Flags) : WEBHOOK_FLAGS),
    ...(options.denoArgs ?? []),
    ENTRY,
  ];
  const file = options.stderrFile;
  const child = new Deno.Command(file === undefined ? Deno.execPath() : "/bin/sh", {
    // The shell opens the file as stderr, then becomes the webhook (same process).
    args: file === undefined
      ? denoArgs
      : ["-c", 'file=$1; shift; exec "$@" 2>"$file"', "sh", file, Deno.execPath(), ...denoArgs],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: file === undefined ? "piped" : "null",
  }).spawn();
  const logs: string[] = [];
  const stdout: string[] = [];
  let resolvePort: (port: number) => void = () => {};
  const portPromise = new Promise<number>((resolve) => (resolvePort = resolve));
  const stderrReader = file === undefined ? child.stderr.getReader() : undefined;
  const stderrDone = stderrReader
    ? collectLines(stderrReader, logs, (line) => {
      const match = /"message":"Listening on [^"]*:(\d+)"/.exec(line);
      if (match) resolvePort(Number(match[1]));
    })
    : waitForPort(fixedPort!, child.status).then(resolvePort);
  const stdoutDone = collectLines(child.stdout.getReader(), stdout, () => {});
  const status = child.status.then(async (result) => {
    await Promise.all([stderrDone, stdoutDone]);
    return result;
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const port = await Promise.race([
    portPromise,
    status.then((result) => {
      throw new Error(`webhook exited with ${result.code} before listening:\n${logs.join("\n")}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`webhook did not listen within 60 s:\n${logs.join("\n")}`));
      }, 60_000);
    }),
  ]).finally(() => clearTimeout(timer));
  const url = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
  const client = Deno.createHttpClient({ caCerts: [ca.cert] });
  const agent = new https.Agent({ keepAlive: true, ca: ca.cert });
  const send = (method: string, path: string, body?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const headers: Record<string, string | number> = body === undefined
        ? {}
        : { "content-type": "application/json", "content-length": Buffer.byteLength(body) };
      const request = https.request(
        { host: "127.0.0.1", port, path, method, agent, headers },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () =>
            resolve({
              status: response.statusCode ?? 0,
              body: Buffer.concat(chunks).toString("utf8"),
            }));
          response.on("error", reject);
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  const post: WebhookProcess["post"] = (path, body) => send("POST", path, body);
  const get: WebhookProcess["get"] = (path) => send("GET", path);
  return {
    url,
    port,
    caCert: ca.cert,
    ca,
    certFile: serving.certFile,
    keyFile: serving.keyFile,
    logs,
    closeStderr: async () => {
      await stderrReader?.cancel();
    },
    stdout,
    child,
    client,
    status,
    fetch: (path, init = {}) => fetch(`${url}${path}`, { ...init, client }),
    post,
    get,
    stop: async (signal = "SIGTERM", killAfterMs?: number) => {
      const kill = (signal: Deno.Signal) => {
        try {
          child.kill(signal);
        } catch {
          // already exited
        }
      };
      kill(signal);
      const timer = killAfterMs === undefined
        ? undefined
        : setTimeout(() => kill("SIGKILL"), killAfterMs);
      const result = await status;
      clearTimeout(timer);
      client.close();
      agent.destroy();
      if (!options.ca) await Deno.remove(ca.dir, { recursive: true }).catch(() => {});
      return result;
    },
  };
}
