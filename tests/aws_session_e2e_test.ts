/**
 * PIGGY_AWS_SESSION_ROLE_ARN end to end: the real webhook process reads AWS through
 * `sts:AssumeRole` sessions tagged with the calling pod's namespace and service account. The AWS
 * stand-in checks the AssumeRole signature (the webhook's own key), records the role, session
 * name, duration and tags it receives, and ties every Secrets Manager read to the session whose
 * credentials signed it, so these tests see which identity read which secret.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { commandSignature } from "../src/pod/signature.ts";
import { type AwsRequestRecord, STAND_IN_ACCOUNT, STATIC_CREDENTIALS } from "../testing/aws.ts";
import { type Stack, startStack } from "../testing/stack.ts";
import { admitPod, launcherIdentity, launcherToken, persistPod } from "../testing/flow.ts";
import { startWebhook } from "../testing/webhook_process.ts";

const ROLE = `arn:aws:iam::${STAND_IN_ACCOUNT}:role/piggy-reader`;
const ADDRESS = "https://piggy-webhooks.piggy.svc.cluster.local";
const CANARY = `PIGGY-CANARY-${crypto.randomUUID()}`;

function appPod(secret: string, serviceAccount: string): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "app-",
      annotations: {
        "piggysec.com/piggy-address": ADDRESS,
        "piggysec.com/aws-secret-name": secret,
      },
    },
    spec: {
      serviceAccountName: serviceAccount,
      containers: [{
        name: "app",
        image: "registry.example.com/app:1.0",
        command: ["/app/server"],
        env: [{ name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" }],
      }],
    },
  };
}

/** Admits and persists a pod in `namespace`, then calls /secret as its launcher would. */
async function readAs(
  stack: Stack,
  namespace: string,
  serviceAccount: string,
  secret: string,
): Promise<{ status: number; body: Record<string, string> }> {
  const admitted = await admitPod(stack.webhook, appPod(secret, serviceAccount), namespace);
  assert.equal(admitted.review.response.allowed, true, JSON.stringify(admitted.review.response));
  const name = `app-${crypto.randomUUID().slice(0, 8)}`;
  const stored = persistPod(stack.kube, admitted.pod, namespace, name);
  const { uid, command } = launcherIdentity(stored.spec!.containers[0]!);
  const token = launcherToken(stack.kube, stored);
  const response = await stack.webhook.fetch("/secret", {
    method: "POST",
    headers: { "content-type": "application/json", "x-token": token },
    body: JSON.stringify({
      resources: "pods",
      name,
      uid,
      signature: await commandSignature(command),
    }),
  });
  return { status: response.status, body: await response.json() };
}

function calls(stack: Stack, action: string): AwsRequestRecord[] {
  return stack.aws.requests.filter((r) => r.action === action && r.status === 200);
}

function putShared(stack: Stack): void {
  stack.aws.putSecret("team-c/worker", {
    string: JSON.stringify({ DB_PASSWORD: `${CANARY}-c`, PIGGY_ALLOWED_SA: "team-c:worker" }),
  });
  for (const name of ["team-a/web", "team-b/api", "shared/app"]) {
    stack.aws.putSecret(name, {
      string: JSON.stringify({
        DB_PASSWORD: `${CANARY}-${name}`,
        PIGGY_ALLOWED_SA: "team-a:web, team-b:api",
      }),
    });
  }
}

let stack: Stack;

before(async () => {
  stack = await startStack({
    env: {
      PIGGY_AWS_SESSION_ROLE_ARN: ROLE,
      PIGGY_AWS_SESSION_DURATION: "20m",
      PIGGY_ALLOWED_ADDRESSES: ADDRESS,
    },
  });
  stack.aws.allowAssumeRole(ROLE);
  putShared(stack);
});

after(async () => {
  await stack?.stop();
});

test("two namespaces read through two AssumeRole sessions tagged with their identity", async () => {
  stack.aws.resetCounters();
  const a = await readAs(stack, "team-a", "web", "team-a/web");
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.deepEqual(a.body, { DB_PASSWORD: `${CANARY}-team-a/web` });
  const b = await readAs(stack, "team-b", "api", "team-b/api");
  assert.equal(b.status, 200, JSON.stringify(b.body));

  const sessions = calls(stack, "AssumeRole");
  assert.equal(sessions.length, 2);
  for (
    const [session, namespace, serviceAccount] of [
      [sessions[0], "team-a", "web"],
      [sessions[1], "team-b", "api"],
    ] as const
  ) {
    // Signed with the webhook's own credentials; the tags are the authenticated pod's.
    assert.equal(session?.accessKeyId, STATIC_CREDENTIALS.accessKeyId);
    assert.equal(session?.roleArn, ROLE);
    assert.equal(session?.roleSessionName, `${namespace}@${serviceAccount}`);
    assert.equal(session?.durationSeconds, 1200);
    assert.deepEqual(session?.tags, {
      "kubernetes-namespace": namespace,
      "kubernetes-service-account": serviceAccount,
    });
    assert.deepEqual(session?.transitiveTagKeys, []);
  }
  const reads = calls(stack, "GetSecretValue");
  assert.deepEqual(
    reads.map((r) => [r.secretId, r.session?.tags["kubernetes-namespace"], r.session?.roleArn]),
    [["team-a/web", "team-a", ROLE], ["team-b/api", "team-b", ROLE]],
  );
  // The webhook's own key never reads a secret in this mode.
  assert.ok(reads.every((r) => r.accessKeyId !== STATIC_CREDENTIALS.accessKeyId));
});

