/**
 * Process figures for `process_*` metrics and the runtime for `piggy_build_info`, on Deno and Node.
 * Within the webhook's Deno permissions (no --allow-all), so /proc/self/status and /proc/self/limits
 * are out of reach: memory and CPU come from `node:process`, open descriptors from /proc/self/fd.
 *
 * @module
 */

import { readdirSync } from "node:fs";
import process from "node:process";
import { denoGlobal } from "./deno.ts";

/** When this process started, in seconds since the Unix epoch. */
const START_TIME_SECONDS = Math.round(Date.now() / 1000 - process.uptime());

/** RSS, CPU time, open descriptors (Linux; absent elsewhere) and start time. */
export function readProcessStats(): {
  residentMemoryBytes: number;
  cpuSeconds: number;
  openFds?: number;
  startTimeSeconds: number;
} {
  const cpu = process.cpuUsage();
  let openFds: number | undefined;
  try {
    openFds = readdirSync("/proc/self/fd").length;
  } catch {
    // Not Linux, or no read permission: leave the series out rather than report 0.
  }
  return {
    residentMemoryBytes: process.memoryUsage.rss(),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    ...(openFds !== undefined ? { openFds } : {}),
    startTimeSeconds: START_TIME_SECONDS,
  };
}

/** The runtime running this process: `deno` and its version, or `node`. */
export function runtimeInfo(): { runtime: string; runtimeVersion: string } {
  const deno = denoGlobal();
  return deno
    ? { runtime: "deno", runtimeVersion: deno.version.deno }
    : { runtime: "node", runtimeVersion: process.versions.node };
}
