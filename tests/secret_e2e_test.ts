/**
 * `/secret` end to end: the real webhook process admits a pod, the pod is persisted in the
 * Kubernetes API stand-in, and a launcher-shaped request is answered from the AWS stand-in through
 * the real AWS SDK and the real Kubernetes client.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { commandSignature } from "../src/pod/signature.ts";
import type { KubeApiStandIn } from "../testing/kube_api.ts";
import { type AwsStandIn, STAND_IN_ACCOUNT } from "../testing/aws.ts";
import type { WebhookProcess } from "../testing/webhook_process.ts";
import { type Stack, startStack } from "../testing/stack.ts";
import { admitPod, launcherRequest, persistPod } from "../testing/flow.ts";

const CANARY = `PIGGY-CANARY-${crypto.randomUUID()}`;
const NAMESPACE = "team-a";

let kube: KubeApiStandIn;
let aws: AwsStandIn;
let webhook: WebhookProcess;
let stack: Stack;

function appPod(
  annotations: Record<string, string>,
  refs = ["DB_PASSWORD", "PORT"],
  command = ["/app/server", "--port", "8080"],
): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "web-",
      annotations: {
        "piggysec.com/piggy-address": "https://piggy-webhooks.piggy.svc.cluster.local",
        ...annotations,
      },
    },
    spec: {
      serviceAccountName: "web",
      containers: [{
        name: "app",
        image: "registry.example.com/web:1.0",
        command,
        env: refs.map((key) => ({ name: key, value: `piggy:${key}` })),
      }],
    },
  };
}

/** Admits and persists a pod, then returns what its launcher would send and a bound token. */
async function launchablePod(
  annotations: Record<string, string>,
  refs?: string[],
  name = `web-${crypto.randomUUID().slice(0, 8)}`,
) {
  const admitted = await admitPod(webhook, appPod(annotations, refs), NAMESPACE);
  assert.equal(admitted.review.response.allowed, true, JSON.stringify(admitted.review.response));
  const stored = persistPod(kube, admitted.pod, NAMESPACE, name);
  return { ...launcherRequest(kube, stored), pod: stored };
}

async function requestSecret(
  body: Record<string, string>,
  token: string,
): Promise<{ status: number; body: Record<string, string> }> {
  const response = await webhook.fetch("/secret", {
    method: "POST",
    headers: { "content-type": "application/json", "x-token": token },
    body: JSON.stringify({ resources: "pods", ...body }),
  });
  return { status: response.status, body: await response.json() };
}

before(async () => {
  stack = await startStack({
    publishCa: false,
    env: {
      DEBUG: "true",
      PIGGY_ALLOWED_ADDRESSES: "https://piggy-webhooks.piggy.svc.cluster.local",
    },
  });
  ({ kube, aws, webhook } = stack);
  aws.putSecret("team-a/web", {
    string: JSON.stringify({
      DB_PASSWORD: CANARY,
      PORT: 5432,
      PIGGY_ALLOWED_SA: "team-a:web, team-b:api",
    }),
  });
});

after(async () => {
  await stack?.stop();
});

test("/secret returns the keys the container refers to, never reserved ones", async () => {
  const pod = await launchablePod({ "piggysec.com/aws-secret-name": "team-a/web" });
  const answer = await requestSecret(
    { name: pod.name, uid: pod.uid, signature: pod.signature },
    pod.token,
  );
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.deepEqual(answer.body, { DB_PASSWORD: CANARY, PORT: "5432" });
  const read = aws.requests.filter((request) => request.action === "GetSecretValue").at(-1);
  assert.equal(read?.secretId, "team-a/web");
  assert.equal(read?.versionStage, "AWSCURRENT");
  assert.equal(read?.region, "us-east-1");
});

test("/secret sends a VersionId-shaped aws-secret-version as VersionId and others as VersionStage", async () => {
  const pinned = aws.putSecret("team-a/web", {
    versionId: "6f8723a0-bd71-4a5a-9a5d-7f6f2e2bd3c1",
    stages: ["AWSPREVIOUS"],
    string: JSON.stringify({ DB_PASSWORD: "old", PIGGY_ALLOWED_SA: "team-a:web" }),
  });
  for (
    const [version, field] of [[pinned, "versionId"], ["AWSPREVIOUS", "versionStage"]] as const
  ) {
    const pod = await launchablePod({
      "piggysec.com/aws-secret-name": "team-a/web",
      "piggysec.com/aws-secret-version": version,
    });
    const answer = await requestSecret(
      { name: pod.name, uid: pod.uid, signature: pod.signature },
      pod.token,
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.DB_PASSWORD, "old");
    const read = aws.requests.filter((request) => request.action === "GetSecretValue").at(-1);
    assert.equal(read?.[field], version);
    assert.equal(read?.[field === "versionId" ? "versionStage" : "versionId"], undefined);
  }
});

