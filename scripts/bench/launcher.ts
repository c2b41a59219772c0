// deno-lint-ignore-file no-console
/**
 * Benchmark: piggy-env start-up against the floor. Median of 20 runs each of:
 * - floor: the same runtime with the same flags running an empty program (time to its exit);
 * - proxy: piggy-env (webhook warm) to the app's first line;
 * - TLS only: the same runtime opening one verified TLS connection to the webhook (Deno.connect
 *   and Deno.startTls with the pod's CA, as piggy-env does) and printing a line: the part of a
 *   proxy start that is Deno's own (its TLS library's one-time set-up is most of it);
 * - proxy (source): the same from cli/piggy_env.ts instead of the bundle (`gen/piggy_env.js`,
 *   what `deno compile` embeds and the other launcher rows run);
 * - standalone: piggy-env straight to the AWS stand-in (plain HTTP), to the app's first line;
 * - standalone (https): the same against a second AWS stand-in behind TLS (its test CA trusted
 *   through `DENO_CERT`, as Deno's root store would trust AWS's), so the TLS path of the light AWS
 *   client is measured: real AWS endpoints are HTTPS;
 * - direct: the app alone;
 * - with `--baseline DIR`: proxy and standalone again from another checkout's `cli/piggy_env.ts`
 *   (its `gen/piggy_env.js` when there is one; its `gen/` bundles built there with `deno task
 *   bundle`), interleaved, for before/after figures on a loaded machine (standalone over HTTPS
 *   too).
 * Peak RSS is the process's ru_maxrss from /usr/bin/time (exec keeps the high-water mark, so for a
 * launcher run it is piggy-env's peak before exec). Prints the differences to the floor against the
 * targets (proxy ≤ floor + 50 ms and + 25 MB, standalone ≤ floor + 120 ms) and the size of the
 * installed launcher directory (scripts/launcher_tree.ts, from this deno binary). Runs are
 * interleaved so machine load hits every row alike.
 *
 * `--cold` adds `--no-code-cache` to every deno run (floor included): a compiled piggy-env writes
 * its V8 code cache to the temp directory on its first run only, and a container's first run is
 * usually its only one, so the cold figures are the ones a pod sees.
 *
 * CPU is user + system time of the whole run (launcher and app): less sensitive to machine load
 * than the wall-clock time to the first line.
 *
 * Run: `npx deno run -A scripts/bench/launcher.ts [--runs 20] [--baseline /path/to/checkout] [--cold]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { bundleLauncher, bundleStandaloneSource, LAUNCHER_BUNDLE } from "../bundle_launcher.ts";
import { buildLauncherTree } from "../launcher_tree.ts";
import { LAUNCHER_FLAGS } from "../../cli/permissions.ts";
import { startStack } from "../../testing/stack.ts";
import { admitPod, persistPod } from "../../testing/flow.ts";
import { kubeletExpand } from "../../testing/kubelet_env.ts";
import { startAwsStandIn } from "../../testing/aws.ts";
import { createTestCa } from "../../testing/pki.ts";
import { median, timedRun } from "./timed_run.ts";
import { DEFAULT_TOKEN_AUDIENCE } from "../../src/constants.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "20" },
    baseline: { type: "string" },
    cold: { type: "boolean", default: false },
  },
});
const runs = Number(values.runs);
const SOURCE = fileURLToPath(new URL("../../cli/piggy_env.ts", import.meta.url));
const ENTRY = fileURLToPath(new URL(`../../${LAUNCHER_BUNDLE}`, import.meta.url));
const APP = ["/bin/sh", "-c", 'echo "ready"; sed -n "s/^VmRSS:[[:space:]]*//p" /proc/$$/status'];

interface Run {
  firstLineMs: number;
  cpuMs: number;
  maxRssKb: number;
  appRss: string;
}

/** One start: the time to its first line, its CPU and memory, and the app's own VmRSS line. */
async function timed(
  argv: string[],
  env: Record<string, string>,
  expect = "ready",
): Promise<Run> {
  const { firstLineMs, cpuMs, maxRssKb, out } = await timedRun(argv, env, expect);
  return { firstLineMs, cpuMs, maxRssKb, appRss: out.split("\n")[1]?.trim() ?? "" };
}

