/**
 * The admission seal end to end: the real webhook process admits and seals a pod, the pod is
 * persisted in the Kubernetes API stand-in, then edited there as a user with `update pods` could
 * (annotations, the uid map, a container image, what admission added): `/secret` refuses each
 * edited pod and still serves the unedited one. Key rotation across two webhook processes, and pods
 * without a seal before and after the legacy cutoff.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { PIGGY_SEAL_ANNOTATION, PIGGY_UID_ANNOTATION } from "../src/constants.ts";
import { commandSignature } from "../src/pod/signature.ts";
import { type KubeApiStandIn, startKubeApi } from "../testing/kube_api.ts";
import { type AwsStandIn, startAwsStandIn } from "../testing/aws.ts";
import { startWebhook, type WebhookProcess } from "../testing/webhook_process.ts";
import { admitPod, launcherIdentity, launcherToken, persistPod } from "../testing/flow.ts";

const NAMESPACE = "team-a";
const SECRET = "team-a/web";
const ADDRESS = "https://piggy-webhooks.piggy.svc.cluster.local";
/** Unsealed pods created before this are legacy pods. */
const CUTOFF = new Date(Date.now() - 24 * 3600_000).toISOString().replace(/\.\d{3}Z$/, "Z");

let dir: string;
let keyA: string;
let keyB: string;
let kube: KubeApiStandIn;
let aws: AwsStandIn;
/** Seals with key A only. */
let webhook: WebhookProcess;
/** Seals with key B and still accepts key A (rotation). */
let rotated: WebhookProcess;

function appPod(annotations: Record<string, string> = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "web-",
      annotations: {
        "piggysec.com/piggy-address": ADDRESS,
        "piggysec.com/aws-secret-name": SECRET,
        "piggysec.com/aws-region": "us-east-1",
        ...annotations,
      },
    },
    spec: {
      serviceAccountName: "web",
      containers: [{
        name: "app",
        image: "registry.example.com/web:1.0",
        command: ["/app/server", "--port", "8080"],
        env: [{ name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" }],
      }],
    },
  };
}

interface Launchable {
  name: string;
  uid: string;
  signature: string;
  token: string;
  pod: Pod;
}

/** Admits (through `admitter`) and persists a pod, with what its launcher would send. */
async function launchablePod(
  admitter: WebhookProcess = webhook,
  annotations: Record<string, string> = {},
): Promise<Launchable> {
  const admitted = await admitPod(admitter, appPod(annotations), NAMESPACE);
  assert.equal(admitted.review.response.allowed, true, JSON.stringify(admitted.review.response));
  const name = `web-${crypto.randomUUID().slice(0, 8)}`;
  const stored = persistPod(kube, admitted.pod, NAMESPACE, name);
  const { uid, command } = launcherIdentity(stored.spec!.containers[0]!);
  const token = launcherToken(kube, stored);
  return { name, uid, signature: commandSignature(command), token, pod: stored };
}

async function requestSecret(
  target: WebhookProcess,
  pod: Launchable,
  signature = pod.signature,
): Promise<{ status: number; body: Record<string, string> }> {
  const response = await target.fetch("/secret", {
    method: "POST",
    headers: { "content-type": "application/json", "x-token": pod.token },
    body: JSON.stringify({ resources: "pods", name: pod.name, uid: pod.uid, signature }),
  });
  return { status: response.status, body: await response.json() };
}

/** Replaces the stored pod (same name and uid) with an edited copy, as `kubectl edit` would. */
function editPod(pod: Launchable, edit: (pod: Pod) => void): void {
  const edited = structuredClone(pod.pod);
  edit(edited);
  kube.put("pods", edited as never);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "piggy-seal-"));
  keyA = join(dir, "key-a");
  keyB = join(dir, "key-b");
  writeFileSync(keyA, `${"a".repeat(40)}\n`);
  writeFileSync(keyB, "b".repeat(64));
  kube = await startKubeApi();
  aws = await startAwsStandIn();
  aws.putSecret(SECRET, {
    string: JSON.stringify({ DB_PASSWORD: "s3cret", PIGGY_ALLOWED_SA: "team-a:web" }),
  });
  aws.putSecret("team-b/web", {
    string: JSON.stringify({ DB_PASSWORD: "other-team", PIGGY_ALLOWED_SA: "team-a:web" }),
  });
  const env = {
    KUBECONFIG: kube.kubeconfigPath,
    PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:test",
    PIGGY_LEGACY_PODS_CREATED_BEFORE: CUTOFF,
    PIGGY_ALLOWED_ADDRESSES: ADDRESS,
    // Every edit is judged at once: without the pod read cache (its bound, an edited pod refused
    // within PIGGY_POD_CACHE_TTL, is tested in secret_e2e_test.ts).
    PIGGY_POD_CACHE_TTL: "0s",
    ...aws.env({ credentials: "static", region: "us-east-1" }),
  };
  // A second file that does not exist is an empty rotation slot.
  webhook = await startWebhook({
    env: { ...env, PIGGY_SEAL_KEY_FILES: `${keyA},${join(dir, "absent")}` },
  });
  rotated = await startWebhook({ env: { ...env, PIGGY_SEAL_KEY_FILES: `${keyB},${keyA}` } });
});

