// deno-lint-ignore-file no-console
/**
 * Benchmark: what the `/mutate` handler itself costs, in process, without TLS, HTTP or load
 * generator: the handler (`createMutateHandler`) answers the 3-container pod of `mutate.ts` again
 * and again, one request at a time, and the process's CPU time (user + system) per request is
 * printed per round and as the median, with the bytes V8 allocated per request (its
 * `total_allocated_bytes`: independent of the machine's load, and what drives the garbage
 * collector). The log lines are formatted but not written. Steadier on a shared machine than
 * requests/s over the network, and the part of a request this project's code decides (the rest is
 * the TLS front and `Deno.serve`, which the ceiling of `mutate.ts` pays too).
 *
 * Run with the webhook's V8 flags, so that garbage collection behaves as in the webhook:
 * `npx deno run -A --v8-flags=--max-semi-space-size=4,--max-old-space-size=128
 * scripts/bench/mutate_handler.ts [--requests 3000] [--rounds 5]`
 *
 * @module
 */

import process from "node:process";
import v8 from "node:v8";
import { parseArgs } from "node:util";
import { createMutateHandler } from "../../src/admission/mutate_handler.ts";
import { parseWebhookOptions } from "../../src/config/webhook_options.ts";
import { FakeKubeClient } from "../../src/k8s/fake.ts";
import { Logger } from "../../src/log.ts";
import { threeContainerReview } from "../../testing/flow.ts";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "3000" },
    rounds: { type: "string", default: "5" },
  },
});
const requests = Number(values.requests);
const rounds = Number(values.rounds);
const env: Record<string, string> = {
  PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:bench",
  PIGGY_ADDRESS: "https://piggy-webhooks.piggy-webhooks.svc.cluster.local",
  PIGGY_ALLOWED_ADDRESSES: "https://piggy-webhooks.piggy-webhooks.svc.cluster.local",
};
let written = 0;
const mutate = createMutateHandler({
  kube: new FakeKubeClient(),
  options: parseWebhookOptions((name) => env[name]),
  logger: new Logger({ sink: (line) => void (written += line.length) }),
  sealKeys: [new TextEncoder().encode("bench-seal-key-0123456789abcdefghijklmnop")],
});
const body = JSON.stringify(threeContainerReview("bench"));

async function once(): Promise<number> {
  const response = await mutate(
    new Request("https://piggy/mutate", {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(body.length) },
      body,
    }),
  );
  return (await response.text()).length;
}

const size = await once();
for (let index = 0; index < 500; index++) await once();
/** Bytes V8 has allocated so far (NaN where the runtime does not say). */
function allocated(): number {
  const statistics = v8.getHeapStatistics() as { total_allocated_bytes?: number };
  return statistics.total_allocated_bytes ?? NaN;
}

const perRequest: number[] = [];
const bytesPerRequest: number[] = [];
for (let round = 1; round <= rounds; round++) {
  const bytes = allocated();
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let index = 0; index < requests; index++) await once();
  const used = process.cpuUsage(cpu);
  const micros = (used.user + used.system) / requests;
  perRequest.push(micros);
  bytesPerRequest.push((allocated() - bytes) / requests);
  console.log(
    `round ${round}: ${micros.toFixed(1)} µs CPU per request, ` +
      `${((performance.now() - started) * 1000 / requests).toFixed(1)} µs wall, ` +
      `${(bytesPerRequest.at(-1)! / 1024).toFixed(1)} KiB allocated per request`,
  );
}
perRequest.sort((a, b) => a - b);
bytesPerRequest.sort((a, b) => a - b);
const middle = Math.floor(perRequest.length / 2);
console.log(
  `answer ${size} bytes, ${written > 0 ? "log lines formatted" : "no log lines"}; median ` +
    `${perRequest[middle]!.toFixed(1)} µs CPU and ${
      (bytesPerRequest[middle]! / 1024).toFixed(1)
    } ` +
    "KiB allocated per request",
);
