/**
 * The real webhook process (`cli/webhook.ts` with the shipped permission flags) over HTTPS against
 * the Kubernetes API stand-in: health, readiness, keep-serving after bad input, the TLS small-write
 * stall (TCP_NODELAY) regression, plain HTTP and graceful shutdown (certificate rotation and the
 * listener's deadlines: webhook_listener_test.ts).
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type KubeApiStandIn, startKubeApi } from "../testing/kube_api.ts";
import { startWebhook, type WebhookProcess } from "../testing/webhook_process.ts";
import { threeContainerReview } from "../testing/flow.ts";
import type { Container } from "kubernetes-types/core/v1.d.ts";

let kube: KubeApiStandIn;
let webhook: WebhookProcess;

const SETTINGS_ENV = {
  PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:test",
  PIGGY_ADDRESS: "https://piggy-webhooks.piggy-webhooks.svc.cluster.local",
  PIGGY_ALLOWED_ADDRESSES: "https://piggy-webhooks.piggy-webhooks.svc.cluster.local",
};

function post(path: string, body: string, contentType = "application/json") {
  return webhook.fetch(path, { method: "POST", body, headers: { "content-type": contentType } });
}

before(async () => {
  kube = await startKubeApi();
  webhook = await startWebhook({ env: { KUBECONFIG: kube.kubeconfigPath, ...SETTINGS_ENV } });
});

after(async () => {
  await webhook?.stop();
  await kube?.close();
});

test("webhook serves /healthz and /readyz over HTTPS", async () => {
  const health = await webhook.fetch("/healthz");
  assert.equal(health.status, 200);
  await health.body?.cancel();
  const ready = await webhook.fetch("/readyz");
  assert.equal(ready.status, 200);
  await ready.body?.cancel();
  assert.ok(kube.counts.version >= 1, "readiness asked the Kubernetes API");
});

test("webhook /readyz fails while the Kubernetes API is down and recovers", async () => {
  // The readiness result is cached for 5 s: wait it out so the probe reaches the API again.
  await kube.stop();
  try {
    const deadline = Date.now() + 10_000;
    let status = 200;
    while (Date.now() < deadline && status === 200) {
      const response = await webhook.fetch("/readyz");
      status = response.status;
      await response.body?.cancel();
      if (status === 200) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.equal(status, 503);
  } finally {
    await kube.restart();
  }
  const response = await webhook.fetch("/readyz");
  assert.equal(response.status, 200);
  await response.body?.cancel();
});

test("webhook answers bad requests with 4xx and keeps serving", async () => {
  const cases: [string, RequestInit, number][] = [
    ["/mutate", { method: "GET" }, 405],
    ["/mutate", { method: "POST", body: "{}", headers: { "content-type": "text/plain" } }, 415],
    ["/mutate", {
      method: "POST",
      body: "{invalid",
      headers: { "content-type": "application/json" },
    }, 400],
    ["/mutate", {
      method: "POST",
      body: "x".repeat(4 * 1024 * 1024),
      headers: { "content-type": "application/json" },
    }, 413],
    [
      "/secret",
      { method: "POST", body: "{}", headers: { "content-type": "application/json" } },
      401,
    ],
    ["/nope", { method: "GET" }, 404],
  ];
  for (const [path, init, expected] of cases) {
    const response = await webhook.fetch(path, init);
    assert.equal(response.status, expected, `${init.method} ${path}`);
    await response.body?.cancel();
  }
  const response = await post("/mutate", JSON.stringify(threeContainerReview("after-bad-input")));
  assert.equal(response.status, 200);
  const review = await response.json();
  assert.equal(review.response.uid, "after-bad-input");
  assert.equal(review.response.allowed, true);
  assert.equal(review.response.patchType, "JSONPatch");
});

test("webhook answers a 4 KB HTTPS response without the small-write stall", async () => {
  // Deno ≥ 2.8.3 leaves TCP_NODELAY off on TLS sockets: a response written in more than one TLS
  // record then waits ~40 ms for the client's delayed ACK. A GET over node:https on a keep-alive
  // connection shows it (measured: 44 ms on 2.8.3, 0.5–1.4 ms on 2.8.2). The stall delays every
  // answer, load on the machine only some: the fastest of 20 must stay under 20 ms.
  for (const path of ["/healthz", "/readyz", "/nope", "/secret"]) await webhook.get(path);
  await webhook.post("/mutate", JSON.stringify(threeContainerReview("metrics")));
  const timings: number[] = [];
  for (let i = 0; i < 21; i++) {
    const started = performance.now();
    const response = await webhook.get("/metrics");
    const elapsed = performance.now() - started;
    assert.equal(response.status, 200);
    assert.ok(
      response.body.length >= 4096,
      `answer is ${response.body.length} bytes, expected 4 KB`,
    );
    if (i > 0) timings.push(elapsed);
  }
  const fastest = Math.min(...timings);
  assert.ok(fastest < 20, `fastest 4 KB HTTPS answer took ${fastest.toFixed(1)} ms (limit 20 ms)`);
});

test("webhook writes nothing on stdout and logs JSON lines", () => {
  assert.deepEqual(webhook.stdout, []);
  for (const line of webhook.logs) {
    const record = JSON.parse(line);
    assert.equal(typeof record.level, "string");
    assert.match(record.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    assert.equal(typeof record.message, "string");
  }
});

test("webhook serves plain HTTP with a warning when no certificate is set", async () => {
  const plain = await startWebhook({ tls: false, env: { KUBECONFIG: kube.kubeconfigPath } });
  try {
    assert.match(plain.url, /^http:/);
    const response = await fetch(`${plain.url}/healthz`);
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.ok(
      plain.logs.some((line) => line.includes('"level":"warn"') && line.includes("plain HTTP")),
    );
  } finally {
    assert.equal((await plain.stop()).code, 0);
  }
});

test("webhook refuses to start with only one of the TLS files", async () => {
  const partial = await startWebhook({
    env: { KUBECONFIG: kube.kubeconfigPath, TLS_PRIVATE_KEY_FILE: "" },
  }).catch((error: Error) => error);
  assert.ok(partial instanceof Error);
  assert.match(partial.message, /must be set together/);
});

for (const [name, value] of [["PIGGY_ENFORCE_SERVICE_ACCOUNT", "yes"], ["LOG_LEVEL", "loud"]]) {
  test(`webhook exits 1 with one line naming ${name} when its value is invalid`, async () => {
    const error = await startWebhook({
      env: { KUBECONFIG: kube.kubeconfigPath, [name!]: value! },
    }).catch((caught: Error) => caught);
    assert.ok(error instanceof Error);
    const [header, ...lines] = error.message.split("\n");
    assert.equal(header, "webhook exited with 1 before listening:");
    assert.equal(lines.length, 1, lines.join("\n"));
    const line = JSON.parse(lines[0]!);
    assert.equal(line.level, "error");
    assert.equal(
      line.message.startsWith(`Cannot start piggy-webhooks: Cannot use ${name}="${value}": `),
      true,
      line.message,
    );
  });
}

test("webhook finishes in-flight requests on SIGTERM and exits 0", async () => {
  const local = await startWebhook({ env: { KUBECONFIG: kube.kubeconfigPath, ...SETTINGS_ENV } });
  const review = threeContainerReview("in-flight");
  // No literal piggy: value, only a ConfigMap reference: the handler must read the ConfigMap from
  // the (slowed) Kubernetes API to learn that the container needs wrapping.
  const namespace = (review.request as { namespace?: string }).namespace ?? "default";
  kube.put("configmaps", {
    metadata: { namespace, name: "slow" },
    data: { k: "piggy:DB_PASSWORD" },
  });
  for (const container of review.request.object.spec!.containers) {
    container.env = [{
      name: "FROM_CM",
      valueFrom: { configMapKeyRef: { name: "slow", key: "k" } },
    }];
  }
  kube.setLatency(800);
  try {
    const pending = local.fetch("/mutate", {
      method: "POST",
      body: JSON.stringify(review),
      headers: { "content-type": "application/json" },
    });
    // SIGTERM only once the handler waits on the Kubernetes API (a loaded machine may take longer
    // than any fixed delay to get the request there).
    const before = kube.arrived.length;
    const reached = () =>
      kube.arrived.slice(before).some((path) => path.includes("/configmaps/slow"));
    for (const deadline = Date.now() + 30_000; !reached();) {
      assert.ok(Date.now() < deadline, "the /mutate request never reached the Kubernetes API");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    local.child.kill("SIGTERM");
    const response = await pending;
    assert.equal(response.status, 200);
    const answer = (await response.json()).response;
    assert.equal(answer.uid, "in-flight");
    assert.equal(answer.allowed, true);
    assert.ok(answer.patch, "the pod was wrapped, so the ConfigMap was read");
    const status = await local.status;
    assert.equal(status.code, 0);
    assert.ok(local.logs.some((line) => line.includes("Shutting down")));
  } finally {
    kube.setLatency(0);
    await local.stop();
  }
});

test("webhook listens on IPv6 and IPv4 for an address without a host, as Go's :8443", async () => {
  const local = await startWebhook({
    tls: false,
    env: { KUBECONFIG: kube.kubeconfigPath, LISTEN_ADDRESS: ":0" },
  });
  try {
    for (const host of ["127.0.0.1", "[::1]"]) {
      const response = await fetch(`http://${host}:${local.port}/healthz`);
      assert.equal(response.status, 200, host);
      await response.body?.cancel();
    }
  } finally {
    await local.stop();
  }
});

test("webhook reads valueFrom/envFrom references through the Kubernetes API stand-in", async () => {
  kube.put("configmaps", {
    metadata: { name: "app-config", namespace: "team-a" },
    data: { PASSWORD: "piggy:DB_PASSWORD", PLAIN: "x" },
  });
  kube.put("secrets", {
    metadata: { name: "app-refs", namespace: "team-a" },
    data: { TOKEN: btoa("piggy:API_TOKEN\n") },
  });
  const review = (env: unknown[], envFrom: unknown[] = []) => {
    const body = threeContainerReview(`refs-${crypto.randomUUID()}`);
    body.request.object.spec!.containers = [
      { name: "app", image: "app:1", command: ["/app"], env, envFrom } as Container,
    ];
    return JSON.stringify(body);
  };
  const admit = async (body: string) => JSON.parse((await webhook.post("/mutate", body)).body);

  // Found: a ConfigMap key and a Secret (base64, trailing newline) holding references.
  for (
    const body of [
      review([{
        name: "DB",
        valueFrom: { configMapKeyRef: { name: "app-config", key: "PASSWORD" } },
      }]),
      review([], [{ secretRef: { name: "app-refs" } }]),
    ]
  ) {
    const answer = await admit(body);
    assert.equal(answer.response.allowed, true);
    assert.equal(answer.response.patchType, "JSONPatch", "the container was wrapped");
  }
  // NotFound: skipped (Go Piggy's rule), the pod is allowed unchanged.
  const missing = await admit(
    review([{ name: "DB", valueFrom: { configMapKeyRef: { name: "nope", key: "PASSWORD" } } }]),
  );
  assert.equal(missing.response.allowed, true);
  assert.equal(missing.response.patch, undefined);
  // Any other API error denies the pod with the reason.
  kube.failNext("configmaps", { status: 500, times: 1 });
  const failed = await admit(
    review([{
      name: "DB",
      valueFrom: { configMapKeyRef: { name: "app-config", key: "PASSWORD" } },
    }]),
  );
  assert.equal(failed.response.allowed, false);
  assert.match(failed.response.status.message, /app-config/);
  assert.ok(!JSON.stringify(failed).includes("piggy:DB_PASSWORD"), "no ConfigMap value echoed");
});

test("webhook exits 1 with a clear log line when its port is taken (no IPv4 fallback)", async () => {
  const holder = Deno.listen({ hostname: "::", port: 0 });
  try {
    const error = await startWebhook({
      tls: false,
      env: { KUBECONFIG: kube.kubeconfigPath, LISTEN_ADDRESS: `:${holder.addr.port}` },
    }).catch((caught: Error) => caught);
    assert.ok(error instanceof Error);
    assert.match(error.message, /exited with 1/);
    assert.match(error.message, /"level":"error".*"message":"Cannot listen"/);
    assert.doesNotMatch(error.message, /Uncaught|using 0\.0\.0\.0/);
  } finally {
    holder.close();
  }
});
