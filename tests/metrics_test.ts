/**
 * `/metrics` of the real webhook process after a scripted mix (pods mutated, unchanged and denied;
 * `/secret` 200, 401, 403 and 502; a cached answer), with the Kubernetes and AWS stand-ins behind
 * the real clients: each counter moves as expected, the text follows the exposition format's rules,
 * and the Grafana dashboard and the chart's alerts name only metrics the webhook exports.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { commandSignature } from "../src/pod/signature.ts";
import { VERSION } from "../src/version.ts";
import type { KubeApiStandIn } from "../testing/kube_api.ts";
import type { AwsStandIn } from "../testing/aws.ts";
import type { WebhookProcess } from "../testing/webhook_process.ts";
import { type Stack, startStack } from "../testing/stack.ts";
import { admitPod, launcherIdentity, launcherToken, persistPod } from "../testing/flow.ts";
import { dig, findObject, renderChart } from "./_chart.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const NAMESPACE = "team-a";

let kube: KubeApiStandIn;
let aws: AwsStandIn;
let webhook: WebhookProcess;
let stack: Stack;

function pod(annotations: Record<string, string>, command?: string[]): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { generateName: "web-", annotations },
    spec: {
      serviceAccountName: "web",
      containers: [{
        name: "app",
        image: "registry.example.com/web:1.0",
        ...(command ? { command } : {}),
        env: [{ name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" }],
      }],
    },
  };
}

const PROXY = { "piggysec.com/piggy-address": "https://piggy-webhooks.piggy.svc.cluster.local" };

/** One sample: name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses Prometheus text format 0.0.4 strictly enough to catch what scrapers reject: every sample
 * belongs to a family announced by HELP and TYPE before it, counters end in `_total`, histogram
 * buckets are cumulative with ascending `le` ending in `+Inf` equal to `_count`.
 */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  assert.ok(text.endsWith("\n"), "ends with a newline");
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
  const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"$/;
  for (const line of text.slice(0, -1).split("\n")) {
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S/.exec(line);
    if (help) {
      assert.ok(!helps.has(help[1]!), `one HELP for ${help[1]}`);
      helps.add(help[1]!);
      continue;
    }
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/
      .exec(line);
    if (type) {
      assert.ok(helps.has(type[1]!), `HELP before TYPE for ${type[1]}`);
      assert.ok(!types.has(type[1]!), `one TYPE for ${type[1]}`);
      types.set(type[1]!, type[2]!);
      continue;
    }
    const match = sample.exec(line);
    assert.ok(match, `a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const part of match[2] ? match[2].split(/,(?=[a-zA-Z_][a-zA-Z0-9_]*=")/) : []) {
      const pair = label.exec(part);
      assert.ok(pair, `a label: ${part}`);
      labels[pair[1]!] = pair[2]!;
    }
    const value = match[3] === "+Inf" ? Infinity : Number(match[3]);
    assert.ok(!Number.isNaN(value), `a number: ${line}`);
    samples.push({ name: match[1]!, labels, value });
  }
  for (const s of samples) {
    const family = familyOf(s.name, types);
    assert.ok(family, `${s.name} belongs to an announced family`);
    if (types.get(family) === "counter") assert.match(s.name, /_total$/);
  }
  for (const [family, type] of types) {
    if (type === "counter") assert.match(family, /_total$/, `counter ${family}`);
    if (type !== "histogram") continue;
    const series = new Map<string, Sample[]>();
    for (const s of samples.filter((s) => s.name === `${family}_bucket`)) {
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      series.set(key, [...(series.get(key) ?? []), s]);
    }
    for (const [key, buckets] of series) {
      const bounds = buckets.map((b) => b.labels.le === "+Inf" ? Infinity : Number(b.labels.le));
      assert.deepEqual(bounds, [...bounds].sort((a, b) => a - b), `${family} le ascending`);
      assert.equal(bounds.at(-1), Infinity, `${family} ends with +Inf`);
      const counts = buckets.map((b) => b.value);
      assert.deepEqual(counts, [...counts].sort((a, b) => a - b), `${family} cumulative`);
      const count = samples.find((s) =>
        s.name === `${family}_count` && JSON.stringify(s.labels) === key
      );
      assert.equal(count?.value, counts.at(-1), `${family} +Inf equals _count`);
    }
  }
  return { samples, types };
}

function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, "");
  return types.get(base) === "histogram" ? base : undefined;
}

function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  ).reduce((sum, s) => sum + s.value, 0);
}

async function scrape(): Promise<{ samples: Sample[]; types: Map<string, string> }> {
  const response = await webhook.fetch("/metrics");
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parseExposition(await response.text());
}

async function requestSecret(body: Record<string, string>, token: string): Promise<number> {
  const response = await webhook.fetch("/secret", {
    method: "POST",
    headers: { "content-type": "application/json", "x-token": token },
    body: JSON.stringify({ resources: "pods", ...body }),
  });
  await response.body?.cancel();
  return response.status;
}

before(async () => {
  stack = await startStack({
    publishCa: false,
    env: {
      PIGGY_SECRET_CACHE_TTL: "1m",
      PIGGY_ALLOWED_ADDRESSES: "https://piggy-webhooks.piggy.svc.cluster.local",
    },
  });
  ({ kube, aws, webhook } = stack);
  aws.putSecret("team-a/web", { string: JSON.stringify({ DB_PASSWORD: "x" }) });
});

after(async () => {
  await stack?.stop();
});

test("/metrics counts admissions, /secret, AWS, Kubernetes and cache after a scripted mix", async () => {
  const before = (await scrape()).samples;

  // Admissions: one mutated, one unchanged (no Piggy annotation), one denied (no command).
  const secretPod = { ...PROXY, "piggysec.com/aws-secret-name": "team-a/web" };
  const mutated = await admitPod(webhook, pod(secretPod, ["/app/server"]), NAMESPACE);
  assert.ok(mutated.review.response.patch);
  const unchanged = await admitPod(webhook, pod({}, ["/app/server"]), NAMESPACE);
  assert.equal(unchanged.review.response.allowed, true);
  assert.equal(unchanged.review.response.patch, undefined);
  const denied = await admitPod(webhook, pod(secretPod), NAMESPACE);
  assert.equal(denied.review.response.allowed, false);

  // /secret: 200 twice (the second from the cache), 403 (signature), 401 (token), 502 (AWS).
  const stored = persistPod(kube, mutated.pod, NAMESPACE, "web-1");
  const { uid, command } = launcherIdentity(stored.spec!.containers[0]!);
  const token = launcherToken(kube, stored);
  const body = { name: "web-1", uid, signature: await commandSignature(command) };
  assert.equal(await requestSecret(body, token), 200);
  assert.equal(await requestSecret(body, token), 200);
  assert.equal(await requestSecret({ ...body, signature: "forged" }, token), 403);
  assert.equal(await requestSecret(body, "not-a-token"), 401);
  const missing = await admitPod(
    webhook,
    pod({ ...PROXY, "piggysec.com/aws-secret-name": "team-a/missing" }, ["/app/server"]),
    NAMESPACE,
  );
  const storedMissing = persistPod(kube, missing.pod, NAMESPACE, "web-2");
  const missingId = launcherIdentity(storedMissing.spec!.containers[0]!);
  const missingToken = launcherToken(kube, storedMissing);
  const missingBody = {
    name: "web-2",
    uid: missingId.uid,
    signature: await commandSignature(missingId.command),
  };
  assert.equal(await requestSecret(missingBody, missingToken), 502);

  const after = (await scrape()).samples;
  const moved = (name: string, labels: Record<string, string> = {}) =>
    total(after, name, labels) - total(before, name, labels);

  assert.equal(moved("piggy_admission_requests_total", { outcome: "mutated" }), 2);
  assert.equal(moved("piggy_admission_requests_total", { outcome: "unchanged" }), 1);
  assert.equal(moved("piggy_admission_requests_total", { outcome: "denied" }), 1);
  assert.equal(moved("piggy_admission_requests_total", { outcome: "error" }), 0);
  assert.equal(moved("piggy_admission_duration_seconds_count"), 4);

  assert.equal(moved("piggy_secret_requests_total", { code: "200", reason: "served" }), 2);
  assert.equal(moved("piggy_secret_requests_total", { code: "403", reason: "forbidden" }), 1);
  assert.equal(
    moved("piggy_secret_requests_total", { code: "401", reason: "unauthenticated" }),
    1,
  );
  assert.equal(moved("piggy_secret_requests_total", { code: "502", reason: "aws_error" }), 1);
  assert.equal(moved("piggy_http_requests_total", { endpoint: "/secret" }), 5);

  assert.equal(moved("piggy_aws_requests_total", { api: "GetSecretValue", result: "ok" }), 1);
  assert.equal(
    moved("piggy_aws_requests_total", { api: "GetSecretValue", result: "not_found" }),
    1,
  );
  assert.equal(moved("piggy_aws_request_duration_seconds_count", { api: "GetSecretValue" }), 2);
  assert.equal(moved("piggy_secret_cache_requests_total", { result: "hit" }), 1);
  assert.equal(moved("piggy_secret_cache_requests_total", { result: "miss" }), 2);

  assert.ok(moved("piggy_kubernetes_requests_total", { api: "create_tokenreview" }) >= 3);
  // web-1's second and third requests read its pod from the pod cache (PIGGY_POD_CACHE_TTL).
  assert.ok(moved("piggy_kubernetes_requests_total", { api: "get_pod", result: "ok" }) >= 2);
  assert.ok(moved("piggy_kubernetes_request_duration_seconds_count", { api: "get_pod" }) >= 2);
  const podLookups = ["hit", "miss", "coalesced"]
    .reduce((sum, result) => sum + moved("piggy_pod_cache_requests_total", { result }), 0);
  assert.ok(podLookups >= 3, `pod cache lookups: ${podLookups}`);
  assert.ok(moved("piggy_pod_cache_requests_total", { result: "miss" }) >= 1);

  assert.ok(total(after, "process_resident_memory_bytes") > 10_000_000, "RSS in bytes");
  assert.ok(total(after, "process_cpu_seconds_total") > 0);
  assert.ok(total(after, "process_open_fds") > 3);
  const start = total(after, "process_start_time_seconds");
  assert.ok(Math.abs(start - Date.now() / 1000) < 600, "start time in epoch seconds");
  const build = after.find((s) => s.name === "piggy_build_info");
  assert.deepEqual(build?.labels, {
    version: VERSION,
    runtime: "deno",
    runtime_version: Deno.version.deno,
  });

  // Bounded labels: no pod, namespace, service account or secret name anywhere.
  const values = after.flatMap((s) => Object.values(s.labels));
  for (const leak of [NAMESPACE, "web-1", "team-a/web", "team-a/missing", "web"]) {
    assert.ok(!values.includes(leak), `no label carries "${leak}"`);
  }
});

/** Metric names a PromQL expression reads (identifiers followed by `{`, `[`, `)` or `,`). */
function metricNames(expr: string): string[] {
  const names = expr.match(/\b(piggy_[a-z0-9_]+|process_[a-z0-9_]+|up)\b(?=\s*[{[),])/g) ?? [];
  return [...new Set(names)];
}

test("the dashboard and the chart's alerts name only metrics the webhook exports", async () => {
  const { samples, types } = await scrape();
  const exported = new Set(samples.map((s) => s.name));
  for (const family of types.keys()) exported.add(family);
  const check = (where: string, expr: string) => {
    const names = metricNames(expr);
    assert.ok(names.length > 0, `${where} names a metric: ${expr}`);
    for (const name of names) {
      if (name === "up") continue; // Prometheus's own series for each scraped target
      assert.ok(exported.has(name), `${where}: ${name} is exported`);
    }
  };

  const dashboard = JSON.parse(readFileSync(join(ROOT, "docs", "grafana-dashboard.json"), "utf8"));
  let queries = 0;
  for (const panel of dashboard.panels) {
    for (const target of panel.targets) {
      check(`panel "${panel.title}"`, target.expr);
      queries++;
    }
  }
  for (const variable of dashboard.templating.list) {
    if (variable.type === "query") check(`variable ${variable.name}`, variable.query.query);
  }
  assert.ok(queries >= 15);

  const rule = findObject(
    await renderChart({ values: { metrics: { prometheusRule: { enabled: true } } } }),
    "PrometheusRule",
  );
  for (
    const alert of dig(rule, "spec", "groups", 0, "rules") as { alert: string; expr: string }[]
  ) {
    check(`alert ${alert.alert}`, alert.expr);
  }
});
