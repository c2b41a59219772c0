// deno-lint-ignore-file no-console
/**
 * Benchmark: the CPU one `/secret` request costs inside the webhook's router (`createApp`, no TLS,
 * no HTTP server), with the TokenReview, pod and secret caches warm (default TTLs; the Kubernetes
 * API stand-in answers the few misses): `--concurrency` requests at a time (their audit lines may
 * share a write), `--requests` per round, `--rounds` rounds. Prints the process's CPU microseconds
 * per request for each round and the median. The audit lines go to stderr: send it to a pipe, as
 * a container runtime does.
 *
 * Run: `npx deno run -A scripts/bench/secret_handler.ts 2> >(cat >/dev/null)`
 * [--concurrency 50] [--requests 20000] [--rounds 5]
 *
 * What `scripts/bench/secret.ts` measures on top of this is the HTTPS front, `Deno.serve` and the
 * load generator's share of the machine.
 *
 * @module
 */
import process from "node:process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startKubeApi } from "../../testing/kube_api.ts";
import { admitPod, launcherRequest, persistPod, secretReaderPod } from "../../testing/flow.ts";
import { DEFAULT_TOKEN_AUDIENCE } from "../../src/constants.ts";
import { createKubeClient } from "../../src/k8s/http_client.ts";
import { parseKubeConfig } from "../../src/k8s/kubeconfig.ts";
import { CachingKubeClient } from "../../src/k8s/caching_client.ts";
import { MemorySecretSource } from "../../src/secrets/memory_source.ts";
import { CachingSecretSource } from "../../src/secrets/caching_source.ts";
import { parseWebhookOptions } from "../../src/config/webhook_options.ts";
import { createApp } from "../../src/server/app.ts";
import { Logger } from "../../src/log.ts";
import { batchedStderrSink } from "../../src/runtime/stderr_sink.ts";
import { randomSealKey } from "../../src/pod/seal.ts";

const { values } = parseArgs({
  options: {
    concurrency: { type: "string", default: "50" },
    requests: { type: "string", default: "20000" },
    rounds: { type: "string", default: "5" },
  },
});
const concurrency = Number(values.concurrency);
const perRound = Number(values.requests);
const rounds = Number(values.rounds);

const api = await startKubeApi();
const readFile = (path: string) => readFileSync(path, "utf8");
const path = api.kubeconfigPath;
const http = createKubeClient(parseKubeConfig(readFile(path), { path, readFile }), {
  timeoutMs: 10_000,
});
const env: Record<string, string> = {
  PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:bench",
  PIGGY_ALLOWED_ADDRESSES: "https://piggy.bench.svc",
};
const options = parseWebhookOptions((name) => env[name]);
const kube = new CachingKubeClient(http, {
  tokenReviewTtlMs: options.tokenReviewCacheTtlMs,
  podTtlMs: options.podCacheTtlMs,
});
const secrets = new CachingSecretSource(
  new MemorySecretSource().putSecret("bench/app", { DB_PASSWORD: "bench-value", API_KEY: "k" }),
  { ttlMs: 30_000 },
);
const logger = new Logger({ sink: batchedStderrSink() });
const { handler } = createApp({
  kube,
  secrets,
  options,
  logger,
  sealKeys: [randomSealKey()],
  readBoundPod: (namespace, name, boundUid, callOptions) =>
    kube.getBoundPod(namespace, name, boundUid, callOptions),
});
const inProcess = {
  fetch: (path: string, init: RequestInit) =>
    Promise.resolve(handler(new Request(`https://piggy.bench.svc${path}`, init))),
};
const pod = secretReaderPod("https://piggy.bench.svc", "bench/app");
const admitted = await admitPod(inProcess, pod, "bench");
const stored = persistPod(api, admitted.pod, "bench", "app-0");
const { body, token } = launcherRequest(api, stored, 0, [DEFAULT_TOKEN_AUDIENCE]);

async function one(): Promise<void> {
  const response = await handler(
    new Request("https://piggy.bench.svc/secret", {
      method: "POST",
      headers: { "content-type": "application/json", "x-token": token },
      body,
    }),
  );
  if (response.status !== 200) {
    throw new Error(`answered ${response.status}: ${await response.text()}`);
  }
  await response.arrayBuffer();
}

async function round(count: number): Promise<number> {
  const start = process.cpuUsage();
  for (let done = 0; done < count; done += concurrency) {
    await Promise.all(Array.from({ length: Math.min(concurrency, count - done) }, one));
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / count;
}

try {
  await round(Math.min(perRound, 5000)); // warm up (JIT, caches)
  const results: number[] = [];
  for (let index = 0; index < rounds; index++) {
    // Within the pod cache's TTL: every request is answered from the caches.
    const cpu = await round(perRound);
    results.push(cpu);
    console.log(`round ${index + 1}: ${cpu.toFixed(1)} µs CPU per request`);
  }
  results.sort((a, b) => a - b);
  console.log(
    `median: ${
      results[Math.floor(results.length / 2)]!.toFixed(1)
    } µs CPU per request (concurrency ${concurrency})`,
  );
  console.log(`kube calls: ${JSON.stringify(api.counts)}`);
} finally {
  http.close();
  await api.close();
}