after(async () => {
  await webhook?.stop();
  await rotated?.stop();
  await aws?.close();
  await kube?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("/mutate seals the pod; /secret serves the unedited pod", async () => {
  const pod = await launchablePod();
  assert.match(pod.pod.metadata?.annotations?.[PIGGY_SEAL_ANNOTATION] ?? "", /^v1\.[\w-]{43}$/);
  const answer = await requestSecret(webhook, pod);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.deepEqual(answer.body, { DB_PASSWORD: "s3cret" });
});

const EDITS: Array<[string, (pod: Pod, signature: string) => void]> = [
  ["aws-secret-name pointed at another secret", (pod) => {
    pod.metadata!.annotations!["piggysec.com/aws-secret-name"] = "team-b/web";
  }],
  ["aws-region changed", (pod) => {
    pod.metadata!.annotations!["piggysec.com/aws-region"] = "eu-west-1";
  }],
  ["piggy-address changed", (pod) => {
    pod.metadata!.annotations!["piggysec.com/piggy-address"] = "https://elsewhere.example.com";
  }],
  ["piggy-enforce-integrity added as false", (pod) => {
    pod.metadata!.annotations!["piggysec.com/piggy-enforce-integrity"] = "false";
  }],
  ["aws-ssm-parameter-path added", (pod) => {
    pod.metadata!.annotations!["piggysec.com/aws-ssm-parameter-path"] = "/team-b";
  }],
  ["aws-secret-name removed", (pod) => {
    delete pod.metadata!.annotations!["piggysec.com/aws-secret-name"];
  }],
  ["the uid map rewritten to the signature of sh -c env", (pod, signature) => {
    const uids = JSON.parse(pod.metadata!.annotations![PIGGY_UID_ANNOTATION]!);
    for (const uid of Object.keys(uids)) uids[uid] = signature;
    pod.metadata!.annotations![PIGGY_UID_ANNOTATION] = JSON.stringify(uids);
  }],
  ["the container image swapped", (pod) => {
    pod.spec!.containers[0]!.image = "registry.example.com/web:evil";
  }],
  ["the seal removed", (pod) => {
    delete pod.metadata!.annotations![PIGGY_SEAL_ANNOTATION];
  }],
  ["the uid map removed", (pod) => {
    delete pod.metadata!.annotations![PIGGY_UID_ANNOTATION];
  }],
];

for (const [what, edit] of EDITS) {
  test(`/secret refuses a running pod after ${what}`, async () => {
    const pod = await launchablePod();
    assert.equal((await requestSecret(webhook, pod)).status, 200);
    const evil = commandSignature(["sh", "-c", "env"]);
    editPod(pod, (stored) => edit(stored, evil));
    const usesEvil = what.includes("sh -c env");
    const before = webhook.logs.length;
    const answer = await requestSecret(webhook, pod, usesEvil ? evil : pod.signature);
    assert.equal(answer.status, 403, JSON.stringify(answer.body));
    assert.equal(answer.body.DB_PASSWORD, undefined);
    const audit = webhook.logs.slice(before).find((line) => line.includes("Request from"));
    assert.match(audit ?? "", /"status":403/);
    assert.match(audit ?? "", /admission seal/);
    // Put back as admitted, the same pod and token are served again.
    kube.put("pods", pod.pod as never);
    assert.equal((await requestSecret(webhook, pod)).status, 200);
  });
}

test("key rotation: a pod sealed with the old key is served by a webhook that signs with the new one", async () => {
  const old = await launchablePod(webhook);
  const renewed = await launchablePod(rotated);
  assert.notEqual(
    old.pod.metadata?.annotations?.[PIGGY_SEAL_ANNOTATION],
    renewed.pod.metadata?.annotations?.[PIGGY_SEAL_ANNOTATION],
  );
  assert.equal((await requestSecret(rotated, old)).status, 200);
  assert.equal((await requestSecret(rotated, renewed)).status, 200);
  // A webhook that does not hold the new key refuses what it sealed.
  const refused = await requestSecret(webhook, renewed);
  assert.equal(refused.status, 403);
  assert.match(refused.body.message ?? "", /does not match its admission seal/);
});

test("an unsealed pod is served before the legacy cutoff and refused after it", async () => {
  const admitted = await launchablePod();
  const unsealed = (created: string) => {
    const pod = structuredClone(admitted.pod);
    delete pod.metadata!.annotations![PIGGY_SEAL_ANNOTATION];
    (pod.metadata as Record<string, unknown>).creationTimestamp = created;
    kube.put("pods", pod as never);
  };
  const before = new Date(Date.parse(CUTOFF) - 3600_000).toISOString();
  unsealed(before);
  const logs = webhook.logs.length;
  const served = await requestSecret(webhook, admitted);
  assert.equal(served.status, 200, JSON.stringify(served.body));
  const warnings = webhook.logs.slice(logs).filter((line) =>
    line.includes("without admission seal under PIGGY_LEGACY_PODS")
  );
  assert.equal(warnings.length, 1);

  unsealed(new Date(Date.parse(CUTOFF) + 3600_000).toISOString());
  const refused = await requestSecret(webhook, admitted);
  assert.equal(refused.status, 403);
  assert.match(refused.body.message ?? "", /not before PIGGY_LEGACY_PODS_CREATED_BEFORE/);
});

test("the webhook does not start with a sealing key shorter than 32 bytes", async () => {
  const short = join(dir, "short");
  writeFileSync(short, "too-short\n");
  await assert.rejects(
    startWebhook({
      env: { KUBECONFIG: kube.kubeconfigPath, PIGGY_SEAL_KEY_FILES: short },
    }),
    /Cannot use PIGGY_SEAL_KEY_FILES file .*short.*: the key has 9 bytes, at least 32/,
  );
  await assert.rejects(
    startWebhook({
      env: { KUBECONFIG: kube.kubeconfigPath, PIGGY_SEAL_KEY_FILES: join(dir, "absent") },
    }),
    /Cannot read PIGGY_SEAL_KEY_FILES file/,
  );
});
