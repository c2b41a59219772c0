import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeApiError, KubeUnavailableError } from "../errors.ts";
import { Logger } from "../log.ts";
import { createTestCa } from "../../testing/pki.ts";
import { API_AUDIENCE, type KubeApiStandIn, startKubeApi } from "../../testing/kube_api.ts";
import {
  createKubeClient,
  type HttpKubeClient,
  type HttpKubeClientOptions,
} from "./http_client.ts";
import { inClusterConfig, parseKubeConfig } from "./kubeconfig.ts";

let api: KubeApiStandIn;
const clients: HttpKubeClient[] = [];

before(async () => {
  api = await startKubeApi();
  api.put("configmaps", { metadata: { namespace: "ns", name: "settings" }, data: { a: "1" } });
  api.put("pods", {
    metadata: { namespace: "ns", name: "web-0" },
    spec: { serviceAccountName: "app", containers: [{ name: "app", image: "busybox" }] },
  });
  api.put("secrets", { metadata: { namespace: "ns", name: "db" }, data: { password: "c2VjcmV0" } });
  api.put("serviceaccounts", { metadata: { namespace: "ns", name: "app" } });
});

after(async () => {
  for (const client of clients) client.close();
  await api.close();
});

function readText(path: string): string {
  return readFileSync(path, "utf8");
}

/** A client for a kubeconfig written by the stand-in; closed after all tests. */
function clientFor(path: string, options: HttpKubeClientOptions = {}): HttpKubeClient {
  const client = createKubeClient(parseKubeConfig(readText(path), { path, readFile: readText }), {
    timeoutMs: 2_000,
    ...options,
  });
  clients.push(client);
  return client;
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof Error);
    return error;
  }
  assert.fail("expected a rejection");
}

test("HttpKubeClient reads objects with a bearer token", async () => {
  const client = clientFor(api.kubeconfigPath);
  const configMap = await client.getConfigMap("ns", "settings");
  assert.deepEqual(configMap?.data, { a: "1" });
  assert.equal(configMap?.kind, "ConfigMap");
  const pod = await client.getPod("ns", "web-0");
  assert.equal(pod?.spec?.containers[0]?.name, "app");
  const secret = await client.getSecret("ns", "db");
  assert.deepEqual(secret?.data, { password: "c2VjcmV0" });
  const account = await client.getServiceAccount("ns", "app");
  assert.equal(account?.metadata?.name, "app");
  const last = api.requests.at(-1);
  assert.equal(last?.auth, "token");
  assert.equal(last?.user, "kubernetes-admin");
  assert.equal(last?.userAgent, "piggy-webhooks");
});

test("HttpKubeClient keeps connections alive between calls", async () => {
  const client = clientFor(api.kubeconfigPath);
  await client.probe();
  const opened = api.connections;
  await client.getConfigMap("ns", "settings");
  await client.getConfigMap("ns", "settings");
  await client.probe();
  assert.equal(api.connections, opened);
});

test("HttpKubeClient authenticates with inline client certificates", async () => {
  const client = clientFor(api.writeKubeconfig({ auth: "clientCert" }));
  const pod = await client.getPod("ns", "web-0");
  assert.equal(pod?.metadata?.name, "web-0");
  assert.equal(api.requests.at(-1)?.auth, "clientCert");
  assert.equal(api.requests.at(-1)?.user, "kubernetes-admin");
});

test("HttpKubeClient reads the CA and client certificate from files next to the kubeconfig", async () => {
  const path = api.writeKubeconfig({ auth: "clientCert", certificates: "file" });
  assert.match(readText(path), /"certificate-authority": "ca.crt"/);
  const client = clientFor(path);
  assert.equal((await client.getConfigMap("ns", "settings"))?.metadata?.name, "settings");
  assert.equal(api.requests.at(-1)?.auth, "clientCert");
});

test("HttpKubeClient fails with KubeUnavailableError when the server certificate is untrusted", async () => {
  const other = createTestCa("kube-client-wrong");
  try {
    const client = clientFor(api.writeKubeconfig({ caCert: other.cert }));
    const before = api.requests.length;
    const error = await rejection(client.getConfigMap("ns", "settings"));
    assert.ok(error instanceof KubeUnavailableError, error.name);
    assert.match(
      error.message,
      /^Cannot get configmap "ns\/settings": Kubernetes API unreachable: /,
    );
    assert.match(error.message, /certificate/i);
    assert.equal(api.requests.length, before, "no request went through");
  } finally {
    rmSync(other.dir, { recursive: true, force: true });
  }
});