test("/secret reads 25 SSM parameters over pages", async () => {
  for (let i = 0; i < 25; i++) {
    aws.putParameter(`/team-a/web/KEY_${i}`, `value-${i}`, "SecureString");
  }
  const before = aws.count("GetParametersByPath");
  const keys = Array.from({ length: 25 }, (_, i) => `KEY_${i}`);
  const pod = await launchablePod({ "piggysec.com/aws-ssm-parameter-path": "/team-a/web" }, keys);
  const answer = await requestSecret(
    { name: pod.name, uid: pod.uid, signature: pod.signature },
    pod.token,
  );
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.equal(Object.keys(answer.body).length, 25);
  assert.equal(answer.body.KEY_24, "value-24");
  assert.equal(aws.count("GetParametersByPath") - before, 3);
});

test("/secret refuses a changed command and an unknown uid with an empty signature", async () => {
  const pod = await launchablePod({ "piggysec.com/aws-secret-name": "team-a/web" });
  const tampered = await requestSecret(
    { name: pod.name, uid: pod.uid, signature: await commandSignature(["sh"]) },
    pod.token,
  );
  assert.equal(tampered.status, 403);
  const unknown = await requestSecret(
    { name: pod.name, uid: "0".repeat(32), signature: "" },
    pod.token,
  );
  assert.equal(unknown.status, 403);
});

test("/secret never reads a pod of another namespace for a valid token", async () => {
  const pod = await launchablePod({ "piggysec.com/aws-secret-name": "team-a/web" });
  // A legacy (unbound) token of team-b naming team-a's pod: the pod is looked up in team-b only.
  const foreign = kube.issueToken({ namespace: "team-b", serviceAccount: "web" });
  const before = aws.count("GetSecretValue");
  const seen = kube.requests.length;
  const answer = await requestSecret(
    { name: pod.name, uid: pod.uid, signature: pod.signature },
    foreign,
  );
  assert.equal(answer.status, 404);
  assert.equal(aws.count("GetSecretValue"), before);
  const paths = kube.requests.slice(seen).map((request) => request.path);
  assert.ok(paths.includes(`/api/v1/namespaces/team-b/pods/${pod.name}`), paths.join(", "));
  assert.ok(!paths.some((path) => path.includes("/namespaces/team-a/")), paths.join(", "));
});

test("/secret surfaces AWS throttling as 502 after the SDK's retries", async () => {
  // A secret of its own: "team-a/web" is in the webhook's secret cache by now.
  aws.putSecret("team-a/throttled", { string: JSON.stringify({ DB_PASSWORD: CANARY }) });
  const pod = await launchablePod({ "piggysec.com/aws-secret-name": "team-a/throttled" });
  const before = aws.count("GetSecretValue");
  aws.failNext("GetSecretValue", "ThrottlingException", 3);
  const answer = await requestSecret(
    { name: pod.name, uid: pod.uid, signature: pod.signature },
    pod.token,
  );
  assert.equal(answer.status, 502);
  assert.equal(answer.body.error, "AwsUnavailable");
  assert.equal(aws.count("GetSecretValue") - before, 3);
});

test("/secret answers 503 while the Kubernetes API is down, then recovers", async () => {
  const pod = await launchablePod({ "piggysec.com/aws-secret-name": "team-a/web" });
  await kube.stop();
  try {
    const down = await requestSecret(
      { name: pod.name, uid: pod.uid, signature: pod.signature },
      pod.token,
    );
    assert.equal(down.status, 503);
  } finally {
    await kube.restart();
  }
  const up = await requestSecret(
    { name: pod.name, uid: pod.uid, signature: pod.signature },
    pod.token,
  );
  assert.equal(up.status, 200);
});

test("/secret answers AWS AccessDenied without the webhook's role ARN or account id", async () => {
  // A secret no earlier test read: the secret cache holds nothing for it, so AWS is asked.
  aws.putSecret("team-a/denied", { string: JSON.stringify({ DB_PASSWORD: CANARY }) });
  const pod = await launchablePod({ "piggysec.com/aws-secret-name": "team-a/denied" });
  aws.failNext("GetSecretValue", "AccessDeniedException");
  const answer = await requestSecret(
    { name: pod.name, uid: pod.uid, signature: pod.signature },
    pod.token,
  );
  assert.equal(answer.status, 502);
  assert.equal(answer.body.error, "AwsAccessDenied");
  const text = JSON.stringify(answer.body);
  assert.ok(!text.includes("arn:") && !text.includes(STAND_IN_ACCOUNT), text);
  assert.ok(
    webhook.logs.some((line) =>
      line.includes("AccessDeniedException") && line.includes("arn:aws:sts")
    ),
    "the full reason is in the webhook's log",
  );
});