test("the secret cache keeps identities apart and a session is reused", async () => {
  stack.aws.resetCounters();
  // team-a:web's session may already exist (previous test): count what this test adds.
  const first = await readAs(stack, "team-a", "web", "shared/app");
  const second = await readAs(stack, "team-b", "api", "shared/app");
  const again = await readAs(stack, "team-a", "web", "shared/app");
  for (const answer of [first, second, again]) {
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body, { DB_PASSWORD: `${CANARY}-shared/app` });
  }
  const reads = calls(stack, "GetSecretValue");
  // Within the 30 s cache, team-b is not served team-a's cached read: it reads with its own
  // session; team-a's second read is the cached one.
  assert.deepEqual(
    reads.map((r) => r.session?.tags["kubernetes-service-account"]),
    ["web", "api"],
  );
  assert.equal(calls(stack, "AssumeRole").length, 0, "sessions of the first test are reused");
});

test("an AssumeRole refusal answers a short code without ARN or account; the log has the reason", async () => {
  stack.aws.resetCounters();
  stack.aws.failNext("AssumeRole", "AccessDenied");
  const refused = await readAs(stack, "team-c", "worker", "team-c/worker");
  assert.equal(refused.status, 502);
  assert.equal(refused.body.error, "AwsSessionUnavailable");
  const text = JSON.stringify(refused.body);
  assert.ok(!text.includes("arn:"), text);
  assert.ok(!text.includes(STAND_IN_ACCOUNT), text);
  assert.ok(!text.includes("piggy-reader"), text);
  const logged = stack.webhook.logs.find((line) =>
    line.includes("AssumeRole of") && line.includes("failed")
  );
  assert.ok(logged?.includes(ROLE), logged);
  assert.ok(logged?.includes("AccessDenied"), logged);
  assert.ok(logged?.includes("team-c:worker"), logged);
  // The failure is not kept: the next request starts the session.
  const next = await readAs(stack, "team-c", "worker", "team-c/worker");
  assert.equal(next.status, 200, JSON.stringify(next.body));
  assert.deepEqual(next.body, { DB_PASSWORD: `${CANARY}-c` });
  assert.equal(calls(stack, "AssumeRole").length, 1);
});

test("a session is renewed a minute before its credentials expire", async () => {
  const short = await startStack({
    env: {
      PIGGY_AWS_SESSION_ROLE_ARN: ROLE,
      PIGGY_SECRET_CACHE_TTL: "0",
      PIGGY_ALLOWED_ADDRESSES: ADDRESS,
    },
  });
  try {
    short.aws.allowAssumeRole(ROLE);
    putShared(short);
    // Credentials valid for 72 s (the stand-in drops the milliseconds): kept for 11 to 12 s,
    // then renewed.
    short.aws.setSessionLifetime(72_000);
    const started = Date.now();
    assert.equal((await readAs(short, "team-a", "web", "team-a/web")).status, 200);
    assert.equal((await readAs(short, "team-a", "web", "team-a/web")).status, 200);
    const elapsed = Date.now() - started;
    // On a machine too loaded to make two reads within 9 s, the reuse cannot be observed.
    if (elapsed < 9_000) {
      assert.equal(calls(short, "AssumeRole").length, 1, `reused within ${elapsed} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 13_000 - elapsed)));
    assert.equal((await readAs(short, "team-a", "web", "team-a/web")).status, 200);
    const sessions = calls(short, "AssumeRole");
    assert.ok(sessions.length >= 2, `${sessions.length} AssumeRole calls`);
    const reads = calls(short, "GetSecretValue");
    assert.ok(reads.length >= 3, `${reads.length} reads`);
    // The last read is signed with the renewed session's key, not the first one's.
    assert.notEqual(reads.at(-1)?.accessKeyId, reads[0]?.accessKeyId);
    assert.equal(reads.at(-1)?.accessKeyId, sessions.at(-1)?.issuedAccessKeyId);
  } finally {
    await short.stop();
  }
});

test("the webhook does not start with a session role that is not an IAM role ARN", async () => {
  for (
    const bad of [
      "piggy-reader",
      `arn:aws:iam::${STAND_IN_ACCOUNT}:user/piggy`,
      `arn:aws:sts::${STAND_IN_ACCOUNT}:assumed-role/piggy/x`,
    ]
  ) {
    await assert.rejects(
      startWebhook({
        env: { KUBECONFIG: stack.kube.kubeconfigPath, PIGGY_AWS_SESSION_ROLE_ARN: bad },
      }),
      /Cannot use PIGGY_AWS_SESSION_ROLE_ARN=.*not an IAM role ARN/,
    );
  }
  await assert.rejects(
    startWebhook({
      env: {
        KUBECONFIG: stack.kube.kubeconfigPath,
        PIGGY_AWS_SESSION_ROLE_ARN: ROLE,
        PIGGY_AWS_SESSION_DURATION: "10m",
      },
    }),
    /Cannot use PIGGY_AWS_SESSION_DURATION=.*10m.*outside 15m\.\.12h/,
  );
});