const stack = await startStack({
  allowOwnAddress: true,
  caLabel: "piggy-bench",
  env: { PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:bench" },
});
const { kube, aws, webhook } = stack;
aws.putSecret("bench/app", { string: JSON.stringify({ DB_PASSWORD: "bench-value" }) });
const awsCa = createTestCa("piggy-bench-aws");
const awsLeaf = awsCa.issue("aws");
const awsTls = await startAwsStandIn({ tls: { cert: awsLeaf.cert, key: awsLeaf.key } });
awsTls.putSecret("bench/app", { string: JSON.stringify({ DB_PASSWORD: "bench-value" }) });
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
  // Literal values as the kubelet gives them (`$$` becomes `$`: the command template doubles each `$`).
  if (entry.value !== undefined) {
    proxyEnv[entry.name] = kubeletExpand(entry.value, new Map(Object.entries(proxyEnv)));
  }
}
proxyEnv.PIGGY_POD_NAME = "app-0";
proxyEnv.PIGGY_TOKEN_FILE = join(tokenDir, "token");
writeFileSync(
  proxyEnv.PIGGY_TOKEN_FILE,
  kube.issueToken({
    namespace: "bench",
    serviceAccount: "app",
    podName: "app-0",
    // The projected token the admitted pod mounts (PIGGY_TOKEN_FILE), not a legacy API-audience one.
    audiences: [DEFAULT_TOKEN_AUDIENCE],
  }),
);
const standaloneEnv: Record<string, string> = {
  ...base,
  ...aws.env({ credentials: "static", region: "us-east-1" }),
  PIGGY_STANDALONE: "true",
  PIGGY_AWS_SECRET_NAME: "bench/app",
  PIGGY_AWS_REGION: "us-east-1",
};
const standaloneTlsEnv: Record<string, string> = {
  ...standaloneEnv,
  ...awsTls.env({ credentials: "static", region: "us-east-1" }),
  DENO_CERT: awsCa.certFile,
};
/** The launcher's flags, plus `--no-code-cache` with `--cold`. */
const FLAGS = [...LAUNCHER_FLAGS, ...(values.cold ? ["--no-code-cache"] : [])];
const launcher = [Deno.execPath(), "run", ...FLAGS, ENTRY, "--", ...APP];
const fromSource = [Deno.execPath(), "run", ...FLAGS, SOURCE, "--", ...APP];
const emptyProgram = join(tokenDir, "empty.js");
writeFileSync(emptyProgram, "");
const floor = [Deno.execPath(), "run", ...FLAGS, emptyProgram];
const tlsProgram = join(tokenDir, "tls_only.js");
writeFileSync(
  tlsProgram,
  `const url = new URL(Deno.env.get("PIGGY_ADDRESS"));
const ca = Deno.env.get("PIGGY_CA_BUNDLE");
const hostname = url.hostname.replace(/^\\[(.*)\\]$/, "$1");
const tcp = await Deno.connect({ hostname, port: Number(url.port || 443) });
tcp.setNoDelay(true);
const tls = await Deno.startTls(tcp, { hostname, ...(ca ? { caCerts: [ca] } : {}) });
await tls.handshake();
tls.close();
console.log("ready");
`,
);
const tlsOnly = [Deno.execPath(), "run", ...FLAGS, tlsProgram];
await bundleStandaloneSource();
await bundleLauncher();

const baseline = values.baseline
  ? [
    Deno.execPath(),
    "run",
    ...FLAGS,
    existsSync(join(values.baseline, LAUNCHER_BUNDLE))
      ? join(values.baseline, LAUNCHER_BUNDLE)
      : join(values.baseline, "cli/piggy_env.ts"),
    "--",
    ...APP,
  ]
  : undefined;