test("HttpKubeClient resolves to null on 404 for every kind", async () => {
  const client = clientFor(api.kubeconfigPath);
  assert.equal(await client.getPod("ns", "missing"), null);
  assert.equal(await client.getConfigMap("ns", "missing"), null);
  assert.equal(await client.getSecret("ns", "missing"), null);
  assert.equal(await client.getServiceAccount("other-ns", "app"), null);
  assert.equal(api.requests.at(-1)?.status, 404);
});

test("HttpKubeClient maps 403 to KubeApiError with the Status reason and message", async () => {
  const token = api.issueToken({ namespace: "ns", serviceAccount: "app" });
  const client = clientFor(api.writeKubeconfig({ token }));
  const error = await rejection(client.getSecret("ns", "db"));
  assert.ok(error instanceof KubeApiError, error.name);
  assert.equal(error.status, 403);
  assert.equal(error.reason, "Forbidden");
  assert.equal(
    error.message,
    'Cannot get secret "ns/db": secrets "db" is forbidden: User "system:serviceaccount:ns:app" ' +
      'cannot get resource "secrets" in API group "" in the namespace "ns"',
  );
  assert.equal(error.message.includes(token), false);
});

test("HttpKubeClient maps an injected 500 to KubeApiError", async () => {
  const client = clientFor(api.kubeconfigPath);
  api.failNext("configmaps", { status: 500 });
  const error = await rejection(client.getConfigMap("ns", "settings"));
  assert.ok(error instanceof KubeApiError, error.name);
  assert.equal(error.status, 500);
  assert.equal(error.reason, "InternalError");
  assert.equal(
    error.message,
    'Cannot get configmap "ns/settings": Internal error occurred: injected failure',
  );
  assert.equal((await client.getConfigMap("ns", "settings"))?.metadata?.name, "settings");
});

test("HttpKubeClient maps 429, 502, 503 and 504 to KubeUnavailableError", async () => {
  const client = clientFor(api.kubeconfigPath);
  for (const status of [429, 502, 503, 504]) {
    api.failNext("pods", { status });
    const error = await rejection(client.getPod("ns", "web-0"));
    assert.ok(error instanceof KubeUnavailableError, `${status}: ${error.name}`);
    assert.match(error.message, /^Cannot get pod "ns\/web-0": Kubernetes API unavailable: /);
  }
});

test("HttpKubeClient never copies a non-Status body into errors", async () => {
  const client = clientFor(api.kubeconfigPath);
  api.failNext("secrets", { status: 500, body: "password=hunter2" });
  const error = await rejection(client.getSecret("ns", "db"));
  assert.ok(error instanceof KubeApiError);
  assert.equal(error.message, 'Cannot get secret "ns/db": HTTP 500');
  api.failNext("secrets", { status: 502, body: "<html>password=hunter2</html>" });
  const gateway = await rejection(client.getSecret("ns", "db"));
  assert.ok(gateway instanceof KubeUnavailableError);
  assert.equal(gateway.message.includes("hunter2"), false);
});

test("HttpKubeClient fails with 401 KubeApiError for a rejected token, without leaking it", async () => {
  const client = clientFor(api.writeKubeconfig({ token: "wrong-token-value" }));
  const error = await rejection(client.probe());
  assert.ok(error instanceof KubeApiError, error.name);
  assert.equal(error.status, 401);
  assert.equal(error.reason, "Unauthorized");
  assert.equal(error.message, "Cannot get version: Unauthorized");
  assert.equal(JSON.stringify(api.requests).includes("wrong-token-value"), false);
});

test("HttpKubeClient reports a stopped API as unavailable and recovers after restart", async () => {
  const local = await startKubeApi({ ca: api.ca });
  try {
    local.put("configmaps", { metadata: { namespace: "ns", name: "c" } });
    const client = clientFor(local.kubeconfigPath);
    assert.ok(await client.getConfigMap("ns", "c"));
    await local.stop();
    const error = await rejection(client.getConfigMap("ns", "c"));
    assert.ok(error instanceof KubeUnavailableError, error.name);
    assert.match(error.message, /ECONNREFUSED/);
    await local.restart();
    assert.equal((await client.getConfigMap("ns", "c"))?.metadata?.name, "c");
  } finally {
    await local.close();
  }
});

test("HttpKubeClient retries once when a reused keep-alive connection is reset", async () => {
  const client = clientFor(api.kubeconfigPath);
  await client.probe();
  api.failNext("configmaps", { reset: true });
  assert.equal((await client.getConfigMap("ns", "settings"))?.metadata?.name, "settings");
  const tail = api.requests.slice(-2).map((r) => r.status);
  assert.deepEqual(tail, [0, 200]);
});

test("HttpKubeClient does not retry a reset on a fresh connection", async () => {
  const client = clientFor(api.kubeconfigPath);
  api.failNext("configmaps", { reset: true });
  const error = await rejection(client.getConfigMap("ns", "settings"));
  assert.ok(error instanceof KubeUnavailableError, error.name);
  assert.equal(api.requests.at(-1)?.status, 0);
});

