/**
 * Least RBAC: the chart's ClusterRole grants exactly the API calls the webhook's Kubernetes client
 * can make, and each of them is made by webhook code. Every method of the real HTTP client is
 * called against the Kubernetes API stand-in, which records method and path; a client method
 * missing from the table below fails the test, so a new API call cannot ship without its RBAC row
 * (or with a grant nobody uses).
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { createKubeClient, HttpKubeClient } from "../src/k8s/http_client.ts";
import { parseKubeConfig } from "../src/k8s/kubeconfig.ts";
import { type KubeApiStandIn, startKubeApi } from "../testing/kube_api.ts";
import { findObject, type K8sObject, renderChart, ROOT } from "./_chart.ts";

let kube: KubeApiStandIn;

before(async () => {
  kube = await startKubeApi();
});

after(async () => {
  await kube?.close();
});

/** How the test calls each public method of the client (`undefined`: makes no API call). */
const CALLS: Readonly<Record<string, ((client: HttpKubeClient) => Promise<unknown>) | undefined>> =
  {
    getPod: (client) => client.getPod("team-a", "web-0"),
    getConfigMap: (client) => client.getConfigMap("team-a", "settings"),
    getSecret: (client) => client.getSecret("team-a", "pull"),
    getServiceAccount: (client) => client.getServiceAccount("team-a", "web"),
    reviewToken: (client) => client.reviewToken("not-a-token", ["piggysec.com"]),
    probe: (client) => client.probe(),
    close: undefined,
  };

/** Every RBAC grant of the rendered ClusterRoles as "group/resource:verb". */
function grants(objects: K8sObject[]): string[] {
  const out = new Set<string>();
  for (const rule of (findObject(objects, "ClusterRole").rules as Record<string, string[]>[])) {
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        for (const verb of rule.verbs ?? []) out.add(`${group}/${resource}:${verb}`);
      }
    }
  }
  return [...out].sort();
}

/** The RBAC grant a request needs, or `undefined` for a non-resource URL every user may read. */
function grantOf(method: string, path: string): string | undefined {
  const url = new URL(path, "https://api.invalid");
  if (method === "GET" && url.pathname === "/version") return undefined;
  const core = url.pathname.match(/^\/api\/v1\/namespaces\/[^/]+\/([a-z]+)\/[^/]+$/);
  if (core && method === "GET") return `/${core[1]}:get`;
  const group = url.pathname.match(/^\/apis\/([^/]+)\/v1\/([a-z]+)$/);
  if (group && method === "POST") return `${group[1]}/${group[2]}:create`;
  throw new Error(`No RBAC mapping for ${method} ${path}: extend grantOf()`);
}

/** Source files of the webhook outside the Kubernetes client itself, tests excluded. */
function callerSources(): string {
  const texts: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) {
        if (relative(ROOT, path) !== join("src", "k8s")) walk(path);
      } else if (path.endsWith(".ts") && !path.endsWith("_test.ts")) {
        texts.push(readFileSync(path, "utf8"));
      }
    }
  };
  walk(join(ROOT, "src"));
  return texts.join("\n");
}

test("the ClusterRole grants exactly the calls of the webhook's Kubernetes client", async () => {
  const methods = Object.getOwnPropertyNames(HttpKubeClient.prototype)
    .filter((name) => name !== "constructor" && name !== "server");
  for (const name of methods) {
    assert.ok(name in CALLS, `HttpKubeClient.${name}: add it to CALLS and grant what it calls`);
  }
  const client = createKubeClient(
    parseKubeConfig(readFileSync(kube.kubeconfigPath, "utf8"), {
      path: kube.kubeconfigPath,
      readFile: (path) => readFileSync(path, "utf8"),
    }),
  );
  const used = new Set<string>();
  try {
    for (const name of methods) {
      const call = CALLS[name];
      if (!call) continue;
      const before = kube.requests.length;
      await call(client);
      const made = kube.requests.slice(before);
      assert.ok(made.length > 0, `HttpKubeClient.${name} made no request`);
      for (const request of made) {
        const grant = grantOf(request.method, request.path);
        if (grant !== undefined) used.add(grant);
      }
    }
  } finally {
    client.close();
  }
  assert.deepEqual(grants(await renderChart()), [...used].sort());
});

test("every client method that needs a grant is called by webhook code", () => {
  const sources = callerSources();
  for (const [name, call] of Object.entries(CALLS)) {
    if (!call) continue;
    assert.match(sources, new RegExp(`\\.${name}\\(`), `nothing in src/ calls ${name}()`);
  }
});
