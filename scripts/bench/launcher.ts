// deno-lint-ignore-file no-console
/**
 * Benchmark: piggy-env start-up. Median of 20 runs of the time from starting piggy-env (`deno run`
 * with the shipped flags, as the tests run it) to the app's first line, in proxy mode (webhook warm)
 * and standalone, against starting the app directly in the same run; piggy-env's peak RSS before
 * exec (the process's ru_maxrss, from /usr/bin/time: exec keeps the high-water mark); and the app's
 * RSS after exec next to the app started directly.
 *
 * Run: `npx deno run -A scripts/bench/launcher.ts [--runs 20]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { LAUNCHER_FLAGS } from "../../cli/permissions.ts";
import { createTestCa } from "../../testing/pki.ts";
import { startKubeApi } from "../../testing/kube_api.ts";
import { startAwsStandIn } from "../../testing/aws.ts";
import { startWebhook } from "../../testing/webhook_process.ts";
import { admitPod, persistPod } from "../../testing/flow.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "20" } } });
const runs = Number(values.runs);
const ENTRY = fileURLToPath(new URL("../../cli/piggy_env.ts", import.meta.url));
const APP = ["/bin/sh", "-c", 'echo "ready"; sed -n "s/^VmRSS:[[:space:]]*//p" /proc/$$/status'];

interface Run {
  firstLineMs: number;
  maxRssKb: number;
  appRss: string;
}

/** Runs `argv` under /usr/bin/time; returns the time to its first stdout line and memory figures. */
async function timed(argv: string[], env: Record<string, string>): Promise<Run> {
  const started = performance.now();
  const child = new Deno.Command("/usr/bin/time", {
    args: ["-f", "maxrss=%M", ...argv],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  let firstLineMs = NaN;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    out += value;
    if (Number.isNaN(firstLineMs) && out.includes("\n")) firstLineMs = performance.now() - started;
  }
  const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
  const status = await child.status;
  if (!status.success || !out.startsWith("ready")) {
    throw new Error(`run failed (${status.code}): ${out}\n${stderr}`);
  }
  return {
    firstLineMs,
    maxRssKb: Number(/maxrss=(\d+)/.exec(stderr)?.[1] ?? NaN),
    appRss: out.split("\n")[1]?.trim() ?? "",
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

const kube = await startKubeApi();
const aws = await startAwsStandIn();
aws.putSecret("bench/app", { string: JSON.stringify({ DB_PASSWORD: "bench-value" }) });
const ca = createTestCa("piggy-bench");
const webhook = await startWebhook({
  ca,
  env: {
    KUBECONFIG: kube.kubeconfigPath,
    PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:bench",
    PIGGY_CA_BUNDLE_FILE: ca.certFile,
    ...aws.env({ credentials: "static", region: "us-east-1" }),
  },
});
const tokenDir = mkdtempSync(join(tmpdir(), "piggy-bench-"));
const base = {
  PATH: "/usr/local/bin:/usr/bin:/bin",
  HOME: Deno.env.get("HOME") ?? "/tmp",
  ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
  DB_PASSWORD: "piggy:DB_PASSWORD",
};

// Proxy mode: a pod admitted by the real webhook, persisted, with a pod-bound token.
const pod: Pod = {
  metadata: {
    generateName: "app-",
    annotations: {
      "piggysec.com/piggy-address": webhook.url,
      "piggysec.com/aws-secret-name": "bench/app",
    },
  },
  spec: {
    serviceAccountName: "app",
    containers: [{
      name: "app",
      image: "app:1",
      command: APP,
      env: [{ name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" }],
    }],
  },
};
const admitted = await admitPod(webhook, pod, "bench");
const stored = persistPod(kube, admitted.pod, "bench", "app-0");
const proxyEnv: Record<string, string> = { ...base };
for (const entry of stored.spec!.containers[0]!.env ?? []) {
  if (entry.value !== undefined) proxyEnv[entry.name] = entry.value;
}
proxyEnv.PIGGY_POD_NAME = "app-0";
proxyEnv.PIGGY_TOKEN_FILE = join(tokenDir, "token");
writeFileSync(
  proxyEnv.PIGGY_TOKEN_FILE,
  kube.issueToken({ namespace: "bench", serviceAccount: "app", podName: "app-0" }),
);
const standaloneEnv: Record<string, string> = {
  ...base,
  ...aws.env({ credentials: "static", region: "us-east-1" }),
  PIGGY_STANDALONE: "true",
  PIGGY_AWS_SECRET_NAME: "bench/app",
  PIGGY_AWS_REGION: "us-east-1",
};
const launcher = [Deno.execPath(), "run", ...LAUNCHER_FLAGS, ENTRY, "--", ...APP];

const results: Record<string, Run[]> = { direct: [], proxy: [], standalone: [] };
await timed(launcher, proxyEnv); // warm Deno's module cache
for (let i = 0; i < runs; i++) {
  results.direct!.push(await timed(APP, base));
  results.proxy!.push(await timed(launcher, proxyEnv));
  results.standalone!.push(await timed(launcher, standaloneEnv));
}

await webhook.stop();
await aws.close();
await kube.close();
rmSync(tokenDir, { recursive: true, force: true });
await Deno.remove(ca.dir, { recursive: true }).catch(() => {});

console.log(`${runs} runs each (piggy-env under \`deno run\`, not compiled)\n`);
console.log(
  "| start | median to first line ms | median max RSS of the process KB | median app VmRSS |",
);
console.log("| --- | --- | --- | --- |");
for (const [label, list] of Object.entries(results)) {
  console.log(
    `| ${label} | ${median(list.map((r) => r.firstLineMs)).toFixed(1)} | ${
      median(list.map((r) => r.maxRssKb))
    } | ${median(list.map((r) => parseInt(r.appRss, 10)))} kB |`,
  );
}
console.log(
  "\nmax RSS of a launcher run is piggy-env's peak before exec (the app is a small shell);" +
    " the app's own VmRSS after exec should equal the direct start's.",
);
