// deno-lint-ignore-file no-console
/**
 * Benchmark prototype of one event loop per core: `/mutate` served by 1 and by 2 processes of
 * `webhook_worker.ts` sharing one port (`SO_REUSEPORT`), each against the ceiling of `mutate.ts`
 * (the bare JSON echo on the same stack, one process), alternately, `wrk` 1 thread, 50
 * connections. CPU per request is the workers' user + system time together. What each worker
 * keeps for itself (limits, caches, metrics, seal key) is listed in `webhook_worker.ts`.
 *
 * Run: `npx deno run -A scripts/bench/mutate_workers.ts [--seconds 5] [--connections 50] [--rounds 3]`
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { startKubeApi } from "../../testing/kube_api.ts";
import { threeContainerReview } from "../../testing/flow.ts";
import { createTestCa } from "../../testing/pki.ts";
import { alternate, benchArgs, ensureWrk, type Side } from "./wrk.ts";

const args = benchArgs();
ensureWrk();
const body = JSON.stringify(threeContainerReview("bench"));
const kube = await startKubeApi();
const ca = createTestCa("piggy-bench");
const serving = ca.issue("bench");
const keyFile = `${ca.dir}/seal.key`;
Deno.writeTextFileSync(keyFile, "bench-seal-key-0123456789abcdefghijklmnop");

/** Starts a process that prints its port on its first stdout line. */
async function spawn(
  script: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ child: Deno.ChildProcess; port: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--max-semi-space-size=4,--max-old-space-size=128",
      fileURLToPath(new URL(script, import.meta.url)),
      ...args,
    ],
    env,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  const port = Number(new TextDecoder().decode((await reader.read()).value).trim());
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return { child, port };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function startWorkers(
  count: number,
): Promise<{ children: Deno.ChildProcess[]; port: number }> {
  const port = freePort();
  const env = {
    KUBECONFIG: kube.kubeconfigPath,
    LISTEN_ADDRESS: `127.0.0.1:${port}`,
    TLS_CERT_FILE: serving.certFile,
    TLS_PRIVATE_KEY_FILE: serving.keyFile,
    PIGGY_SEAL_KEY_FILES: keyFile,
    PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:bench",
    PIGGY_ADDRESS: "https://piggy-webhooks.piggy-webhooks.svc.cluster.local",
    PIGGY_ALLOWED_ADDRESSES: "https://piggy-webhooks.piggy-webhooks.svc.cluster.local",
    AWS_EC2_METADATA_DISABLED: "true",
  };
  const children = [];
  for (let index = 0; index < count; index++) {
    children.push((await spawn("./webhook_worker.ts", [], env)).child);
  }
  return { children, port };
}

const bare = await spawn("./bare_server.ts", [serving.certFile, serving.keyFile], {});
const mutate = [{ path: "/mutate", body, headers: { "content-type": "application/json" } }];
const ceiling: Side = {
  label: "bare JSON echo (1 process)",
  port: bare.port,
  requests: mutate,
  pid: bare.child.pid,
};
console.log(`wrk -t1 -c${args.connections} -d${args.seconds}s, ${args.rounds} rounds`);
const all: Deno.ChildProcess[] = [bare.child];
try {
  for (const count of [1, 2]) {
    const workers = await startWorkers(count);
    all.push(...workers.children);
    await alternate(
      ceiling,
      {
        label: `piggy /mutate, ${count} worker(s) on one port`,
        port: workers.port,
        requests: mutate,
        pids: workers.children.map((child) => child.pid),
      },
      args,
    );
    for (const child of workers.children) {
      child.kill("SIGTERM");
      await child.status;
    }
  }
} finally {
  for (const child of all) {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
  }
  await Promise.all(all.map((child) => child.status));
  await kube.close();
  await Deno.remove(ca.dir, { recursive: true }).catch(() => {});
}