const results: Record<string, Run[]> = {
  floor: [],
  direct: [],
  "TLS only": [],
  proxy: [],
  "proxy (source)": [],
  standalone: [],
  "standalone (https)": [],
};
if (baseline) {
  Object.assign(results, {
    "proxy (baseline)": [],
    "standalone (baseline)": [],
    "standalone https (baseline)": [],
  });
}
// Warm Deno's module and code caches.
await timed(launcher, proxyEnv);
await timed(fromSource, proxyEnv);
await timed(launcher, standaloneEnv);
await timed(launcher, standaloneTlsEnv);
if (baseline) {
  await timed(baseline, proxyEnv);
  await timed(baseline, standaloneEnv);
  await timed(baseline, standaloneTlsEnv);
}
await timed(floor, base, "");
for (let i = 0; i < runs; i++) {
  results.floor!.push(await timed(floor, base, ""));
  results["TLS only"]!.push(await timed(tlsOnly, proxyEnv));
  results.direct!.push(await timed(APP, base));
  results.proxy!.push(await timed(launcher, proxyEnv));
  results["proxy (source)"]!.push(await timed(fromSource, proxyEnv));
  results.standalone!.push(await timed(launcher, standaloneEnv));
  results["standalone (https)"]!.push(await timed(launcher, standaloneTlsEnv));
  if (baseline) {
    results["proxy (baseline)"]!.push(await timed(baseline, proxyEnv));
    results["standalone (baseline)"]!.push(await timed(baseline, standaloneEnv));
    results["standalone https (baseline)"]!.push(await timed(baseline, standaloneTlsEnv));
  }
}
const tree = join(tokenDir, "piggy-env-dir");
buildLauncherTree(Deno.execPath(), tree);
const bytesOf = (path: string) =>
  Number(
    new TextDecoder().decode(new Deno.Command("du", { args: ["-sb", path] }).outputSync().stdout)
      .split("\t")[0],
  );
const treeBytes = bytesOf(tree);
const libBytes = bytesOf(join(tree, "lib"));

await stack.stop();
await awsTls.close();
rmSync(tokenDir, { recursive: true, force: true });
rmSync(awsCa.dir, { recursive: true, force: true });

const floorMs = median(results.floor!.map((r) => r.firstLineMs));
const floorKb = median(results.floor!.map((r) => r.maxRssKb));
const floorCpu = median(results.floor!.map((r) => r.cpuMs));
console.log(`${runs} runs each (under \`deno run ${FLAGS.join(" ")}\`, not compiled)\n`);
console.log(
  "| start | median to first line ms | vs floor | median CPU ms | vs floor | median peak RSS KB | vs floor | app VmRSS |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const [label, list] of Object.entries(results)) {
  const ms = median(list.map((r) => r.firstLineMs));
  const kb = median(list.map((r) => r.maxRssKb));
  const cpu = median(list.map((r) => r.cpuMs));
  const app = label === "floor" || label === "TLS only"
    ? "-"
    : `${median(list.map((r) => parseInt(r.appRss, 10)))} kB`;
  console.log(
    `| ${label} | ${ms.toFixed(1)} | ${(ms / floorMs).toFixed(2)}× (${
      (ms - floorMs).toFixed(0)
    } ms) | ${cpu.toFixed(0)} | +${(cpu - floorCpu).toFixed(0)} ms | ${kb} | ${
      (kb / floorKb).toFixed(2)
    }× (${((kb - floorKb) / 1024).toFixed(1)} MB) | ${app} |`,
  );
}
const over = (label: string) => ({
  ms: median(results[label]!.map((r) => r.firstLineMs)) - floorMs,
  mb: (median(results[label]!.map((r) => r.maxRssKb)) - floorKb) / 1024,
});
const proxy = over("proxy");
const standalone = over("standalone");
console.log(
  `\ntargets: proxy ≤ floor + 50 ms: ${proxy.ms.toFixed(0)} ms ${
    proxy.ms <= 50 ? "ok" : "MISSED"
  }; ` +
    `proxy ≤ floor + 25 MB: ${proxy.mb.toFixed(1)} MB ${proxy.mb <= 25 ? "ok" : "MISSED"}; ` +
    `standalone ≤ floor + 120 ms: ${standalone.ms.toFixed(0)} ms ${
      standalone.ms <= 120 ? "ok" : "MISSED"
    }`,
);
console.log(
  `installed launcher directory: ${(treeBytes / 1e6).toFixed(1)} MB ` +
    `(binary ${((treeBytes - libBytes) / 1e6).toFixed(1)} MB, lib/ ${
      (libBytes / 1e6).toFixed(1)
    } MB;` +
    " a compiled piggy-env adds its embedded program, ~0.8 MB, to the binary)",
);
console.log(
  "peak RSS of a launcher run is piggy-env's before exec (the app is a small shell);" +
    " the app's own VmRSS after exec should equal the direct start's.",
);
