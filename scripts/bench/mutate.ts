// deno-lint-ignore-file no-console
/**
 * Benchmark: `/mutate` of the real webhook process with a realistic 3-container pod (~4 KB
 * request), driven by `wrk` (1 thread, 50 connections, 5 s), against the ceiling: a bare handler
 * on the same server stack (`bare_server.ts`: the TLS front and `Deno.serve`) that parses and
 * re-serialises the same JSON. The two run alternately for `--rounds` rounds; the ratio per round
 * and the median are printed. Also `/healthz` of the webhook against the bare stack's GET.
 *
 * Run: `npx deno run -A scripts/bench/mutate.ts [--seconds 5] [--connections 50] [--rounds 3]`
 * Target: median ratio ≥ 60 % of the ceiling, p99 under 20 ms.
 *
 * @module
 */

import { startKubeApi } from "../../testing/kube_api.ts";
import { startWebhook } from "../../testing/webhook_process.ts";
import { threeContainerReview } from "../../testing/flow.ts";
import { createTestCa } from "../../testing/pki.ts";
import { alternate, benchArgs, ensureWrk, startBareServer } from "./wrk.ts";

const args = benchArgs();
ensureWrk();
const body = JSON.stringify(threeContainerReview("bench"));

const kube = await startKubeApi();
const ca = createTestCa("piggy-bench");
const webhook = await startWebhook({
  ca,
  env: {
    KUBECONFIG: kube.kubeconfigPath,
    PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:bench",
    PIGGY_ADDRESS: "https://piggy-webhooks.piggy-webhooks.svc.cluster.local",
    PIGGY_ALLOWED_ADDRESSES: "https://piggy-webhooks.piggy-webhooks.svc.cluster.local",
  },
});
const sample = await webhook.post("/mutate", body);
console.log(
  `request body ${body.length} bytes, answer ${sample.status} ${sample.body.length} bytes; ` +
    `wrk -t1 -c${args.connections} -d${args.seconds}s, ${args.rounds} rounds`,
);

const serving = ca.issue("bare");
const bare = await startBareServer(serving.certFile, serving.keyFile);

try {
  const mutate = [{ path: "/mutate", body, headers: { "content-type": "application/json" } }];
  await alternate(
    {
      label: "bare JSON echo on the same stack",
      port: bare.port,
      requests: mutate,
      pid: bare.child.pid,
    },
    { label: "piggy /mutate", port: webhook.port, requests: mutate, pid: webhook.child.pid },
    args,
  );
  await alternate(
    {
      label: "bare GET on the same stack",
      port: bare.port,
      requests: [{ path: "/healthz" }],
      pid: bare.child.pid,
    },
    {
      label: "piggy /healthz",
      port: webhook.port,
      requests: [{ path: "/healthz" }],
      pid: webhook.child.pid,
    },
    args,
  );
} finally {
  await bare.stop();
  await webhook.stop();
  await kube.close();
  await Deno.remove(ca.dir, { recursive: true }).catch(() => {});
}
