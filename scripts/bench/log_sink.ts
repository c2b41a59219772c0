// deno-lint-ignore-file no-console
/**
 * Benchmark: the CPU one batch of `/secret` audit lines costs in the webhook's stderr sink
 * (`batchedStderrSink`: queue the lines, encode them into the reused buffer, one synchronous
 * write of all of them): `--lines` lines per batch, `--batches` per round, `--rounds` rounds.
 * Prints the process's CPU microseconds per batch for each round and the median. The lines go to
 * stderr: send it to a pipe, as a container runtime does.
 *
 * Run: `npx deno run -A scripts/bench/log_sink.ts 2> >(cat >/dev/null)`
 * [--lines 16] [--batches 20000] [--rounds 5]
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { batchedStderrSink } from "../../src/runtime/stderr_sink.ts";

const { values } = parseArgs({
  options: {
    lines: { type: "string", default: "16" },
    batches: { type: "string", default: "20000" },
    rounds: { type: "string", default: "5" },
  },
});
const perBatch = Number(values.lines);
const batches = Number(values.batches);
const rounds = Number(values.rounds);

// An audit line of a served request, as `/secret` writes it.
const line = JSON.stringify({
  level: "info",
  namespace: "team-a",
  pod_name: "web-7d4b9c6f5-x2x9q",
  service_account: "team-a:web",
  secret_name: "team-a/web",
  status: 200,
  time: "2026-12-03T17:00:00Z",
  message: "Request from [sa=team-a:web], [pod=web-7d4b9c6f5-x2x9q] was successful",
});
const sink = batchedStderrSink();

function round(): number {
  const start = process.cpuUsage();
  for (let batch = 0; batch < batches; batch++) {
    for (let index = 0; index < perBatch; index++) sink(line, "info");
    sink.flush?.();
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / batches;
}

round(); // warm up
const results: number[] = [];
for (let index = 0; index < rounds; index++) {
  const cpu = round();
  results.push(cpu);
  console.log(`round ${index + 1}: ${cpu.toFixed(2)} µs CPU per batch of ${perBatch} lines`);
}
results.sort((a, b) => a - b);
console.log(`median: ${results[Math.floor(results.length / 2)]!.toFixed(2)} µs CPU per batch`);
console.log(`write failures: ${sink.writeFailures?.() ?? 0}`);
