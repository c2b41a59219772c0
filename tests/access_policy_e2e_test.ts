/**
 * The secret access policy through the real webhook process, the Kubernetes API stand-in and the
 * AWS stand-in (real AWS SDK): each `PIGGY_SECRET_ACCESS_POLICY` × a secret in the pod's own
 * namespace, in another one, in another one that lists the pod in `PIGGY_ALLOWED_SA`, and SSM
 * paths, at admission (`/mutate`) and at `/secret`.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { commandSignature } from "../src/pod/signature.ts";
import { type KubeApiStandIn, startKubeApi } from "../testing/kube_api.ts";
import { type AwsStandIn, STAND_IN_ACCOUNT, startAwsStandIn } from "../testing/aws.ts";
import { startWebhook, type WebhookProcess } from "../testing/webhook_process.ts";
import { admitPod, launcherIdentity, launcherToken, persistPod } from "../testing/flow.ts";

const CANARY = `PIGGY-CANARY-${crypto.randomUUID()}`;
const NAMESPACE = "team-a";
const POLICIES = ["namespace", "allowed-sa", "any"] as const;
type Policy = (typeof POLICIES)[number];

let kube: KubeApiStandIn;
let aws: AwsStandIn;
const webhooks = new Map<Policy, WebhookProcess>();

function appPod(annotations: Record<string, string>): Pod {
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
        command: ["/app/server"],
        env: [{ name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" }],
      }],
    },
  };
}

/** Admits the pod through `webhook`, persists it and asks `/secret` as its launcher would. */
async function admitAndRead(webhook: WebhookProcess, annotations: Record<string, string>) {
  const admitted = await admitPod(webhook, appPod(annotations), NAMESPACE);
  const { response } = admitted.review;
  if (!response.allowed) return { admission: response, secret: undefined };
  const name = `web-${crypto.randomUUID().slice(0, 8)}`;
  const stored = persistPod(kube, admitted.pod, NAMESPACE, name);
  const { uid, command } = launcherIdentity(stored.spec!.containers[0]!);
  const token = launcherToken(kube, stored);
  const answer = await webhook.fetch("/secret", {
    method: "POST",
    headers: { "content-type": "application/json", "x-token": token },
    body: JSON.stringify({ name, uid, signature: await commandSignature(command) }),
  });
  const body = await answer.json() as Record<string, string>;
  return { admission: response, secret: { status: answer.status, body } };
}

before(async () => {
  kube = await startKubeApi();
  aws = await startAwsStandIn();
  aws.putSecret("team-a/own", { string: JSON.stringify({ DB_PASSWORD: CANARY }) });
  aws.putSecret("team-b/other", { string: JSON.stringify({ DB_PASSWORD: CANARY }) });
  aws.putSecret("team-b/shared", {
    string: JSON.stringify({ DB_PASSWORD: CANARY, PIGGY_ALLOWED_SA: "team-b:api, team-a:web" }),
  });
  aws.putParameter("/team-a/web/DB_PASSWORD", CANARY, "SecureString");
  aws.putParameter("/team-b/web/DB_PASSWORD", CANARY, "SecureString");
  const started = await Promise.all(POLICIES.map((policy) =>
    startWebhook({
      env: {
        KUBECONFIG: kube.kubeconfigPath,
        PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:test",
        PIGGY_SECRET_ACCESS_POLICY: policy,
        PIGGY_ALLOWED_ADDRESSES: "https://piggy-webhooks.piggy.svc.cluster.local",
        ...aws.env({ credentials: "static", region: "us-east-1" }),
      },
    })
  ));
  POLICIES.forEach((policy, index) => webhooks.set(policy, started[index]!));
});

after(async () => {
  await Promise.all([...webhooks.values()].map((webhook) => webhook.stop()));
  await aws?.close();
  await kube?.close();
});

const NAME = "piggysec.com/aws-secret-name";
const SSM = "piggysec.com/aws-ssm-parameter-path";

