// deno-lint-ignore-file no-console
/**
 * Benchmark: `/secret` over HTTPS on loopback against the Kubernetes API and AWS stand-ins, for one
 * pod and for 200 distinct pods, with the webhook's secret cache off (the default) and on; AWS and
 * Kubernetes API calls per request; and `/healthz` on the same process as the ceiling.
 *
 * Run: `npx deno run -A scripts/bench/secret.ts [--seconds 5] [--concurrency 50]`
 *
 * @module
 */

import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { commandSignature } from "../../src/pod/signature.ts";
import { startKubeApi } from "../../testing/kube_api.ts";
import { startAwsStandIn } from "../../testing/aws.ts";
import { startWebhook, type WebhookProcess } from "../../testing/webhook_process.ts";
import { admitPod, launcherIdentity, persistPod } from "../../testing/flow.ts";
import { formatResult, loadArgs, type LoadResult, runLoad } from "./load.ts";
import { createTestCa } from "../../testing/pki.ts";

const { durationMs, concurrency } = loadArgs();
const NAMESPACE = "bench";

const kube = await startKubeApi();
const aws = await startAwsStandIn();
aws.putSecret("bench/app", {
  string: JSON.stringify({ DB_PASSWORD: "bench-value", API_KEY: "k" }),
});
const ca = createTestCa("piggy-bench");

interface Caller {
  body: string;
  token: string;
}

async function preparePods(webhook: WebhookProcess, count: number): Promise<Caller[]> {
  const pod: Pod = {
    metadata: {
      generateName: "app-",
      annotations: {
        "piggysec.com/piggy-address": "https://piggy.bench.svc",
        "piggysec.com/aws-secret-name": "bench/app",
      },
    },
    spec: {
      serviceAccountName: "app",
      containers: [{
        name: "app",
        image: "app:1",
        command: ["/app/server"],
        env: [{ name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" }],
      }],
    },
  };
  const callers: Caller[] = [];
  for (let i = 0; i < count; i++) {
    const name = `app-${i}`;
    const admitted = await admitPod(webhook, pod, NAMESPACE);
    const stored = persistPod(kube, admitted.pod, NAMESPACE, name);
    const { uid, command } = launcherIdentity(stored.spec!.containers[0]!);
    callers.push({
      body: JSON.stringify({
        resources: "pods",
        name,
        uid,
        signature: await commandSignature(command),
      }),
      token: kube.issueToken({ namespace: NAMESPACE, serviceAccount: "app", podName: name }),
    });
  }
  return callers;
}

const rows: string[] = [];
for (const cacheTtl of ["0s", "60s"]) {
  const webhook = await startWebhook({
    ca,
    env: {
      KUBECONFIG: kube.kubeconfigPath,
      PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:bench",
      PIGGY_SECRET_CACHE_TTL: cacheTtl,
      ...aws.env({ credentials: "static", region: "us-east-1" }),
    },
  });
  const callers = await preparePods(webhook, 200);
  for (const pods of [1, 200]) {
    const kubeBefore = { tokenreviews: kube.counts.tokenreviews, pods: kube.counts.pods };
    const awsBefore = aws.count("GetSecretValue");
    const result: LoadResult = await runLoad({
      port: webhook.port,
      ca: ca.cert,
      concurrency,
      durationMs,
      request: (n) => {
        const caller = callers[n % pods]!;
        return {
          path: "/secret",
          body: caller.body,
          headers: { "content-type": "application/json", "x-token": caller.token },
        };
      },
    });
    // Calls include the 1 s warm-up: divide by every request sent, not only measured ones.
    const sent = kube.counts.tokenreviews - kubeBefore.tokenreviews;
    const perRequest = (value: number) => (sent ? value / sent : 0).toFixed(2);
    rows.push(
      `${formatResult(`/secret, ${pods} pod${pods > 1 ? "s" : ""}, cache ${cacheTtl}`, result)} ${
        perRequest(aws.count("GetSecretValue") - awsBefore)
      } | ${
        perRequest(
          kube.counts.tokenreviews - kubeBefore.tokenreviews + kube.counts.pods - kubeBefore.pods,
        )
      } |`,
    );
  }
  if (cacheTtl === "0s") {
    const health = await runLoad({
      port: webhook.port,
      ca: ca.cert,
      concurrency,
      durationMs,
      request: () => ({ path: "/healthz" }),
    });
    rows.push(`${formatResult("/healthz (ceiling)", health)} 0 | 0 |`);
  }
  await webhook.stop();
}
await aws.close();
await kube.close();
await Deno.remove(ca.dir, { recursive: true }).catch(() => {});

console.log(
  "| endpoint | requests/s | p50 ms | p99 ms | errors | AWS calls/request | Kubernetes calls/request |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- |");
for (const row of rows) console.log(row);
