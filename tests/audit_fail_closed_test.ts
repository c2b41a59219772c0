/**
 * `/secret` fails closed when its audit line cannot be written, end to end: the real webhook
 * process with its stderr on `/dev/full` (every write fails with ENOSPC) or on a pipe whose reader
 * is gone (EPIPE) answers a valid request from an admitted pod with 500 and no value; the notice
 * is on its stdout and the answer is counted as `audit_failed`. With a working stderr the same
 * request is served, its audit line written.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_TOKEN_AUDIENCE } from "../src/constants.ts";
import { type AwsStandIn, startAwsStandIn } from "../testing/aws.ts";
import { admitPod, launcherRequest, persistPod, secretReaderPod } from "../testing/flow.ts";
import { type KubeApiStandIn, startKubeApi } from "../testing/kube_api.ts";
import {
  startWebhook,
  type StartWebhookOptions,
  type WebhookProcess,
} from "../testing/webhook_process.ts";

const NAMESPACE = "team-a";
const ADDRESS = "https://piggy-webhooks.piggy.svc.cluster.local";
/** The secret's value: it must never reach the client of a failed answer. */
const VALUE = "audit-canary-7d1f0c";

let kube: KubeApiStandIn;
let aws: AwsStandIn;
const webhooks: WebhookProcess[] = [];

before(async () => {
  kube = await startKubeApi();
  aws = await startAwsStandIn();
  aws.putSecret("team-a/web", {
    string: JSON.stringify({ DB_PASSWORD: VALUE, PIGGY_ALLOWED_SA: "team-a:web" }),
  });
});

after(async () => {
  await Promise.all(webhooks.map((webhook) => webhook.stop()));
  await aws?.close();
  await kube?.close();
});

async function start(options: StartWebhookOptions = {}): Promise<WebhookProcess> {
  const webhook = await startWebhook({
    ...options,
    env: {
      KUBECONFIG: kube.kubeconfigPath,
      PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:test",
      PIGGY_ALLOWED_ADDRESSES: ADDRESS,
      ...aws.env({ credentials: "static", region: "us-east-1" }),
    },
  });
  webhooks.push(webhook);
  return webhook;
}

/** Admits and stores a pod through `webhook`, then asks `/secret` for it as its launcher would. */
async function askSecret(
  webhook: WebhookProcess,
  podName: string,
): Promise<{ status: number; text: string; token: string }> {
  const admitted = await admitPod(
    webhook,
    secretReaderPod(ADDRESS, "team-a/web", "web"),
    NAMESPACE,
  );
  const stored = persistPod(kube, admitted.pod, NAMESPACE, podName);
  const { body, token } = launcherRequest(kube, stored, 0, [DEFAULT_TOKEN_AUDIENCE]);
  const response = await webhook.fetch("/secret", {
    method: "POST",
    headers: { "content-type": "application/json", "x-token": token },
    body,
  });
  return { status: response.status, text: await response.text(), token };
}

/** `piggy_secret_requests_total` for `reason`, from the webhook's `/metrics`. */
async function secretAnswers(webhook: WebhookProcess, reason: string): Promise<number> {
  const text = await (await webhook.fetch("/metrics")).text();
  return text.split("\n")
    .filter((line) =>
      line.startsWith("piggy_secret_requests_total{") && line.includes(`"${reason}"`)
    )
    .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
}

/** Asserts the failed answer: 500, no value, no token, the generic error body. */
function assertFailedClosed(answer: { status: number; text: string; token: string }) {
  assert.equal(answer.status, 500, answer.text);
  assert.ok(!answer.text.includes(VALUE), "no secret value in the answer");
  assert.ok(!answer.text.includes(answer.token), "no token in the answer");
  assert.deepEqual(JSON.parse(answer.text), { error: "InternalError", message: "Internal error" });
}

/** The stdout notices of failed stderr writes. */
function notices(webhook: WebhookProcess): Record<string, unknown>[] {
  return webhook.stdout.filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((record) => String(record.message).startsWith("Cannot write log lines to stderr"));
}

test("/secret with a working stderr: 200 with the value, after its audit line", async () => {
  const webhook = await start();
  const answer = await askSecret(webhook, "web-ok");
  assert.equal(answer.status, 200, answer.text);
  assert.equal(JSON.parse(answer.text).DB_PASSWORD, VALUE);
  const audit = webhook.logs.find((line) =>
    line.includes('"pod_name":"web-ok"') && line.includes("was successful")
  );
  assert.ok(audit, "the audit line is written before the answer leaves");
  assert.ok(!audit.includes(VALUE));
  assert.equal(await secretAnswers(webhook, "audit_failed"), 0);
  assert.deepEqual(notices(webhook), []);
});

test("/secret with stderr on /dev/full (ENOSPC): 500 without the value, noticed on stdout", async () => {
  const webhook = await start({ stderrFile: "/dev/full" });
  assertFailedClosed(await askSecret(webhook, "web-full"));
  assertFailedClosed(await askSecret(webhook, "web-full-2"));
  assert.equal(await secretAnswers(webhook, "audit_failed"), 2);
  assert.equal(await secretAnswers(webhook, "served"), 0);
  const [notice] = notices(webhook);
  assert.ok(notice, webhook.stdout.join("\n"));
  assert.match(String(notice.error), /No space left on device/);
  assert.ok(!webhook.stdout.join("\n").includes(VALUE));
  // The rest of the webhook keeps working: only answers that need an audit line fail.
  assert.equal(await webhook.fetch("/healthz").then((r) => r.text().then(() => r.status)), 200);
});

test("/secret after the reader of its stderr pipe went away (EPIPE): 500 without the value", async () => {
  const webhook = await start();
  await webhook.closeStderr();
  assertFailedClosed(await askSecret(webhook, "web-gone"));
  assert.equal(await secretAnswers(webhook, "audit_failed"), 1);
  const [notice] = notices(webhook);
  assert.ok(notice, webhook.stdout.join("\n"));
  assert.match(String(notice.error), /pipe/i);
});