/** [annotations, label, which policies serve it, whether admission warns under each policy]. */
const MATRIX: Array<[Record<string, string>, string, Policy[], Policy[]]> = [
  [{ [NAME]: "team-a/own" }, "own namespace", ["namespace", "any"], ["allowed-sa"]],
  [{ [NAME]: "team-b/other" }, "other namespace", ["any"], ["namespace", "allowed-sa"]],
  [
    { [NAME]: "team-b/shared" },
    "other namespace, listed in PIGGY_ALLOWED_SA",
    ["namespace", "allowed-sa", "any"],
    ["namespace", "allowed-sa"],
  ],
  [{ [SSM]: "/team-a/web" }, "SSM path in own namespace", ["namespace", "any"], ["allowed-sa"]],
  [{ [SSM]: "/team-b/web" }, "SSM path in other namespace", ["any"], ["namespace", "allowed-sa"]],
];

for (const [annotations, label, served, warned] of MATRIX) {
  test(`policy matrix: ${label}`, async () => {
    for (const policy of POLICIES) {
      const { admission, secret } = await admitAndRead(webhooks.get(policy)!, annotations);
      const where = `${policy}: ${JSON.stringify(admission)}`;
      assert.equal(admission.allowed, true, where);
      const warning = (admission.warnings ?? []).find((text) => text.includes("PIGGY_ALLOWED_SA"));
      assert.equal(warning !== undefined, warned.includes(policy), where);
      if (warning) assert.match(warning, new RegExp(`PIGGY_SECRET_ACCESS_POLICY=${policy}`));
      if (served.includes(policy)) {
        assert.equal(secret?.status, 200, `${where} ${JSON.stringify(secret)}`);
        assert.deepEqual(secret?.body, { DB_PASSWORD: CANARY });
      } else {
        assert.equal(secret?.status, 403, where);
        assert.match(secret!.body.message!, new RegExp(`PIGGY_SECRET_ACCESS_POLICY=${policy}`));
        assert.ok(!JSON.stringify(secret?.body).includes(CANARY));
      }
    }
  });
}

test("admission denies, naming the policy, a partial ARN and an SSM path that climbs out", async () => {
  const webhook = webhooks.get("namespace")!;
  for (
    const annotations of [
      { [NAME]: `arn:aws:secretsmanager:us-east-1:${STAND_IN_ACCOUNT}:secret:team-a/own` },
      { [NAME]: `arn:aws:ssm:us-east-1:${STAND_IN_ACCOUNT}:parameter/team-a/own` },
      { [SSM]: "/team-a/../team-b/web" },
      { [SSM]: "/team-a//web" },
    ]
  ) {
    const { admission } = await admitAndRead(webhook, annotations);
    assert.equal(admission.allowed, false, JSON.stringify(annotations));
    assert.match(admission.status?.message ?? "", /PIGGY_SECRET_ACCESS_POLICY=namespace/);
  }
});

test("a full secret ARN is placed by its name", async () => {
  const { admission, secret } = await admitAndRead(webhooks.get("namespace")!, {
    [NAME]: `arn:aws:secretsmanager:us-east-1:${STAND_IN_ACCOUNT}:secret:team-b/other-AbC123`,
  });
  assert.equal(admission.allowed, true);
  assert.ok(admission.warnings?.some((text) => text.includes('"team-b/other"')));
  assert.equal(secret?.status, 403);
});

test("a pod's default-name prefix annotation cannot leave its namespace", async () => {
  aws.putSecret("team-b/team-a/web", { string: JSON.stringify({ DB_PASSWORD: CANARY }) });
  const webhook = webhooks.get("namespace")!;
  const { admission, secret } = await admitAndRead(webhook, {
    "piggysec.com/piggy-default-secret-name-prefix": "team-b/",
  });
  assert.equal(admission.allowed, true);
  assert.ok(admission.warnings?.some((text) => text.includes('"team-b/team-a/web"')));
  assert.equal(secret?.status, 403);
  assert.ok(!JSON.stringify(secret?.body).includes(CANARY));
});

