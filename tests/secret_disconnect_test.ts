/**
 * `/secret` when the caller goes away: the real webhook process (its TLS front and `Deno.serve`)
 * aborts the request's work as soon as the client's connection closes, and writes its audit line
 * then, instead of going on until the AWS answer or PIGGY_SECRET_TIMEOUT. The webhook runs with
 * `--unstable-no-legacy-abort` (see `cli/permissions.ts`): a request's signal aborts only when the
 * request is cancelled, not after every successful answer.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Stack, startStack } from "../testing/stack.ts";
import { admitPod, launcherRequest, persistPod, secretReaderPod } from "../testing/flow.ts";

const NAMESPACE = "team-a";
let stack: Stack;

before(async () => {
  stack = await startStack({
    publishCa: false,
    env: {
      PIGGY_ALLOWED_ADDRESSES: "https://piggy-webhooks.piggy.svc.cluster.local",
      PIGGY_SECRET_TIMEOUT: "60s",
    },
  });
  stack.aws.putSecret("team-a/web", {
    string: JSON.stringify({ DB_PASSWORD: "value", PIGGY_ALLOWED_SA: "team-a:web" }),
  });
});

after(async () => {
  await stack?.stop();
});

/** The audit lines of the pod so far. */
function auditLines(podName: string): Record<string, unknown>[] {
  return stack.webhook.logs
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((record) =>
      String(record.message).startsWith("Request from ") && record.pod_name === podName
    );
}

test("/secret stops a request whose caller closed its connection, and audits it then", async () => {
  const { webhook, kube, aws } = stack;
  const admitted = await admitPod(
    webhook,
    secretReaderPod("https://piggy-webhooks.piggy.svc.cluster.local", "team-a/web", "web"),
    NAMESPACE,
  );
  const stored = persistPod(kube, admitted.pod, NAMESPACE, "web-gone");
  const { body, token } = launcherRequest(kube, stored);
  // AWS answers after 40 s (each SDK attempt gives up sooner): the request is still running when
  // the caller leaves.
  aws.delayNext("GetSecretValue", 40_000);
  const caller = new AbortController();
  const started = Date.now();
  const answer = webhook.fetch("/secret", {
    method: "POST",
    headers: { "content-type": "application/json", "x-token": token },
    body,
    signal: caller.signal,
  });
  // Once the request is in the webhook (the AWS read began), the caller goes away.
  while (!aws.requests.some((request) => request.action === "GetSecretValue")) {
    assert.ok(Date.now() - started < 20_000, "the webhook never asked AWS");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  caller.abort();
  await assert.rejects(answer);
  const gone = Date.now();
  while (auditLines("web-gone").length === 0) {
    assert.ok(Date.now() - gone < 30_000, "no audit line 30 s after the caller left");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const [audit] = auditLines("web-gone");
  assert.notEqual(audit?.status, 200);
  // Ended by the caller's leaving, not by an AWS failure or the deadline.
  assert.match(String(audit?.message), / was error: .*aborted/, JSON.stringify(audit));
  aws.clearInjections();
});