test("HttpKubeClient times out when the API answers later than the timeout", async () => {
  const local = await startKubeApi({ ca: api.ca, latencyMs: 1_000 });
  try {
    const client = clientFor(local.kubeconfigPath, { timeoutMs: 50 });
    const error = await rejection(client.probe());
    assert.ok(error instanceof KubeUnavailableError, error.name);
    assert.equal(error.message, "Cannot get version: Kubernetes API timed out after 50 ms");
    const perCall = await rejection(client.probe({ timeoutMs: 20 }));
    assert.match(perCall.message, /timed out after 20 ms/);
    local.setLatency(0);
    assert.ok(await client.probe({ timeoutMs: 2_000 }));
  } finally {
    await local.close();
  }
});

test("HttpKubeClient stops a call when the caller's signal aborts", async () => {
  const local = await startKubeApi({ ca: api.ca, latencyMs: 1_000 });
  try {
    const client = clientFor(local.kubeconfigPath);
    const controller = new AbortController();
    const call = client.getConfigMap("ns", "x", { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("admission deadline")), 20);
    const error = await rejection(call);
    assert.ok(error instanceof KubeUnavailableError, error.name);
    assert.equal(error.message, 'Cannot get configmap "ns/x": the call was aborted');

    const before = local.counts.configmaps;
    const early = await rejection(client.getConfigMap("ns", "x", { signal: AbortSignal.abort() }));
    assert.ok(early instanceof KubeUnavailableError);
    assert.equal(local.counts.configmaps, before, "no request for an already aborted signal");
  } finally {
    await local.close();
  }
});

test("HttpKubeClient URL-encodes names and refuses empty or dot segments", async () => {
  api.put("configmaps", { metadata: { namespace: "ns", name: "a b/c?d" }, data: { k: "v" } });
  const client = clientFor(api.kubeconfigPath);
  const found = await client.getConfigMap("ns", "a b/c?d");
  assert.deepEqual(found?.data, { k: "v" });
  assert.equal(api.requests.at(-1)?.path, "/api/v1/namespaces/ns/configmaps/a%20b%2Fc%3Fd");

  const before = api.requests.length;
  for (const [namespace, name] of [["ns", ""], ["", "x"], ["ns", "."], ["ns", ".."], ["..", "x"]]) {
    await assert.rejects(client.getSecret(namespace!, name!), TypeError);
  }
  assert.equal(api.requests.length, before);
});

test("HttpKubeClient.reviewToken() returns the TokenReview status", async () => {
  const client = clientFor(api.kubeconfigPath);
  const token = api.issueToken({
    namespace: "ns",
    serviceAccount: "app",
    podName: "web-0",
    audiences: ["piggy.test"],
  });
  const status = await client.reviewToken(token, ["piggy.test"]);
  assert.equal(status.authenticated, true);
  assert.deepEqual(status.audiences, ["piggy.test"]);
  assert.equal(status.user?.username, "system:serviceaccount:ns:app");
  assert.deepEqual(status.user?.extra?.["authentication.kubernetes.io/pod-name"], ["web-0"]);
  assert.deepEqual(api.tokenReviews.at(-1), { audiences: ["piggy.test"] });

  const rejected = await client.reviewToken(token, []);
  assert.equal(rejected.authenticated, undefined);
  assert.match(rejected.error ?? "", /invalid bearer token/);
  assert.deepEqual(api.tokenReviews.at(-1), {}, "no spec.audiences when none are requested");

  const apiToken = api.issueToken({ namespace: "ns", serviceAccount: "app" });
  const apiStatus = await client.reviewToken(apiToken, []);
  assert.deepEqual(apiStatus.audiences, [API_AUDIENCE]);
});

test("HttpKubeClient.reviewToken() does not send an empty token", async () => {
  const client = clientFor(api.kubeconfigPath);
  const before = api.counts.tokenreviews;
  const status = await client.reviewToken("", ["piggy.test"]);
  assert.equal(status.authenticated, false);
  assert.equal(api.counts.tokenreviews, before);
});