test("not found and not allowed look the same to a caller the secret must list", async () => {
  const webhook = webhooks.get("namespace")!;
  const exists = await admitAndRead(webhook, { [NAME]: "team-b/other" });
  const missing = await admitAndRead(webhook, { [NAME]: "team-b/nothere" });
  assert.equal(exists.secret?.status, 403);
  assert.equal(missing.secret?.status, 403);
  assert.equal(
    JSON.stringify(exists.secret?.body).replace("team-b/other", "X"),
    JSON.stringify(missing.secret?.body).replace("team-b/nothere", "X"),
  );
  assert.ok(
    webhook.logs.some((line) => line.includes("ResourceNotFoundException")),
    "the real reason is in the webhook's log",
  );
});

test("PIGGY_SECRET_ACCESS_POLICY=any warns at start-up; a bad value stops the webhook", async () => {
  assert.ok(
    webhooks.get("any")!.logs.some((line) =>
      line.includes('"level":"warn"') && line.includes("PIGGY_SECRET_ACCESS_POLICY=any")
    ),
  );
  assert.ok(
    !webhooks.get("namespace")!.logs.some((line) =>
      line.includes("PIGGY_SECRET_ACCESS_POLICY=any")
    ),
  );
  await assert.rejects(
    startWebhook({
      env: { KUBECONFIG: kube.kubeconfigPath, PIGGY_SECRET_ACCESS_POLICY: "everyone" },
    }),
    /PIGGY_SECRET_ACCESS_POLICY=\\?"everyone\\?": not one of namespace, allowed-sa, any/,
  );
});

test("admission denies a piggy-address outside PIGGY_ALLOWED_ADDRESSES, compared as parsed URLs", async () => {
  const webhook = webhooks.get("namespace")!;
  const secret = { [NAME]: "team-a/own" };
  const cases: Array<[string, boolean]> = [
    ["https://piggy-webhooks.piggy.svc.cluster.local", true],
    ["HTTPS://Piggy-Webhooks.piggy.svc.cluster.local:443/", true],
    ["https://attacker.example.com", false],
    ["https://piggy-webhooks.piggy.svc.cluster.local:8443", false],
    ["https://piggy-webhooks.piggy.svc.cluster.local/other", false],
    ["http://piggy-webhooks.piggy.svc.cluster.local", false],
    ["https://user:pw@piggy-webhooks.piggy.svc.cluster.local", false],
    ["https://piggy-webhooks.piggy.svc.cluster.local?x=1", false],
    ["https://piggy-webhooks.piggy.svc.cluster.local.attacker.example.com", false],
  ];
  for (const [address, allowed] of cases) {
    const { admission, secret: answer } = await admitAndRead(webhook, {
      ...secret,
      "piggysec.com/piggy-address": address,
    });
    assert.equal(admission.allowed, allowed, `${address}: ${JSON.stringify(admission)}`);
    if (allowed) assert.equal(answer?.status, 200);
    else assert.match(admission.status?.message ?? "", /PIGGY_ALLOWED_ADDRESSES/);
  }
});

test("without PIGGY_ALLOWED_ADDRESSES every proxy-mode pod is denied, standalone pods are not", async () => {
  const bare = await startWebhook({
    env: {
      KUBECONFIG: kube.kubeconfigPath,
      PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:test",
    },
  });
  try {
    const proxy = await admitPod(bare, appPod({ [NAME]: "team-a/own" }), NAMESPACE);
    assert.equal(proxy.review.response.allowed, false);
    assert.match(
      proxy.review.response.status?.message ?? "",
      /PIGGY_ALLOWED_ADDRESSES is not set on the webhook/,
    );
    const standalone = await admitPod(
      bare,
      appPod({ [NAME]: "team-b/other", "piggysec.com/standalone": "true" }),
      NAMESPACE,
    );
    assert.equal(standalone.review.response.allowed, true);
    assert.ok(standalone.review.response.patch, "the standalone pod is mutated");
  } finally {
    await bare.stop();
  }
});
