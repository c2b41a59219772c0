// deno-lint-ignore-file no-console
/**
 * Load for the server benchmarks from a compiled generator, `wrk` (Debian package; installed with
 * apt-get when missing), so the generator's own CPU is small next to the server's: 1 thread, 50
 * keep-alive connections, 5 s per run by default. Requests are given as a list that each
 * connection cycles through (a Lua script built here). {@link alternate} runs a ceiling and a
 * candidate alternately for a number of rounds and prints the ratio per round and the median.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { WEBHOOK_FLAGS } from "../../cli/permissions.ts";
import { parseArgs } from "node:util";

/** One request of a run. */
export interface WrkRequest {
  path: string;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
}

/** Options of {@link runWrk}. */
export interface WrkOptions {
  /** HTTPS port on 127.0.0.1. */
  port: number;
  /** Requests, sent in turn. */
  requests: readonly WrkRequest[];
  /** @default 5 */
  seconds?: number;
  /** @default 50 */
  connections?: number;
  /** @default 1 */
  threads?: number;
}

/** What one run measured. */
export interface WrkResult {
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Non-2xx answers plus socket errors. */
  errors: number;
}

/** The benchmarks' command line: `--seconds` (5), `--connections` (50), `--rounds` (3). */
export function benchArgs(): { seconds: number; connections: number; rounds: number } {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "5" },
      connections: { type: "string", default: "50" },
      rounds: { type: "string", default: "3" },
    },
  });
  return {
    seconds: Number(values.seconds),
    connections: Number(values.connections),
    rounds: Math.max(1, Number(values.rounds)),
  };
}

/** The path of `wrk`, installed through apt-get when it is not there. */
export function ensureWrk(): string {
  const found = (path: string) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  };
  for (const path of ["/usr/bin/wrk", "/usr/local/bin/wrk"]) if (found(path)) return path;
  console.log("wrk is missing: apt-get install -y wrk");
  const sudo = Deno.uid() === 0 ? [] : ["sudo"];
  for (const args of [["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]]) {
    const command = [...sudo, ...args];
    const status = new Deno.Command(command[0]!, { args: command.slice(1) }).outputSync();
    if (!status.success) throw new Error(`Cannot install wrk: "${command.join(" ")}" failed`);
  }
  return "/usr/bin/wrk";
}

/** A Lua long string holding `text` (its level chosen so that the text cannot close it). */
function luaString(text: string): string {
  let level = "";
  while (text.includes(`]${level}]`)) level += "=";
  return `[${level}[${text}]${level}]`;
}

function luaScript(requests: readonly WrkRequest[]): string {
  const entries = requests.map((request) => {
    const headers = Object.entries(request.headers ?? {})
      .map(([name, value]) => `[ ${luaString(name)} ] = ${luaString(value)}`)
      .join(", ");
    const body = request.body === undefined ? "nil" : luaString(request.body);
    return `wrk.format(${luaString(request.method ?? (request.body ? "POST" : "GET"))}, ${
      luaString(request.path)
    }, { ${headers} }, ${body})`;
  });
  return [
    "local requests = {}",
    "local index = 0",
    "init = function(args)",
    ...entries.map((entry) => `  table.insert(requests, ${entry})`),
    "end",
    "request = function()",
    "  index = index % #requests + 1",
    "  return requests[index]",
    "end",
    "",
  ].join("\n");
}

function durationMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!match) return NaN;
  const value = Number(match[1]);
  return value * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[match[2] as "us" | "ms" | "s" | "m"];
}

/** Parses wrk's report (run with `--latency`). */
export function parseWrkReport(text: string): WrkResult {
  const number = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = socket ? socket.slice(1).reduce((sum, value) => sum + Number(value), 0) : 0;
  return {
    requests: number(/(\d+) requests in /),
    requestsPerSecond: number(/Requests\/sec:\s+([\d.]+)/),
    p50Ms: durationMs(/^\s+50%\s+(\S+)\s*$/m.exec(text)?.[1] ?? ""),
    p99Ms: durationMs(/^\s+99%\s+(\S+)\s*$/m.exec(text)?.[1] ?? ""),
    errors: (Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0)) + socketErrors,
  };
}

