// deno-lint-ignore-file no-console
/**
 * Benchmark: `/secret` of the real webhook process (default options: secret cache 30 s,
 * TokenReview cache 10 s) against the Kubernetes API and AWS stand-ins, driven by `wrk` (1 thread,
 * 50 connections), against `/healthz` of the same process as the ceiling, alternately for
 * `--rounds` rounds: one pod asking again and again (caches warm), and 200 distinct pods in turn.
 * Then one more run of each to count the Kubernetes API and AWS calls per request.
 *
 * Run: `npx deno run -A scripts/bench/secret.ts [--seconds 5] [--connections 50] [--rounds 3]`
 * Target: ≥ 25 % of `/healthz` with the caches warm; Kubernetes calls per request ≤ 0.2 in steady
 * state. A second webhook process with the TokenReview and pod caches off
 * (`PIGGY_TOKEN_REVIEW_CACHE_TTL=0`, `PIGGY_POD_CACHE_TTL=0`) serves the 200 pods too: each request then reviews its token and reads its pod, the cost of a new
 * pod's first request (its CPU per request is the figure for capacity planning, docs/performance.md).
 *
 * @module
 */

import { DEFAULT_TOKEN_AUDIENCE } from "../../src/constants.ts";
import { startKubeApi } from "../../testing/kube_api.ts";
import { startAwsStandIn } from "../../testing/aws.ts";
import { startWebhook } from "../../testing/webhook_process.ts";
import { admitPod, launcherRequest, persistPod, secretReaderPod } from "../../testing/flow.ts";
import { createTestCa } from "../../testing/pki.ts";
import { alternate, benchArgs, ensureWrk, runWrk, type WrkRequest } from "./wrk.ts";

const args = benchArgs();
ensureWrk();
const NAMESPACE = "bench";
const PODS = 200;

const kube = await startKubeApi();
const aws = await startAwsStandIn();
aws.putSecret("bench/app", {
  string: JSON.stringify({ DB_PASSWORD: "bench-value", API_KEY: "k" }),
});
const ca = createTestCa("piggy-bench");
// One sealing key for both processes: the cold one serves pods the first one admitted.
const sealKeyFile = `${ca.dir}/seal.key`;
await Deno.writeTextFile(sealKeyFile, crypto.randomUUID() + crypto.randomUUID());
const env = {
  KUBECONFIG: kube.kubeconfigPath,
  PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:bench",
  PIGGY_ALLOWED_ADDRESSES: "https://piggy.bench.svc",
  PIGGY_SEAL_KEY_FILES: sealKeyFile,
  ...aws.env({ credentials: "static", region: "us-east-1" }),
};
const webhook = await startWebhook({ ca, env });
const cold = await startWebhook({
  ca,
  env: { ...env, PIGGY_TOKEN_REVIEW_CACHE_TTL: "0s", PIGGY_POD_CACHE_TTL: "0s" },
});

const pod = secretReaderPod("https://piggy.bench.svc", "bench/app");
pod.metadata!.generateName = "app-";
const admitted = await admitPod(webhook, pod, NAMESPACE);
const callers: WrkRequest[] = [];
for (let i = 0; i < PODS; i++) {
  // The projected token the mutation mounts (audience piggysec.com), as current launchers send.
  const { body, token } = launcherRequest(
    kube,
    persistPod(kube, admitted.pod, NAMESPACE, `app-${i}`),
    0,
    [DEFAULT_TOKEN_AUDIENCE],
  );
  callers.push({
    path: "/secret",
    method: "POST",
    body,
    headers: { "content-type": "application/json", "x-token": token },
  });
}

const health = {
  label: "/healthz (same process)",
  port: webhook.port,
  requests: [{ path: "/healthz" }],
  pid: webhook.child.pid,
};
const scenarios = [
  { label: "/secret, 1 pod", requests: callers.slice(0, 1) },
  { label: `/secret, ${PODS} pods in turn`, requests: callers },
];
const calls: string[] = [];
try {
  for (const scenario of scenarios) {
    await alternate(
      health,
      { ...scenario, port: webhook.port, pid: webhook.child.pid },
      args,
    );
    await countCalls(scenario, webhook);
  }
  const coldScenario = {
    label: `/secret, ${PODS} pods in turn, TokenReview cache off`,
    requests: callers,
  };
  await alternate(
    { ...health, label: "/healthz (TokenReview cache off)", port: cold.port, pid: cold.child.pid },
    { ...coldScenario, port: cold.port, pid: cold.child.pid },
    args,
  );
  await countCalls(coldScenario, cold);
} finally {
  await webhook.stop();
  await cold.stop();
  await aws.close();
  await kube.close();
  await Deno.remove(ca.dir, { recursive: true }).catch(() => {});
}
console.log("\n| scenario | requests | errors | Kubernetes calls/request | AWS calls/request |");
console.log("| --- | --- | --- | --- | --- |");
for (const row of calls) console.log(row);

/** One more run of `scenario` against `target`, counting the Kubernetes and AWS calls. */
async function countCalls(
  scenario: { label: string; requests: readonly WrkRequest[] },
  target: typeof webhook,
): Promise<void> {
  const before = { ...kube.counts };
  const awsBefore = aws.count("GetSecretValue");
  const result = await runWrk({
    port: target.port,
    requests: scenario.requests,
    seconds: args.seconds,
    connections: args.connections,
  });
  const kubeCalls = (["tokenreviews", "pods", "configmaps", "secrets"] as const)
    .reduce((sum, target) => sum + kube.counts[target] - before[target], 0);
  // wrk counts completed requests; a few more may have been in flight when it stopped.
  calls.push(
    `| ${scenario.label} | ${result.requests} | ${result.errors} | ${
      (kubeCalls / result.requests).toFixed(3)
    } (TokenReview ${
      ((kube.counts.tokenreviews - before.tokenreviews) / result.requests).toFixed(3)
    }, pod ${((kube.counts.pods - before.pods) / result.requests).toFixed(3)}) | ${
      ((aws.count("GetSecretValue") - awsBefore) / result.requests).toFixed(4)
    } |`,
  );
}
