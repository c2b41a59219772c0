/**
 * Deadlines nest: with AWS or the Kubernetes API hanging, the real webhook process answers
 * `/secret` with a reason before the launcher's per-attempt timeout gives up on it (default
 * options: launcher attempt 10 s > PIGGY_SECRET_TIMEOUT 7 s > one AWS attempt or Kubernetes call,
 * 3 s).
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "../src/launcher/options.ts";
import type { KubeApiStandIn } from "../testing/kube_api.ts";
import type { AwsStandIn } from "../testing/aws.ts";
import type { WebhookProcess } from "../testing/webhook_process.ts";
import { type Stack, startStack } from "../testing/stack.ts";
import { admitPod, type LauncherRequest, launcherRequest, persistPod } from "../testing/flow.ts";

const NAMESPACE = "team-a";

let stack: Stack;
let kube: KubeApiStandIn;
let aws: AwsStandIn;
let webhook: WebhookProcess;

before(async () => {
  stack = await startStack({ allowOwnAddress: true });
  ({ kube, aws, webhook } = stack);
  aws.putSecret("team-a/web", {
    string: JSON.stringify({ DB_PASSWORD: "pw", PIGGY_ALLOWED_SA: "team-a:web" }),
  });
});

after(async () => {
  await stack?.stop();
});

/** Admits and persists a pod; what its launcher sends and a token bound to it. */
async function launchablePod(): Promise<LauncherRequest> {
  const pod: Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "web-",
      annotations: {
        "piggysec.com/piggy-address": webhook.url,
        "piggysec.com/aws-secret-name": "team-a/web",
      },
    },
    spec: {
      serviceAccountName: "web",
      containers: [{
        name: "app",
        image: "web:1",
        command: ["/app/server"],
        env: [{ name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" }],
      }],
    },
  };
  const admitted = await admitPod(webhook, pod, NAMESPACE);
  assert.equal(admitted.review.response.allowed, true, JSON.stringify(admitted.review.response));
  return launcherRequest(
    kube,
    persistPod(kube, admitted.pod, NAMESPACE, `web-${crypto.randomUUID().slice(0, 8)}`),
  );
}

/** POSTs `/secret` as the launcher does; the answer and how long it took. */
async function requestSecret(pod: LauncherRequest) {
  const started = performance.now();
  const response = await webhook.fetch("/secret", {
    method: "POST",
    headers: { "content-type": "application/json", "x-token": pod.token },
    body: pod.body,
  });
  const body = await response.json();
  return { status: response.status, body, ms: performance.now() - started };
}

test("/secret answers 504 naming the AWS step before the launcher's attempt timeout when AWS hangs", async () => {
  const pod = await launchablePod();
  const before = aws.count("GetSecretValue");
  aws.delayNext("GetSecretValue", 60_000, 10);
  try {
    const answer = await requestSecret(pod);
    assert.equal(answer.status, 504, JSON.stringify(answer.body));
    assert.deepEqual(answer.body, {
      error: "DeadlineExceeded",
      message: "Cannot answer within PIGGY_SECRET_TIMEOUT (7000 ms): reading the secret from AWS " +
        "did not finish",
    });
    // Measured: 7.0 s (Go-era chain: 15.2 s, after the launcher had given up at 10 s).
    assert.ok(answer.ms >= 6_500, `answered after ${answer.ms.toFixed(0)} ms`);
    assert.ok(
      answer.ms < DEFAULT_REQUEST_TIMEOUT_MS,
      `answered after ${answer.ms.toFixed(0)} ms, launcher waits ${DEFAULT_REQUEST_TIMEOUT_MS} ms`,
    );
    // One AWS attempt timed out at 3 s, the next was cut by the deadline.
    const attempts = aws.count("GetSecretValue") - before;
    assert.ok(attempts >= 2 && attempts <= 3, `${attempts} AWS attempts`);
  } finally {
    aws.clearInjections();
  }
  const line = webhook.logs.findLast((entry) => entry.includes("PIGGY_SECRET_TIMEOUT"));
  assert.ok(line, "the audit line names the deadline");
  assert.equal(JSON.parse(line).status, 504);
  // AWS answers again: once the shared fetch still retrying the hung call has ended (concurrent
  // identical reads share one AWS call), requests are served again.
  const until = performance.now() + 20_000;
  let again = await requestSecret(pod);
  while (again.status !== 200 && performance.now() < until) {
    assert.ok(again.ms < DEFAULT_REQUEST_TIMEOUT_MS, `answered after ${again.ms.toFixed(0)} ms`);
    again = await requestSecret(pod);
  }
  assert.equal(again.status, 200, JSON.stringify(again.body));
});

test("/secret answers 503 at the Kubernetes call timeout when the API server hangs", async () => {
  const pod = await launchablePod();
  kube.setLatency(30_000);
  try {
    const answer = await requestSecret(pod);
    assert.equal(answer.status, 503, JSON.stringify(answer.body));
    assert.match(
      answer.body.message,
      /Cannot review token: .*Kubernetes API timed out after 3000 ms/,
    );
    // Measured: 3.0 s.
    assert.ok(answer.ms >= 2_500, `answered after ${answer.ms.toFixed(0)} ms`);
    assert.ok(answer.ms < DEFAULT_REQUEST_TIMEOUT_MS, `answered after ${answer.ms.toFixed(0)} ms`);
  } finally {
    kube.setLatency(0);
  }
});
