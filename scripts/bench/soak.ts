// deno-lint-ignore-file no-console
/**
 * Soak benchmark: memory of the real webhook process under a long `/secret` load.
 *
 * Three processes: this one runs the Kubernetes API and AWS stand-ins; the webhook
 * (`testing/webhook_process.ts`, the shipped permission flags, plus `--inspect=127.0.0.1:0` so
 * that this process can force a garbage collection there through the V8 inspector); and the load
 * client (`scripts/bench/soak_client.ts`, `--concurrency` keep-alive HTTPS connections, closed
 * loop). Every `--every` answers it prints the webhook's RSS (now and peak, from /proc), then
 * forces a full GC and prints the V8 heap in use after it. At the end: the peak RSS and the growth
 * per request after warm-up (least-squares slope over the checkpoints past `--warmup`).
 *
 *   npx deno run -A scripts/bench/soak.ts [--requests 200000] [--concurrency 50] [--every 10000]
 *     [--warmup 20000] [--v8-flags=<flags for the webhook>] [--env NAME=VALUE …]
 *
 * `--v8-flags` replaces the shipped V8 flags (`WEBHOOK_V8_FLAGS` in cli/permissions.ts, baked into
 * the binary by `deno compile`); `--v8-flags=` (empty) measures V8's own defaults. `--env` adds
 * environment to the webhook (repeatable), e.g. `--env MALLOC_ARENA_MAX=2`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { DEFAULT_TOKEN_AUDIENCE } from "../../src/constants.ts";
import { startKubeApi } from "../../testing/kube_api.ts";
import { startAwsStandIn } from "../../testing/aws.ts";
import { startWebhook } from "../../testing/webhook_process.ts";
import { admitPod, launcherRequest, persistPod, secretReaderPod } from "../../testing/flow.ts";
import { slope } from "../../testing/trend.ts";
import { createTestCa } from "../../testing/pki.ts";
import { connectInspector, inspectorUrlOf } from "../../testing/inspector.ts";
import type { SoakClientConfig } from "./soak_client.ts";
import { cpuSeconds } from "./wrk.ts";
import { WEBHOOK_V8_FLAGS } from "../../cli/permissions.ts";

const MIB = 1024 * 1024;
const CLIENT = fileURLToPath(new URL("./soak_client.ts", import.meta.url));

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "200000" },
    concurrency: { type: "string", default: "50" },
    every: { type: "string", default: "10000" },
    warmup: { type: "string", default: "20000" },
    "v8-flags": { type: "string" },
    env: { type: "string", multiple: true, default: [] },
  },
});
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);
const every = Number(values.every);
const warmup = Number(values.warmup);
/** `--v8-flags` replaces the shipped ones; an empty value means V8's defaults. */
const v8Flags = values["v8-flags"] === undefined
  ? WEBHOOK_V8_FLAGS
  : values["v8-flags"].split(",").filter((flag) => flag !== "");
const extraEnv = Object.fromEntries(
  values.env.map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]),
);

/** VmRSS and VmHWM (peak) of `pid`, in bytes. */
function rssOf(pid: number): { rss: number; peak: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { rss: kib("VmRSS") * 1024, peak: kib("VmHWM") * 1024 };
}

const NAMESPACE = "soak";
const kube = await startKubeApi();
const aws = await startAwsStandIn();
aws.putSecret("soak/app", { string: JSON.stringify({ DB_PASSWORD: "soak-value" }) });
const ca = createTestCa("piggy-soak");
const webhook = await startWebhook({
  ca,
  v8Flags,
  denoArgs: ["--inspect=127.0.0.1:0"],
  env: {
    KUBECONFIG: kube.kubeconfigPath,
    PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:soak",
    PIGGY_ALLOWED_ADDRESSES: "https://piggy.soak.svc",
    ...aws.env({ credentials: "static", region: "us-east-1" }),
    ...extraEnv,
  },
});
const inspectorUrl = webhook.logs.map(inspectorUrlOf).find((url) => url !== undefined);
if (!inspectorUrl) {
  throw new Error(`no inspector URL in the webhook's log:\n${webhook.logs.join("\n")}`);
}
const probe = await connectInspector(inspectorUrl);
const pid = webhook.child.pid;

const admitted = await admitPod(
  webhook,
  secretReaderPod("https://piggy.soak.svc", "soak/app"),
  NAMESPACE,
);
// The projected token the mutation mounts (audience piggysec.com), as current launchers send.
const caller = launcherRequest(kube, persistPod(kube, admitted.pod, NAMESPACE, "app-0"), 0, [
  DEFAULT_TOKEN_AUDIENCE,
]);
const config: SoakClientConfig = {
  port: webhook.port,
  ca: ca.cert,
  path: "/secret",
  body: caller.body,
  headers: { "content-type": "application/json", "x-token": caller.token },
  count: requests,
  concurrency,
  every,
};

