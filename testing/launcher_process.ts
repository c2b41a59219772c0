/**
 * Process-test helpers for piggy-env: run `deno run <LAUNCHER_FLAGS> cli/piggy_env.ts …` as a real
 * process with an explicit environment, and a small `/secret` responder (HTTP or HTTPS) that records
 * requests and answers like the webhook.
 *
 * Reusable by the end-to-end tests against the real webhook: only `runLauncher` / `spawnLauncher`
 * are needed there.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { LAUNCHER_FLAGS } from "../cli/permissions.ts";

/** Repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The launcher entry point every process test runs (unless it names another). */
export const LAUNCHER_ENTRY = join(ROOT, "cli", "piggy_env.ts");

/**
 * The bundled launcher (`deno task bundle`, {@link ensureStandaloneBundle}): what `deno compile`
 * embeds and the benchmark runs.
 */
export const LAUNCHER_BUNDLE = join(ROOT, "gen", "piggy_env.js");

/** Directory of the tiny test applications. */
export const APPS_DIR = join(ROOT, "testing", "apps");

/** `env(1)`, used to hand the launcher an environment in a known order. */
export const ENV_BINARY = "/usr/bin/env";

/** The deno binary running the tests (the pinned one). */
export const DENO_BINARY = process.execPath;

/**
 * Environment every launcher process gets on top of the test's own: what `deno run` needs to find
 * its cache, and a PATH for the wrapped command. Nothing else leaks from the test runner.
 */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {
    PATH: "/usr/local/bin:/usr/bin:/bin",
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
  };
  for (const name of ["HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
    const value = process.env[name];
    if (value) env[name] = value;
  }
  return env;
}

/** What piggy-env imports in standalone mode (`deno task bundle` builds it). */
export const STANDALONE_BUNDLE = join(ROOT, "gen", "standalone_source.js");

let bundling: Promise<string> | undefined;

/**
 * Builds `gen/standalone_source.js` and the launcher bundle ({@link LAUNCHER_BUNDLE}) once per
 * process (through scripts/bundle_launcher.ts as a process: testing/ imports nothing from
 * scripts/); call it before running the launcher in standalone mode or from its bundle.
 *
 * @returns the bundle's path
 */
export function ensureStandaloneBundle(): Promise<string> {
  bundling ??= new Promise((resolve, reject) => {
    const child = spawn(DENO_BINARY, ["run", "-A", join(ROOT, "scripts", "bundle_launcher.ts")], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(STANDALONE_BUNDLE);
      else reject(new Error(`Cannot bundle the standalone source (exit ${code}): ${stderr}`));
    });
  });
  return bundling;
}

/** How to run the launcher. */
export interface LauncherSpec {
  /** Arguments after the entry point. */
  args: string[];
  /**
   * Extra environment, merged over {@link baseEnv} in insertion order (a name already there keeps
   * its place); `undefined` removes a variable. The launcher receives exactly this order.
   */
  env?: Record<string, string | undefined>;
  /** Working directory. @default the repository root */
  cwd?: string;
  /** Kill the process (SIGKILL) after this many ms. @default 60000 */
  timeoutMs?: number;
  /** The entry point to run (e.g. a copy of the launcher's tree). @default LAUNCHER_ENTRY */
  entry?: string;
  /** More `deno run` flags, after the launcher's own (e.g. `--preload`). @default none */
  denoFlags?: string[];
}

/** The finished process. */
export interface LauncherResult {
  /** Exit code, or `null` when killed by a signal. */
  code: number | null;
  /** Signal that killed it, if any. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** PID of the spawned process (piggy-env, then the app after execve). */
  pid: number;
  /** stderr lines that are JSON log records. */
  logs: Array<Record<string, unknown>>;
  /** stderr lines that are not JSON. */
  plainStderr: string[];
  /** When the process was spawned (ms since epoch). */
  startedAt: number;
}

/** A running launcher. */
export interface LauncherProcess {
  child: ChildProcess;
  pid: number;
  /** Resolves with the first stdout line matching `pattern` (rejects if the process ends first). */
  waitForStdout(pattern: RegExp): Promise<string>;
  /** Resolves when the process ends. */
  done: Promise<LauncherResult>;
}

function parseLogs(stderr: string): { logs: Array<Record<string, unknown>>; plain: string[] } {
  const logs: Array<Record<string, unknown>> = [];
  const plain: string[] = [];
  for (const line of stderr.split("\n")) {
    if (line === "") continue;
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed && typeof parsed === "object") {
        logs.push(parsed as Record<string, unknown>);
        continue;
      }
    } catch {
      // not JSON
    }
    plain.push(line);
  }
  return { logs, plain };
}

