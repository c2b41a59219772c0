/**
 * A small closed-loop HTTPS load generator for the benchmarks: `concurrency` keep-alive
 * connections over node:https (TCP_NODELAY on), each sending its next request as soon as the
 * previous answer arrived, for a fixed duration.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import https from "node:https";
import { parseArgs } from "node:util";

/** One request to send. */
export interface LoadRequest {
  path: string;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
}

/** Options of {@link runLoad}. */
export interface LoadOptions {
  /** Target port on 127.0.0.1. */
  port: number;
  /** PEM CA that verifies the server. */
  ca: string;
  /** Concurrent connections. @default 50 */
  concurrency?: number;
  /** Measured duration in milliseconds (after a 1 s warm-up). @default 5000 */
  durationMs?: number;
  /** Request for the n-th call. */
  request: (n: number) => LoadRequest;
  /** Expected status; others count as errors. @default 200 */
  expectStatus?: number;
}

/** Throughput and latency of one run. */
export interface LoadResult {
  requests: number;
  errors: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** Runs the load and returns its figures. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const concurrency = options.concurrency ?? 50;
  const durationMs = options.durationMs ?? 5000;
  const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency, ca: options.ca });
  let n = 0;
  const send = (): Promise<{ status: number; ms: number }> => {
    const spec = options.request(n++);
    const body = spec.body ?? "";
    const started = performance.now();
    return new Promise((resolve) => {
      const request = https.request({
        host: "127.0.0.1",
        port: options.port,
        path: spec.path,
        method: spec.method ?? (spec.body ? "POST" : "GET"),
        agent,
        headers: { ...spec.headers, "content-length": Buffer.byteLength(body) },
      }, (response) => {
        response.on("data", () => {});
        response.on(
          "end",
          () => resolve({ status: response.statusCode ?? 0, ms: performance.now() - started }),
        );
      });
      request.on("error", () => resolve({ status: 0, ms: performance.now() - started }));
      request.end(body);
    });
  };
  const phase = async (ms: number, record: boolean) => {
    const latencies: number[] = [];
    let errors = 0;
    const deadline = performance.now() + ms;
    const started = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const { status, ms: elapsed } = await send();
        if (!record) continue;
        if (status === (options.expectStatus ?? 200)) latencies.push(elapsed);
        else errors++;
      }
    }));
    return { latencies, errors, seconds: (performance.now() - started) / 1000 };
  };
  await phase(1000, false);
  const { latencies, errors, seconds } = await phase(durationMs, true);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    requestsPerSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

/** Formats a result as one table row. */
export function formatResult(label: string, result: LoadResult): string {
  return `| ${label} | ${result.requestsPerSecond.toFixed(0)} | ${result.p50Ms.toFixed(2)} | ${
    result.p99Ms.toFixed(2)
  } | ${result.errors} |`;
}

/** CPU seconds (user + system) used so far by process `pid` (Linux /proc). */
export function cpuSeconds(pid: number | "self"): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The load benchmarks' command line: `--seconds` (default 5) and `--concurrency` (default 50). */
export function loadArgs(): { seconds: number; durationMs: number; concurrency: number } {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "5" },
      concurrency: { type: "string", default: "50" },
    },
  });
  const seconds = Number(values.seconds);
  return { seconds, durationMs: seconds * 1000, concurrency: Number(values.concurrency) };
}
