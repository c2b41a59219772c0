/**
 * Chart options platform teams expect (extraEnv with valueFrom, Service annotations, Deployment
 * strategy and history, hostNetwork/dnsPolicy, the component label) and the optional monitoring
 * objects (ServiceMonitor, PrometheusRule, Grafana dashboard ConfigMap), rendered by the real helm
 * and validated by `renderChart`.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  CHART_DIR,
  dig,
  findObject,
  helmTemplate,
  type K8sObject,
  renderChart,
  ROOT,
} from "./_chart.ts";

type EnvVar = { name: string; value?: string; valueFrom?: Record<string, unknown> };

function podSpec(objects: K8sObject[]): Record<string, unknown> {
  return dig(findObject(objects, "Deployment"), "spec", "template", "spec") as Record<
    string,
    unknown
  >;
}

function containerEnv(objects: K8sObject[]): EnvVar[] {
  return dig(podSpec(objects), "containers", 0, "env") as EnvVar[];
}

test("defaults render no monitoring objects, history 10, no strategy, pod network", async () => {
  const objects = await renderChart();
  for (const kind of ["ServiceMonitor", "PrometheusRule"]) {
    assert.equal(objects.filter((o) => o.kind === kind).length, 0, kind);
  }
  assert.equal(objects.filter((o) => o.metadata.name.endsWith("-dashboard")).length, 0);
  const deployment = findObject(objects, "Deployment");
  assert.equal(dig(deployment, "spec", "revisionHistoryLimit"), 10);
  assert.equal(dig(deployment, "spec", "strategy"), undefined);
  assert.equal(podSpec(objects).hostNetwork, undefined);
  assert.equal(podSpec(objects).dnsPolicy, undefined);
  assert.equal(dig(findObject(objects, "Service"), "metadata", "annotations"), undefined);
});

test("every object carries app.kubernetes.io/component, the selector does not", async () => {
  const objects = await renderChart({
    values: { metrics: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true } } },
  });
  for (const object of objects) {
    assert.equal(
      dig(object, "metadata", "labels", "app.kubernetes.io/component"),
      "webhook",
      `${object.kind}/${object.metadata.name}`,
    );
  }
  const deployment = findObject(objects, "Deployment");
  assert.equal(
    dig(deployment, "spec", "selector", "matchLabels", "app.kubernetes.io/component"),
    undefined,
    "a Deployment selector cannot change on upgrade",
  );
  assert.equal(
    dig(deployment, "spec", "template", "metadata", "labels", "app.kubernetes.io/component"),
    "webhook",
  );
});

test("extraEnv entries, valueFrom included, follow the chart's variables", async () => {
  const extraEnv = [
    { name: "HTTPS_PROXY", valueFrom: { configMapKeyRef: { name: "egress", key: "proxy" } } },
    { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
    { name: "PLAIN", value: "x" },
  ];
  const env = containerEnv(await renderChart({ values: { extraEnv } }));
  assert.deepEqual(env.slice(-3), extraEnv);
  assert.ok(env.some((e) => e.name === "TLS_CERT_FILE"), "the chart's variables stay");
});

test("extraEnv refuses a name the chart sets, a duplicate, and value with valueFrom", async () => {
  const cases: [unknown[], RegExp][] = [
    [[{ name: "TLS_CERT_FILE", value: "/x" }], /extraEnv: "TLS_CERT_FILE" is set by the chart/],
    [[{ name: "DEBUG", value: "true" }], /extraEnv: "DEBUG" is set by the chart/],
    [[{ name: "A", value: "1" }, { name: "A", value: "2" }], /extraEnv: "A" is listed twice/],
    [[{ name: "A", value: "1", valueFrom: { fieldRef: { fieldPath: "x" } } }], /extraEnv/],
    [[{ name: "A", valueFrom: { secretKeyRef: { name: "s" } } }], /key/],
    [[{ value: "1" }], /name/],
  ];
  for (const [extraEnv, message] of cases) {
    const result = await helmTemplate({ values: { extraEnv } });
    assert.notEqual(result.status, 0, JSON.stringify(extraEnv));
    assert.match(result.stderr, message, JSON.stringify(extraEnv));
  }
  const viaEnv = containerEnv(await renderChart({ values: { env: { DEBUG: "true" } } }));
  assert.equal(viaEnv.find((e) => e.name === "DEBUG")?.value, "true", "env overrides DEBUG");
});

test("service.annotations, strategy and revisionHistoryLimit are passed through", async () => {
  const strategy = { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } };
  const objects = await renderChart({
    values: {
      service: { annotations: { "example.com/lb": "internal" } },
      strategy,
      revisionHistoryLimit: 3,
    },
  });
  assert.deepEqual(dig(findObject(objects, "Service"), "metadata", "annotations"), {
    "example.com/lb": "internal",
  });
  const deployment = findObject(objects, "Deployment");
  assert.deepEqual(dig(deployment, "spec", "strategy"), strategy);
  assert.equal(dig(deployment, "spec", "revisionHistoryLimit"), 3);
  const recreate = await renderChart({ values: { strategy: { type: "Recreate" } } });
  assert.deepEqual(dig(findObject(recreate, "Deployment"), "spec", "strategy"), {
    type: "Recreate",
  });
  for (const values of [{ strategy: { type: "BlueGreen" } }, { revisionHistoryLimit: -1 }]) {
    const result = await helmTemplate({ values });
    assert.notEqual(result.status, 0, JSON.stringify(values));
    assert.match(result.stderr, /values don't meet the specifications of the schema/);
  }
});

test("hostNetwork sets ClusterFirstWithHostNet unless dnsPolicy says otherwise", async () => {
  const host = podSpec(await renderChart({ values: { hostNetwork: true } }));
  assert.equal(host.hostNetwork, true);
  assert.equal(host.dnsPolicy, "ClusterFirstWithHostNet");
  const explicit = podSpec(
    await renderChart({ values: { hostNetwork: true, dnsPolicy: "Default" } }),
  );
  assert.equal(explicit.dnsPolicy, "Default");
  const podNetwork = podSpec(await renderChart({ values: { dnsPolicy: "None" } }));
  assert.equal(podNetwork.hostNetwork, undefined);
  assert.equal(podNetwork.dnsPolicy, "None");
  const bad = await helmTemplate({ values: { dnsPolicy: "Cluster" } });
  assert.notEqual(bad.status, 0);
});

test("the ServiceMonitor selects the Service's https port and trusts the release CA", async () => {
  const objects = await renderChart({
    values: {
      metrics: {
        serviceMonitor: {
          enabled: true,
          labels: { release: "kube-prometheus-stack" },
          interval: "15s",
          metricRelabelings: [{ action: "drop", regex: "process_max_fds" }],
        },
      },
    },
  });
  const monitor = findObject(objects, "ServiceMonitor");
  const service = findObject(objects, "Service");
  assert.equal(dig(monitor, "metadata", "labels", "release"), "kube-prometheus-stack");
  const selector = dig(monitor, "spec", "selector", "matchLabels") as Record<string, string>;
  for (const [key, value] of Object.entries(selector)) {
    assert.equal(dig(service, "metadata", "labels", key), value, `Service label ${key}`);
  }
  assert.deepEqual(dig(monitor, "spec", "namespaceSelector", "matchNames"), ["piggy-system"]);
  const endpoint = dig(monitor, "spec", "endpoints", 0) as Record<string, unknown>;
  const ports = dig(service, "spec", "ports") as { name: string }[];
  assert.ok(ports.some((p) => p.name === endpoint.port), "the endpoint names a Service port");
  assert.equal(endpoint.scheme, "https");
  assert.equal(endpoint.path, "/metrics");
  assert.equal(endpoint.interval, "15s");
  assert.deepEqual(endpoint.metricRelabelings, [{ action: "drop", regex: "process_max_fds" }]);
  assert.equal(dig(endpoint, "tlsConfig", "serverName"), "piggy-piggy-webhooks.piggy-system.svc");
  const ca = dig(endpoint, "tlsConfig", "ca", "configMap") as { name: string; key: string };
  const configMap = findObject(objects, "ConfigMap", ca.name);
  assert.match(String(dig(configMap, "data", ca.key)), /BEGIN CERTIFICATE/);

  const certManager = await renderChart({
    values: {
      metrics: { serviceMonitor: { enabled: true } },
      mutate: { certificate: { certManager: { enabled: true } } },
    },
  });
  const secretCa = dig(
    findObject(certManager, "ServiceMonitor"),
    "spec",
    "endpoints",
    0,
    "tlsConfig",
    "ca",
  );
  assert.deepEqual(secretCa, {
    secret: { name: "piggy-piggy-webhooks-webhook-tls", key: "ca.crt" },
  });
  const certificate = certManager.find((o) =>
    o.kind === "Certificate" && dig(o, "spec", "secretName") === "piggy-piggy-webhooks-webhook-tls"
  );
  assert.ok(certificate, "cert-manager writes ca.crt into that Secret");
});

test("the PrometheusRule alerts on this release's series, with labels and extra rules", async () => {
  const extra = { record: "piggy:admissions:rate5m", expr: "sum(rate(up[5m]))" };
  const objects = await renderChart({
    values: {
      metrics: {
        prometheusRule: {
          enabled: true,
          labels: { release: "prom" },
          alertLabels: { team: "platform", severity: "page" },
          errorRatio: 0.1,
          rules: [extra],
        },
      },
    },
  });
  const rule = findObject(objects, "PrometheusRule");
  assert.equal(dig(rule, "metadata", "labels", "release"), "prom");
  const rules = dig(rule, "spec", "groups", 0, "rules") as Record<string, unknown>[];
  assert.deepEqual(rules.map((r) => r.alert ?? r.record), [
    "PiggyWebhookDown",
    "PiggyAdmissionErrors",
    "PiggyAwsErrors",
    "PiggySecretProxyErrors",
    "PiggyAuditLogFailing",
    "piggy:admissions:rate5m",
  ]);
  for (const alert of rules.slice(0, 5)) {
    assert.match(String(alert.expr), /job="piggy-piggy-webhooks", namespace="piggy-system"/);
    assert.deepEqual(alert.labels, { team: "platform", severity: "page" });
  }
  assert.match(String(rules[1]?.expr), /> 0\.1$/);
  assert.match(String(rules[4]?.expr), /reason="audit_failed"\}\[5m\]\)\) > 0$/);
  assert.deepEqual(rules[5], extra);
  const defaults = findObject(
    await renderChart({ values: { metrics: { prometheusRule: { enabled: true } } } }),
    "PrometheusRule",
  );
  const severities = (dig(defaults, "spec", "groups", 0, "rules") as Record<string, unknown>[])
    .map((r) => dig(r, "labels", "severity"));
  assert.deepEqual(severities, ["critical", "warning", "warning", "warning", "critical"]);
});

test("the dashboard ConfigMap carries the grafana_dashboard label and docs' dashboard", async () => {
  const objects = await renderChart({ values: { metrics: { dashboard: { enabled: true } } } });
  const configMap = findObject(objects, "ConfigMap", "piggy-piggy-webhooks-dashboard");
  assert.equal(dig(configMap, "metadata", "labels", "grafana_dashboard"), "1");
  const docs = readFileSync(join(ROOT, "docs", "grafana-dashboard.json"), "utf8");
  const chart = readFileSync(join(CHART_DIR, "dashboards", "piggy-webhooks.json"), "utf8");
  assert.equal(chart, docs, "the chart's copy is docs/grafana-dashboard.json");
  const rendered = JSON.parse(String(dig(configMap, "data", "piggy-webhooks.json")));
  assert.deepEqual(rendered, JSON.parse(docs));
  assert.equal(rendered.uid, "piggy-webhooks");
});