test("the audit line of a bound token replayed for another pod names namespace and SA", async () => {
  const pod = await launchablePod({ "piggysec.com/aws-secret-name": "team-a/web" });
  const other = await launchablePod({ "piggysec.com/aws-secret-name": "team-a/web" });
  const answer = await requestSecret(
    { name: other.name, uid: other.uid, signature: other.signature },
    pod.token,
  );
  assert.equal(answer.status, 403);
  const audit = webhook.logs.filter((line) => line.includes(`[pod=${other.name}]`)).at(-1) ?? "";
  assert.match(audit, /\[sa=team-a:web\]/);
  assert.match(audit, /"namespace":"team-a"/);
});

test("/secret refuses a service account missing from PIGGY_ALLOWED_SA", async () => {
  aws.putSecret("team-a/locked", {
    string: JSON.stringify({ DB_PASSWORD: CANARY, PIGGY_ALLOWED_SA: "team-a:other" }),
  });
  const pod = await launchablePod({ "piggysec.com/aws-secret-name": "team-a/locked" });
  const answer = await requestSecret(
    { name: pod.name, uid: pod.uid, signature: pod.signature },
    pod.token,
  );
  assert.equal(answer.status, 403);
  assert.ok(!JSON.stringify(answer.body).includes(CANARY));
});

test("/secret sees a deleted pod within PIGGY_POD_CACHE_TTL (2 s) and a replaced one at once", async () => {
  const annotations = { "piggysec.com/aws-secret-name": "team-a/web" };
  const first = await launchablePod(annotations);
  const body = { name: first.name, uid: first.uid, signature: first.signature };
  assert.equal((await requestSecret(body, first.token)).status, 200);
  // Replaced under the same name (a StatefulSet pod): the new pod's token is served at once.
  const second = await launchablePod(annotations, undefined, first.name);
  assert.notEqual(second.pod.metadata?.uid, first.pod.metadata?.uid);
  const fresh = await requestSecret(
    { name: second.name, uid: second.uid, signature: second.signature },
    second.token,
  );
  assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
  // Deleted: refused once the pod read is older than the TTL (the documented bound).
  kube.delete("pods", NAMESPACE, second.name);
  await new Promise((resolve) => setTimeout(resolve, 2_100));
  const gone = await requestSecret(
    { name: second.name, uid: second.uid, signature: second.signature },
    second.token,
  );
  assert.notEqual(gone.status, 200, JSON.stringify(gone.body));
  assert.ok(!JSON.stringify(gone.body).includes(CANARY));
});

test("/secret refuses a pod edited after admission within PIGGY_POD_CACHE_TTL (2 s)", async () => {
  const caller = await launchablePod({ "piggysec.com/aws-secret-name": "team-a/web" });
  const body = { name: caller.name, uid: caller.uid, signature: caller.signature };
  assert.equal((await requestSecret(body, caller.token)).status, 200);
  // Same pod (same UID), a sealed annotation changed: the seal is checked on the cached read too,
  // and the read is at most the TTL old.
  const edited = structuredClone(caller.pod);
  edited.metadata!.annotations = {
    ...edited.metadata!.annotations,
    "piggysec.com/aws-secret-name": "team-b/api",
  };
  kube.put("pods", edited as never);
  await new Promise((resolve) => setTimeout(resolve, 2_100));
  const refused = await requestSecret(body, caller.token);
  assert.equal(refused.status, 403, JSON.stringify(refused.body));
  assert.match(refused.body.message ?? "", /admission seal/);
  assert.ok(!JSON.stringify(refused.body).includes(CANARY));
});

test("the canary secret value never reaches the webhook's logs, even at debug level", () => {
  assert.ok(webhook.logs.length > 10, "the webhook logged its requests");
  assert.ok(webhook.logs.some((line) => line.includes('"level":"debug"')), "debug logging was on");
  for (const line of [...webhook.logs, ...webhook.stdout]) {
    assert.ok(!line.includes(CANARY), `canary leaked: ${line.slice(0, 200)}`);
  }
  const audits = webhook.logs.filter((line) => line.includes("Request from [sa="));
  assert.ok(audits.length >= 8, "one audit line per /secret request");
});

test("/secret answers only the keys the calling container refers to", async () => {
  const pod = await launchablePod({ "piggysec.com/aws-secret-name": "team-a/web" }, ["PORT"]);
  const answer = await requestSecret(
    { name: pod.name, uid: pod.uid, signature: pod.signature },
    pod.token,
  );
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.deepEqual(
    answer.body,
    { PORT: "5432" },
    "DB_PASSWORD is not referenced by this container",
  );
});