test("HttpKubeClient.reviewToken() throws on API errors, 404 included", async () => {
  const client = clientFor(api.kubeconfigPath);
  const token = api.issueToken({ namespace: "ns", serviceAccount: "app" });
  api.failNext("tokenreviews", { status: 404 });
  const missing = await rejection(client.reviewToken(token, []));
  assert.ok(missing instanceof KubeApiError, missing.name);
  assert.equal(missing.status, 404);
  assert.match(missing.message, /^Cannot create tokenreview: /);
  assert.equal(missing.message.includes(token), false);

  api.failNext("tokenreviews", { status: 500 });
  const failed = await rejection(client.reviewToken(token, []));
  assert.ok(failed instanceof KubeApiError);
  assert.equal(failed.reason, "InternalError");

  api.failNext("tokenreviews", { status: 503 });
  assert.ok((await rejection(client.reviewToken(token, []))) instanceof KubeUnavailableError);

  const forbidden = clientFor(api.writeKubeconfig({ token }));
  const denied = await rejection(forbidden.reviewToken(token, []));
  assert.ok(denied instanceof KubeApiError);
  assert.equal(denied.status, 403);
  assert.equal(denied.message.includes(token), false);
});

test("HttpKubeClient.probe() returns the server version", async () => {
  const client = clientFor(api.kubeconfigPath);
  const info = await client.probe();
  assert.match(info.gitVersion, /^v1\./);
  assert.equal(api.requests.at(-1)?.path, "/version");
});

test("HttpKubeClient rejects responses above maxResponseBytes", async () => {
  api.put("configmaps", {
    metadata: { namespace: "ns", name: "big" },
    data: { k: "x".repeat(4096) },
  });
  const client = clientFor(api.kubeconfigPath, { maxResponseBytes: 1024 });
  const error = await rejection(client.getConfigMap("ns", "big"));
  assert.ok(error instanceof KubeApiError, error.name);
  assert.equal(error.reason, "ResponseTooLarge");
  assert.ok(await client.probe(), "the client still works afterwards");
});

test("HttpKubeClient in-cluster re-reads the rotated token file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piggy-sa-"));
  try {
    const first = api.issueToken({ namespace: "ns", serviceAccount: "first" });
    const second = api.issueToken({ namespace: "ns", serviceAccount: "second" });
    const third = api.issueToken({ namespace: "ns", serviceAccount: "third" });
    writeFileSync(join(dir, "token"), first);
    writeFileSync(join(dir, "ca.crt"), api.caCert);
    const env: Record<string, string> = {
      KUBERNETES_SERVICE_HOST: "127.0.0.1",
      KUBERNETES_SERVICE_PORT: String(api.port),
    };
    const config = inClusterConfig((name) => env[name], readText, { serviceAccountDir: dir });
    let now = 0;
    const client = createKubeClient(config, { now: () => now, tokenCacheMs: 10_000 });
    clients.push(client);

    await client.probe();
    assert.equal(api.requests.at(-1)?.user, "system:serviceaccount:ns:first");

    writeFileSync(join(dir, "token"), `${second}\n`);
    await client.probe();
    assert.equal(api.requests.at(-1)?.user, "system:serviceaccount:ns:first", "cached");
    now += 10_000;
    await client.probe();
    assert.equal(api.requests.at(-1)?.user, "system:serviceaccount:ns:second", "re-read");

    // The cached token is revoked before the cache expires: the 401 forces a re-read.
    writeFileSync(join(dir, "token"), third);
    api.revokeToken(second);
    await client.probe();
    const tail = api.requests.slice(-2).map((r) => [r.status, r.user ?? ""]);
    assert.deepEqual(tail, [[401, ""], [200, "system:serviceaccount:ns:third"]]);

    // A file that disappears keeps the last good token.
    rmSync(join(dir, "token"));
    now += 10_000;
    await client.probe();
    assert.equal(api.requests.at(-1)?.user, "system:serviceaccount:ns:third");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("createKubeClient() rejects a server that is not an http(s) URL", () => {
  const base = { insecureSkipTlsVerify: false, source: "kubeconfig" as const, location: "x" };
  assert.throws(() => createKubeClient({ ...base, server: "not a url", warnings: [] }), TypeError);
  assert.throws(() => createKubeClient({ ...base, server: "ftp://h", warnings: [] }), TypeError);
});

test("HttpKubeClient honours insecure-skip-tls-verify, logs the warning and never the token", async () => {
  const path = api.writeKubeconfig();
  const text = readText(path).replace(
    /"certificate-authority-data": "[^"]*"/,
    '"insecure-skip-tls-verify": true',
  );
  writeFileSync(path, text);
  const lines: string[] = [];
  const logger = new Logger({ level: "debug", sink: (line) => lines.push(line) });
  const client = clientFor(path, { logger });
  assert.ok(await client.getSecret("ns", "db"));
  assert.match(lines[0] ?? "", /"level":"warn".*insecure-skip-tls-verify/);
  assert.match(
    lines.at(-1) ?? "",
    /"level":"debug".*"path":"\/api\/v1\/namespaces\/ns\/secrets\/db".*"status":200/,
  );
  const all = lines.join("\n");
  assert.equal(all.includes(api.adminToken), false);
  assert.equal(all.includes("c2VjcmV0"), false, "no secret data in logs");
});