interface Checkpoint {
  requests: number;
  seconds: number;
  errors: number;
  rss: number;
  peak: number;
  heapUsed: number;
  heapTotal: number;
  heapTotalBefore: number;
  cpu: number;
}
const checkpoints: Checkpoint[] = [];
const began = performance.now();
async function sample(answered: number, errors: number): Promise<Checkpoint> {
  const { rss, peak } = rssOf(pid);
  const cpu = cpuSeconds(pid);
  const before = await probe.heap();
  const heap = await probe.heapAfterGc();
  const point = {
    requests: answered,
    seconds: (performance.now() - began) / 1000,
    errors,
    rss,
    peak,
    heapUsed: heap.usedBytes,
    heapTotal: heap.totalBytes,
    heapTotalBefore: before.totalBytes,
    cpu,
  };
  checkpoints.push(point);
  const previous = checkpoints.at(-2);
  const rate = previous
    ? (point.requests - previous.requests) / (point.seconds - previous.seconds)
    : NaN;
  const cpuMs = previous
    ? (point.cpu - previous.cpu) * 1000 / (point.requests - previous.requests)
    : NaN;
  console.log(
    `| ${point.requests} | ${point.seconds.toFixed(1)} | ${
      Number.isNaN(rate) ? "-" : rate.toFixed(0)
    } | ${Number.isNaN(cpuMs) ? "-" : cpuMs.toFixed(2)} | ${point.errors} | ${
      (rss / MIB).toFixed(1)
    } | ${(peak / MIB).toFixed(1)} | ${(before.totalBytes / MIB).toFixed(1)} | ${
      (heap.usedBytes / MIB).toFixed(2)
    } | ${(heap.totalBytes / MIB).toFixed(1)} |`,
  );
  // The stand-ins keep a log of every request: drop it, it is not the webhook's memory.
  kube.requests.splice(0);
  kube.tokenReviews.splice(0);
  aws.resetCounters();
  return point;
}

console.log(
  `webhook pid ${pid}, V8 flags: ${v8Flags.join(",") || "(V8 defaults)"}${
    Object.keys(extraEnv).length ? `, env ${JSON.stringify(extraEnv)}` : ""
  }; ${requests} /secret requests, concurrency ${concurrency}`,
);
console.log(
  "| requests | s | requests/s | webhook CPU ms/request | errors | RSS MiB | RSS peak MiB | heap committed MiB | heap after GC MiB | committed after GC MiB |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
await sample(0, 0);

const client = new Deno.Command(Deno.execPath(), {
  args: ["run", "--allow-net=127.0.0.1", "--allow-env", CLIENT, JSON.stringify(config)],
  stdout: "piped",
  stderr: "inherit",
}).spawn();
let summary = "";
let buffer = "";
const decoder = new TextDecoder();
for await (const chunk of client.stdout) {
  buffer += decoder.decode(chunk, { stream: true });
  let index;
  while ((index = buffer.indexOf("\n")) >= 0) {
    const line = buffer.slice(0, index);
    buffer = buffer.slice(index + 1);
    const [kind, answered, errors] = line.split(" ");
    if (kind === "progress") await sample(Number(answered), Number(errors));
    else if (kind === "done") summary = line;
  }
}
const clientStatus = await client.status;
if (!clientStatus.success) throw new Error(`the load client exited with ${clientStatus.code}`);

const past = checkpoints.filter((point) => point.requests >= warmup);
const heapSlope = slope(past.map((point) => ({ x: point.requests, y: point.heapUsed })));
const rssSlope = slope(past.map((point) => ({ x: point.requests, y: point.rss })));
const last = checkpoints.at(-1)!;
const first = past[0] ?? last;
const cpuPerRequest = (last.cpu - first.cpu) * 1000 / (last.requests - first.requests);
console.log("");
console.log(`client: ${summary}`);
console.log(
  `RSS peak ${(last.peak / MIB).toFixed(1)} MiB; RSS at start ${
    (checkpoints[0]!.rss / MIB).toFixed(1)
  } MiB, at end ${(last.rss / MIB).toFixed(1)} MiB`,
);
console.log(
  `after ${warmup} requests (${past.length} checkpoints): heap after GC ${
    heapSlope.toFixed(1)
  } B/request, RSS ${rssSlope.toFixed(1)} B/request; webhook CPU ${
    cpuPerRequest.toFixed(3)
  } ms/request`,
);

probe.close();
await webhook.stop();
await aws.close();
await kube.close();
await Deno.remove(ca.dir, { recursive: true }).catch(() => {});
