/**
 * Runs `deno task demo` (or `npm run demo`) as a process for the tests: its output, exit code and
 * the PIDs it says it started, and which of those still run one of its programs afterwards.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { REPO_ROOT } from "./demo_data.ts";

/** A finished demo run. */
export interface DemoRun {
  code: number;
  stdout: string;
  stderr: string;
  /** The PIDs of its last line `processes started: …`. */
  pids: number[];
  seconds: number;
}

/** Options of {@link runDemo}. */
export interface RunDemoOptions {
  /** The command. @default the running Deno */
  command?: string;
  /** @default `run -A scripts/demo.ts` */
  args?: string[];
  /** Environment added to (or, with `clearEnv`, instead of) this process's. */
  env?: Record<string, string>;
  clearEnv?: boolean;
}

/**
 * Runs the demo from the repository root with piped output (not a TTY). A hung demo is killed
 * after 180 s (its own watchdog fires long before).
 */
export async function runDemo(options: RunDemoOptions = {}): Promise<DemoRun> {
  const started = performance.now();
  const child = new Deno.Command(options.command ?? Deno.execPath(), {
    args: options.args ?? ["run", "-A", "scripts/demo.ts"],
    cwd: REPO_ROOT,
    env: options.env ?? {},
    clearEnv: options.clearEnv ?? false,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 180_000);
  const output = await child.output();
  clearTimeout(timer);
  const stdout = new TextDecoder().decode(output.stdout);
  const pidLine = /^processes started: ([\d ]*)$/m.exec(stdout)?.[1] ?? "";
  return {
    code: output.code,
    stdout,
    stderr: new TextDecoder().decode(output.stderr),
    pids: pidLine.split(" ").filter(Boolean).map(Number),
    seconds: (performance.now() - started) / 1000,
  };
}

/** PIDs that still run one of the demo's programs (a reused PID running something else is fine). */
export function survivors(pids: number[]): string[] {
  const alive: string[] = [];
  for (const pid of pids) {
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
    } catch {
      continue; // gone
    }
    if (/cli\/webhook\.ts|cli\/piggy_env\.ts|print-secrets\.sh/.test(cmdline)) {
      alive.push(`${pid}: ${cmdline}`);
    }
  }
  return alive;
}
