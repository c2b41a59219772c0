/**
 * One timed process start for the launcher benchmarks (`launcher.ts`, `aws_proxy.ts`): the command
 * runs under `/usr/bin/time` with exactly the given environment; the time to its first stdout line,
 * its CPU (user + system of the whole run) and its peak RSS are returned.
 *
 * @module
 */

/** What one start measured. */
export interface TimedRun {
  /** Milliseconds from spawn to the first stdout line (to the exit when `expect` is ""). */
  firstLineMs: number;
  /** User + system milliseconds of the whole run (`/usr/bin/time`, 10 ms steps). */
  cpuMs: number;
  /** Peak RSS in KB (ru_maxrss: for a launcher, its peak before exec). */
  maxRssKb: number;
  /** Everything the process wrote to stdout. */
  out: string;
}

/**
 * Runs `argv` under /usr/bin/time and checks it: it must succeed and its stdout start with
 * `expect` (a program that prints nothing passes `""`, and its time is then its time to exit).
 *
 * @throws {Error} the run failed or printed something else
 */
export async function timedRun(
  argv: string[],
  env: Record<string, string>,
  expect: string,
): Promise<TimedRun> {
  const started = performance.now();
  const child = new Deno.Command("/usr/bin/time", {
    args: ["-f", "maxrss=%M cpu=%U+%S", ...argv],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  let firstLineMs = NaN;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    out += value;
    if (Number.isNaN(firstLineMs) && out.includes("\n")) firstLineMs = performance.now() - started;
  }
  const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
  const status = await child.status;
  if (expect === "") firstLineMs = performance.now() - started;
  if (!status.success || !out.startsWith(expect)) {
    throw new Error(`run failed (${status.code}): ${out}\n${stderr}`);
  }
  const cpu = /cpu=([\d.]+)\+([\d.]+)/.exec(stderr);
  return {
    firstLineMs,
    cpuMs: cpu ? (Number(cpu[1]) + Number(cpu[2])) * 1000 : NaN,
    maxRssKb: Number(/maxrss=(\d+)/.exec(stderr)?.[1] ?? NaN),
    out,
  };
}

/** The median of a list (the upper one of an even count). */
export function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
}