/** Runs wrk once against `https://127.0.0.1:<port>`. */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const wrk = ensureWrk();
  const dir = await Deno.makeTempDir({ prefix: "piggy-wrk-" });
  try {
    const script = `${dir}/requests.lua`;
    await Deno.writeTextFile(script, luaScript(options.requests));
    const output = await new Deno.Command(wrk, {
      args: [
        `-t${options.threads ?? 1}`,
        `-c${options.connections ?? 50}`,
        `-d${options.seconds ?? 5}s`,
        "--latency",
        "--timeout",
        "10s",
        "-s",
        script,
        `https://127.0.0.1:${options.port}${options.requests[0]?.path ?? "/"}`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout);
    if (!output.success) {
      throw new Error(`wrk failed: ${new TextDecoder().decode(output.stderr)}${text}`);
    }
    const result = parseWrkReport(text);
    if (!Number.isFinite(result.p99Ms) || !Number.isFinite(result.requestsPerSecond)) {
      console.log(`(cannot read every figure of this wrk report)\n${text}`);
    }
    return result;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** A running `bare_server.ts` (the ceiling): its port and process. */
export interface BareServer {
  port: number;
  child: Deno.ChildProcess;
  /** Ends the server. */
  stop(): Promise<void>;
}

/**
 * Starts `bare_server.ts` with the serving certificate and key, its answer padded to `answerBytes`
 * when given, and waits for its port.
 */
export async function startBareServer(
  certFile: string,
  keyFile: string,
  answerBytes?: string,
): Promise<BareServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...WEBHOOK_FLAGS,
      fileURLToPath(new URL("./bare_server.ts", import.meta.url)),
      certFile,
      keyFile,
      ...(answerBytes === undefined ? [] : [answerBytes]),
    ],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const port = Number(new TextDecoder().decode((await reader.read()).value).trim());
  reader.releaseLock();
  return {
    port,
    child,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

/** CPU seconds (user + system) used so far by process `pid` (Linux /proc). */
export function cpuSeconds(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** One side of a comparison. */
export interface Side {
  label: string;
  port: number;
  requests: readonly WrkRequest[];
  /** Process whose CPU is reported. */
  pid?: number;
  /** Processes whose CPU is reported together (several workers), instead of `pid`. */
  pids?: readonly number[];
}

/** Per-round figures of {@link alternate}. */
export interface Round {
  ceiling: WrkResult;
  candidate: WrkResult;
  /** Candidate requests/s over the ceiling's. */
  ratio: number;
  /** CPU milliseconds per request of each side's process, when its pid is known. */
  ceilingCpuMs?: number;
  candidateCpuMs?: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const fixed = (value: number | undefined, digits = 1) =>
  value !== undefined && Number.isFinite(value) ? value.toFixed(digits) : "?";

/** Runs `side` and measures its process's CPU per request (wrk counts completed requests). */
async function measured(
  side: Side,
  options: { seconds: number; connections: number },
): Promise<{ result: WrkResult; cpuMs?: number }> {
  const pids = side.pids ?? (side.pid === undefined ? [] : [side.pid]);
  const cpu = () => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const before = cpu();
  const result = await runWrk({
    port: side.port,
    requests: side.requests,
    seconds: options.seconds,
    connections: options.connections,
  });
  if (pids.length === 0 || result.requests === 0) return { result };
  return { result, cpuMs: (cpu() - before) * 1000 / result.requests };
}

/**
 * Runs `ceiling` and `candidate` alternately (a 1 s warm-up of each first), prints one table row
 * per round and the medians, and returns the rounds. CPU per request is the process's user and
 * system time over the run divided by the requests wrk completed: less sensitive to other load
 * on the machine than requests/s.
 */
export async function alternate(
  ceiling: Side,
  candidate: Side,
  options: { rounds: number; seconds: number; connections: number },
): Promise<{ rounds: Round[]; medianRatio: number; medianP99Ms: number; medianCpuRatio: number }> {
  await measured(ceiling, { ...options, seconds: 1 });
  await measured(candidate, { ...options, seconds: 1 });
  console.log(`\n${candidate.label} against ${ceiling.label}`);
  console.log(
    "| round | ceiling req/s | ceiling p99 ms | ceiling CPU ms/req | piggy req/s | piggy p50 ms | " +
      "piggy p99 ms | piggy CPU ms/req | errors | ratio (req/s) | ratio (CPU/req) |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  const rounds: Round[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    const top = await measured(ceiling, options);
    const own = await measured(candidate, options);
    const ratio = own.result.requestsPerSecond / top.result.requestsPerSecond;
    const entry: Round = { ceiling: top.result, candidate: own.result, ratio };
    if (top.cpuMs !== undefined) entry.ceilingCpuMs = top.cpuMs;
    if (own.cpuMs !== undefined) entry.candidateCpuMs = own.cpuMs;
    rounds.push(entry);
    const cpuRatio = top.cpuMs !== undefined && own.cpuMs ? top.cpuMs / own.cpuMs : undefined;
    console.log(
      `| ${round} | ${fixed(top.result.requestsPerSecond, 0)} | ${fixed(top.result.p99Ms)} | ${
        fixed(top.cpuMs, 2)
      } | ${fixed(own.result.requestsPerSecond, 0)} | ${fixed(own.result.p50Ms)} | ${
        fixed(own.result.p99Ms)
      } | ${fixed(own.cpuMs, 2)} | ${own.result.errors + top.result.errors} | ${
        fixed(ratio * 100, 0)
      } % | ${cpuRatio === undefined ? "?" : `${fixed(cpuRatio * 100, 0)} %`} |`,
    );
  }
  const medianRatio = median(rounds.map((round) => round.ratio));
  const medianP99Ms = median(rounds.map((round) => round.candidate.p99Ms));
  const medianCpuRatio = median(
    rounds.map((round) => (round.ceilingCpuMs ?? NaN) / (round.candidateCpuMs ?? NaN)),
  );
  console.log(
    `median: ${fixed(medianRatio * 100, 0)} % of the ceiling's requests/s, ${
      fixed(medianCpuRatio * 100, 0)
    } % of its CPU efficiency (ceiling CPU per request / piggy CPU per request); piggy p99 ${
      fixed(medianP99Ms)
    } ms`,
  );
  return { rounds, medianRatio, medianP99Ms, medianCpuRatio };
}
