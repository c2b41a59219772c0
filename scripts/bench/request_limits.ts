// deno-lint-ignore-file no-console
/**
 * Benchmark: what the request limits cost and save, against the real webhook process (default
 * options) and the Kubernetes API stand-in. For each hostile pod it prints the answer time, the
 * stand-in's ConfigMap reads and the slowest `/healthz` probe meanwhile, next to the floor: the
 * same body for a pod Piggy ignores (no annotation: read and parse only).
 *
 * - fan-out: 20 containers × 1,000 `valueFrom` references to distinct ConfigMaps (denied before
 *   any read by PIGGY_MAX_REFERENCED_OBJECTS);
 * - slow reads: 100 distinct ConfigMaps, the stand-in answering each after 400 ms (denied at
 *   PIGGY_ADMISSION_TIMEOUT, 4 s, with 8 reads at a time);
 * - 16,000 containers (PIGGY_MAX_CONTAINERS) and 30,000 env entries (PIGGY_MAX_ENV_PER_CONTAINER).
 *
 * Run: `npx deno run -A scripts/bench/request_limits.ts`
 *
 * @module
 */

import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import { startKubeApi } from "../../testing/kube_api.ts";
import { startWebhook } from "../../testing/webhook_process.ts";
import { reviewOf, threeContainerReview } from "../../testing/flow.ts";

const NAMESPACE = "bench";
const kube = await startKubeApi();
const webhook = await startWebhook({
  env: {
    KUBECONFIG: kube.kubeconfigPath,
    PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:bench",
    PIGGY_ADDRESS: "https://piggy-webhooks.piggy-webhooks.svc.cluster.local",
    PIGGY_ALLOWED_ADDRESSES: "https://piggy-webhooks.piggy-webhooks.svc.cluster.local",
  },
});

function pod(containers: Container[], piggy = true): Pod {
  return {
    metadata: {
      name: "bench",
      annotations: piggy ? { "piggysec.com/aws-secret-name": "bench/secret" } : {},
    },
    spec: { containers },
  };
}

function refs(count: number, name: (i: number) => string) {
  return Array.from({ length: count }, (_, i) => ({
    name: `V${i}`,
    valueFrom: { configMapKeyRef: { name: name(i), key: "k" } },
  }));
}

const configMapReads = () => kube.counts.configmaps;

/** Posts the body while /healthz is probed every 20 ms. */
async function measure(body: string) {
  let running = true;
  let slowest = 0;
  const probes = (async () => {
    while (running) {
      const started = performance.now();
      await webhook.get("/healthz");
      slowest = Math.max(slowest, performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const reads = configMapReads();
  kube.resetPeakInFlight();
  const started = performance.now();
  const answer = await webhook.post("/mutate", body);
  const ms = performance.now() - started;
  running = false;
  await probes;
  const review = JSON.parse(answer.body);
  return {
    ms,
    reads: configMapReads() - reads,
    peak: kube.peakInFlight,
    slowest,
    code: review.response.status?.code ?? 200,
  };
}

const bodyOf = (value: Pod) => JSON.stringify(reviewOf(value, { namespace: NAMESPACE }));
const small = JSON.stringify(threeContainerReview("bench"));
for (let i = 0; i < 20; i++) await webhook.post("/mutate", small);
const baseline = (await measure(small)).ms;
console.log(`3-container pod (${small.length} B): ${baseline.toFixed(1)} ms`);

const cases: [string, Container[], number][] = [
  [
    "fan-out 20,000 ConfigMaps",
    Array.from({ length: 20 }, (_, c) => ({
      name: `c${c}`,
      command: ["/a"],
      env: refs(1_000, (i) => `cm-${c}-${i}`),
    })),
    0,
  ],
  [
    "slow reads (100 × 400 ms)",
    [{ name: "app", command: ["/a"], env: refs(100, (i) => `slow-${i}`) }],
    400,
  ],
  [
    "16,000 containers",
    Array.from({ length: 16_000 }, (_, c) => ({
      name: `c${c}`,
      command: ["/a"],
      env: refs(1, () => `w-${c}`),
    })),
    0,
  ],
  [
    "30,000 env entries",
    [{
      name: "app",
      command: ["/a"],
      env: Array.from({ length: 30_000 }, (_, i) => ({ name: `V${i}`, value: "x" })),
    }],
    0,
  ],
];
for (const [name, containers, latency] of cases) {
  const floorBody = bodyOf(pod(containers, false));
  await webhook.post("/mutate", floorBody);
  const floor = (await measure(floorBody)).ms;
  kube.setLatency(latency);
  const body = bodyOf(pod(containers));
  const result = await measure(body);
  kube.setLatency(0);
  console.log(
    `${name} (${(body.length / 1e6).toFixed(1)} MB): ${result.code} in ${
      result.ms.toFixed(0)
    } ms ` +
      `(floor ${floor.toFixed(0)} ms, ×${(result.ms / floor).toFixed(2)}; ` +
      `×${
        (result.ms / baseline).toFixed(0)
      } the 3-container pod), ${result.reads} ConfigMap reads, ` +
      `${result.peak} at once, slowest /healthz ${result.slowest.toFixed(0)} ms`,
  );
}
await webhook.stop();
await kube.close();
