// deno-lint-ignore-file no-console
/**
 * Benchmark: piggy-env's standalone start with an egress proxy variable set. Median of N runs each
 * (interleaved, so machine load hits every row alike) of the bundled launcher (`gen/piggy_env.js`)
 * reading one secret over HTTPS from the AWS stand-in (test CA through `DENO_CERT`), to the app's
 * first line, and its CPU (user + system of the whole run):
 * - `no proxy variable`: the light client, direct (the usual standalone start);
 * - `HTTPS_PROXY set, loopback AWS`: the proxy variable is set but the endpoint is 127.0.0.1, which
 *   is never proxied: before this change a proxy variable sent the launcher to the AWS SDK, now it
 *   keeps the light client (same request, same TLS);
 * - `through the proxy`: the endpoint is a `.piggy.test` name reached only through the CONNECT
 *   proxy stand-in (testing/connect_proxy.ts) with Basic credentials; a preload resolves the name
 *   for nothing else (testing/test_hosts_preload.ts, its cost included). Not run for the baseline,
 *   which cannot go through a proxy.
 * With `--baseline DIR` (a checkout whose `gen/` holds its bundles, built with `deno task bundle`),
 * the first two rows run from it too.
 *
 * Run: `npx deno run -A scripts/bench/aws_proxy.ts [--runs 15] [--baseline /path/to/checkout]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LAUNCHER_FLAGS } from "../../cli/permissions.ts";
import { startAwsStandIn } from "../../testing/aws.ts";
import { startConnectProxy } from "../../testing/connect_proxy.ts";
import { createTestCa } from "../../testing/pki.ts";
import { median, timedRun } from "./timed_run.ts";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "15" }, baseline: { type: "string" } },
});
const runs = Number(values.runs);
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const APP = ["/bin/sh", "-c", 'echo "ready $DB_PASSWORD"'];
const HOST = "secretsmanager.aws.piggy.test";

/** One start: time to the first stdout line and CPU, in milliseconds. */
async function timed(argv: string[], env: Record<string, string>) {
  const run = await timedRun(argv, env, "ready bench-value\n");
  if (run.out !== "ready bench-value\n") throw new Error(`run printed more: ${run.out}`);
  return { firstLineMs: run.firstLineMs, cpuMs: run.cpuMs };
}

const ca = createTestCa("piggy-bench-proxy");
const leaf = ca.issue("aws", { serverNames: ["127.0.0.1", HOST] });
const aws = await startAwsStandIn({ tls: { cert: leaf.cert, key: leaf.key } });
aws.putSecret("bench/app", { string: JSON.stringify({ DB_PASSWORD: "bench-value" }) });
const proxy = await startConnectProxy({ auth: { user: "bench", password: "pw" } });
const port = new URL(aws.url).port;
const base: Record<string, string> = {
  PATH: "/usr/local/bin:/usr/bin:/bin",
  HOME: Deno.env.get("HOME") ?? "/tmp",
  ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
  ...aws.env({ credentials: "static", region: "us-east-1" }),
  DENO_CERT: ca.certFile,
  PIGGY_STANDALONE: "true",
  PIGGY_AWS_SECRET_NAME: "bench/app",
  PIGGY_AWS_REGION: "us-east-1",
  DB_PASSWORD: "piggy:DB_PASSWORD",
};
const proxyVariable = { HTTPS_PROXY: `http://bench:pw@127.0.0.1:${proxy.port}` };
const launcher = (root: string, flags: string[] = []) => [
  Deno.execPath(),
  "run",
  ...LAUNCHER_FLAGS,
  ...flags,
  join(root, "gen", "piggy_env.js"),
  "--",
  ...APP,
];
const preload = ["--preload", join(ROOT, "testing", "test_hosts_preload.ts")];

const rows: Array<[string, string[], Record<string, string>]> = [
  ["no proxy variable", launcher(ROOT), base],
  ["HTTPS_PROXY set, loopback AWS", launcher(ROOT), { ...base, ...proxyVariable }],
  [
    "through the proxy (CONNECT)",
    launcher(ROOT, preload),
    { ...base, ...proxyVariable, AWS_ENDPOINT_URL: `https://${HOST}:${port}` },
  ],
];
if (values.baseline) {
  rows.push(
    ["baseline: no proxy variable", launcher(values.baseline), base],
    ["baseline: HTTPS_PROXY set (AWS SDK)", launcher(values.baseline), {
      ...base,
      ...proxyVariable,
    }],
  );
}

const results = new Map<string, Array<{ firstLineMs: number; cpuMs: number }>>();
for (const [, argv, env] of rows) await timed(argv, env); // warm the V8 code caches
proxy.reset();
for (let i = 0; i < runs; i++) {
  for (const [name, argv, env] of rows) {
    const list = results.get(name) ?? [];
    list.push(await timed(argv, env));
    results.set(name, list);
  }
}
const tunnels = proxy.tunnels().length;
console.log(`${runs} runs each, interleaved; medians`);
console.log("row                                   first line    CPU");
for (const [name, list] of results) {
  const first = median(list.map((r) => r.firstLineMs)).toFixed(0);
  const cpu = median(list.map((r) => r.cpuMs)).toFixed(0);
  console.log(`${name.padEnd(38)}${`${first} ms`.padStart(10)}${`${cpu} ms`.padStart(9)}`);
}
console.log(`CONNECT tunnels seen by the proxy: ${tunnels} (expected ${runs})`);
await proxy.close();
await aws.close();
rmSync(ca.dir, { recursive: true, force: true });