/** Starts `deno run <LAUNCHER_FLAGS> cli/piggy_env.ts <args>` (or another entry). */
export function spawnLauncher(spec: LauncherSpec): LauncherProcess {
  const env: Record<string, string> = { ...baseEnv() };
  for (const [name, value] of Object.entries(spec.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  const startedAt = Date.now();
  // Through `env -i NAME=value …` (which execs deno in the same process) so the launcher receives
  // its environment in exactly this order; Deno's own spawn does not keep the order of `env`.
  const assignments = Object.entries(env).map(([name, value]) => `${name}=${value}`);
  const command = [
    DENO_BINARY,
    "run",
    ...LAUNCHER_FLAGS,
    ...(spec.denoFlags ?? []),
    spec.entry ?? LAUNCHER_ENTRY,
    ...spec.args,
  ];
  const child = spawn(ENV_BINARY, ["-i", ...assignments, ...command], {
    cwd: spec.cwd ?? ROOT,
    env: {},
    stdio: ["ignore", "pipe", "pipe"],
  });
  const pid = child.pid ?? -1;
  let stdout = "";
  let stderr = "";
  const watchers: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    stdout += chunk;
    for (const watcher of [...watchers]) {
      const line = stdout.split("\n").find((candidate) => watcher.pattern.test(candidate));
      if (line !== undefined) {
        watchers.splice(watchers.indexOf(watcher), 1);
        watcher.resolve(line);
      }
    }
  });
  child.stderr?.on("data", (chunk: string) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), spec.timeoutMs ?? 60_000);
  const done = new Promise<LauncherResult>((resolve, reject) => {
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const { logs, plain } = parseLogs(stderr);
      resolve({ code, signal, stdout, stderr, pid, logs, plainStderr: plain, startedAt });
    });
  });
  const waitForStdout = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const line = stdout.split("\n").find((candidate) => pattern.test(candidate));
      if (line !== undefined) {
        resolve(line);
        return;
      }
      watchers.push({ pattern, resolve });
      done.then(
        (result) =>
          reject(
            new Error(
              `launcher ended (code ${result.code}) before printing ${pattern}: ${result.stderr}`,
            ),
          ),
        reject,
      );
    });
  return { child, pid, waitForStdout, done };
}

/** Runs the launcher to completion. */
export function runLauncher(spec: LauncherSpec): Promise<LauncherResult> {
  return spawnLauncher(spec).done;
}

/** Log messages of a result, in order. */
export function logMessages(result: LauncherResult): string[] {
  return result.logs.map((line) => String(line.message));
}

/** What the report app (`testing/apps/report.sh`) printed. */
export interface AppReport {
  pid: number;
  /** `SigIgn` of /proc/self/status (hex). */
  sigIgn: string;
  /** `SigBlk` of /proc/self/status (hex). */
  sigBlk: string;
  /** Open file descriptors. */
  fds: number[];
  /** The app's initial environment, in execve order (from /proc/self/environ). */
  env: Array<[string, string]>;
  /** Its arguments after the script name. */
  args: string[];
}

/** Path of the report app. */
export const REPORT_APP = join(APPS_DIR, "report.sh");

/** Parses the report app's stdout. */
export function parseReport(stdout: string): AppReport {
  const fields = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const space = line.indexOf(" ");
    if (space > 0) fields.set(line.slice(0, space), line.slice(space + 1));
  }
  const decode = (name: string) =>
    new TextDecoder().decode(Uint8Array.from(atob(fields.get(name) ?? ""), (c) => c.charCodeAt(0)));
  const env = decode("environ").split("\0").filter((entry) => entry !== "").map((entry) => {
    const equals = entry.indexOf("=");
    return [entry.slice(0, equals), entry.slice(equals + 1)] as [string, string];
  });
  const argc = Number(fields.get("argc") ?? "0");
  const args = decode("args").split("\0").slice(0, argc);
  return {
    pid: Number(fields.get("pid")),
    sigIgn: fields.get("sigign") ?? "",
    sigBlk: fields.get("sigblk") ?? "",
    fds: (fields.get("fds") ?? "").split(" ").filter(Boolean).map(Number).sort((a, b) => a - b),
    env,
    args,
  };
}

/** One request the responder received. */
export interface RecordedRequest {
  /** Receive time (ms since epoch). */
  at: number;
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

/** What the responder does with request number `n` (1-based). */
export type ResponderAnswer =
  | { status: number; body: string | Record<string, unknown> }
  | { hang: true }
  | { reset: true };

/** A loopback `/secret` responder. */
export interface SecretResponder {
  /** Base address, e.g. `https://127.0.0.1:41234`. */
  address: string;
  /** Requests received so far. */
  requests: RecordedRequest[];
  /** Closes the server and every connection (hanging ones included). */
  close(): Promise<void>;
}

/** Options of {@link startSecretResponder}. */
export interface ResponderOptions {
  /** Serve HTTPS with this certificate; plain HTTP when absent. */
  tls?: { cert: string; key: string };
  /** Answer for request `n` (1-based). @default 200 with `secrets` */
  answer?: (n: number, request: RecordedRequest) => ResponderAnswer;
  /** The map a 200 answer returns. @default {} */
  secrets?: Record<string, string>;
}

/** Starts the responder on 127.0.0.1, port 0. */
export async function startSecretResponder(
  options: ResponderOptions = {},
): Promise<SecretResponder> {
  const requests: RecordedRequest[] = [];
  const hanging: ServerResponse[] = [];
  const handler = (request: IncomingMessage, response: ServerResponse) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => {
      body += chunk;
    });
    request.on("end", () => {
      const recorded: RecordedRequest = {
        at: Date.now(),
        method: request.method ?? "",
        path: request.url ?? "",
        headers: request.headers,
        body,
      };
      requests.push(recorded);
      const answer = options.answer?.(requests.length, recorded) ??
        { status: 200, body: options.secrets ?? {} };
      if ("hang" in answer) {
        hanging.push(response);
        return;
      }
      if ("reset" in answer) {
        request.socket.destroy();
        return;
      }
      const text = typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body);
      response.writeHead(answer.status, { "Content-Type": "application/json" });
      response.end(text);
    });
  };
  const server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    requests,
    close: async () => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
