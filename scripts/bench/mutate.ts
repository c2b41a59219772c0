// deno-lint-ignore-file no-console
/**
 * Benchmark: `/mutate` over HTTPS on loopback with a realistic 3-container pod (~5 KB), 50
 * concurrent connections, against the real webhook process; in the same run, the same load on a
 * bare `Deno.serve` HTTPS handler that parses and re-serialises the same JSON (the ceiling).
 *
 * Run: `npx deno run -A scripts/bench/mutate.ts [--seconds 5] [--concurrency 50]`
 * Target: ≥ 60 % of the ceiling's throughput, p99 under 20 ms.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { startKubeApi } from "../../testing/kube_api.ts";
import { startWebhook } from "../../testing/webhook_process.ts";
import { threeContainerReview } from "../../testing/flow.ts";
import { cpuSeconds, formatResult, loadArgs, runLoad } from "./load.ts";
import { createTestCa } from "../../testing/pki.ts";

const { seconds, durationMs, concurrency } = loadArgs();
const body = JSON.stringify(threeContainerReview("bench"));
console.log(`request body: ${body.length} bytes, ${concurrency} connections, ${seconds} s`);

const kube = await startKubeApi();
const ca = createTestCa("piggy-bench");
const webhook = await startWebhook({
  ca,
  env: {
    KUBECONFIG: kube.kubeconfigPath,
    PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:bench",
    PIGGY_ADDRESS: "https://piggy-webhooks.piggy-webhooks.svc.cluster.local",
  },
});
const request = () => ({ path: "/mutate", body, headers: { "content-type": "application/json" } });
const sample = await webhook.post("/mutate", body);
console.log(`answer: ${sample.status}, ${sample.body.length} bytes`);
const cpuBefore = cpuSeconds(webhook.child.pid);
const loadStarted = performance.now();
const piggy = await runLoad({
  port: webhook.port,
  ca: webhook.caCert,
  concurrency,
  durationMs,
  request,
});
const serverCores = (cpuSeconds(webhook.child.pid) - cpuBefore) /
  ((performance.now() - loadStarted) / 1000);
await webhook.stop();

const serving = ca.issue("bare");
const bare = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-net",
    "--allow-read",
    fileURLToPath(new URL("./bare_server.ts", import.meta.url)),
    serving.certFile,
    serving.keyFile,
  ],
  stdout: "piped",
}).spawn();
const reader = bare.stdout.getReader();
const port = Number(new TextDecoder().decode((await reader.read()).value).trim());
reader.releaseLock();
const ceiling = await runLoad({ port, ca: webhook.caCert, concurrency, durationMs, request });
bare.kill("SIGTERM");
await bare.status;
await bare.stdout.cancel().catch(() => {});
await kube.close();
await Deno.remove(ca.dir, { recursive: true }).catch(() => {});

console.log("| server | requests/s | p50 ms | p99 ms | errors |\n| --- | --- | --- | --- | --- |");
console.log(formatResult("piggy /mutate", piggy));
console.log(formatResult("bare Deno.serve JSON echo (ceiling)", ceiling));
console.log(`webhook process CPU during its run: ${serverCores.toFixed(2)} cores (of 2)`);
console.log(
  `throughput ratio: ${
    (piggy.requestsPerSecond / ceiling.requestsPerSecond * 100).toFixed(0)
  } % of the ceiling`,
);
