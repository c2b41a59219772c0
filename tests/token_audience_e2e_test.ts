/**
 * The audience-bound token end to end: the real webhook mounts a projected token for
 * `piggysec.com` into the wrapped container, the real piggy-env sends it (read from
 * `PIGGY_TOKEN_FILE`, again on each attempt), and `/secret` reviews it for that audience. A token
 * for another audience is refused; the API server's own token (what launchers of earlier releases
 * send) only under PIGGY_LEGACY_PODS, with a warning per request, and never for a pod admitted with
 * the projected token.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import {
  DEFAULT_TOKEN_AUDIENCE,
  ENV,
  TOKEN_MOUNT_PATH,
  TOKEN_VOLUME_NAME,
} from "../src/constants.ts";
import { commandSignature } from "../src/pod/signature.ts";
import { type KubeApiStandIn, startKubeApi } from "../testing/kube_api.ts";
import { type AwsStandIn, startAwsStandIn } from "../testing/aws.ts";
import { startWebhook, type WebhookProcess } from "../testing/webhook_process.ts";
import { admitPod, launcherIdentity, persistPod } from "../testing/flow.ts";
import { createTestCa } from "../testing/pki.ts";
import {
  parseReport,
  REPORT_APP,
  runLauncher,
  startSecretResponder,
} from "../testing/launcher_process.ts";

const NAMESPACE = "shop";
const LEGACY_WARNING = "token for the API server's audience under PIGGY_LEGACY_PODS";

let kube: KubeApiStandIn;
let aws: AwsStandIn;
let webhook: WebhookProcess;
/** The same, with PIGGY_LEGACY_PODS=false. */
let strict: WebhookProcess;
let dir: string;

function checkoutPod(): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "checkout-",
      annotations: {
        "piggysec.com/piggy-address": webhook.url,
        "piggysec.com/aws-secret-name": "shop/checkout",
      },
    },
    spec: {
      serviceAccountName: "checkout",
      containers: [{
        name: "app",
        image: "shop/checkout:1.0",
        command: [REPORT_APP],
        env: [{ name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" }],
      }],
    },
  };
}

/** Admits and persists a pod; returns its name, container and launcher identity. */
async function admittedPod() {
  const name = `checkout-${crypto.randomUUID().slice(0, 8)}`;
  const admitted = await admitPod(webhook, checkoutPod(), NAMESPACE);
  assert.equal(admitted.review.response.allowed, true, JSON.stringify(admitted.review.response));
  const pod = persistPod(kube, admitted.pod, NAMESPACE, name);
  const container = pod.spec!.containers[0]!;
  return { name, pod, container, ...launcherIdentity(container) };
}

/** The container env as the kubelet resolves it, with the token volume mounted at `tokenFile`. */
function kubeletEnv(container: Container, podName: string, tokenFile: string) {
  const env: Record<string, string> = {};
  for (const entry of container.env ?? []) {
    if (entry.value !== undefined) env[entry.name] = entry.value;
    else if (entry.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[entry.name] = podName;
  }
  // The kubelet mounts the projected volume where PIGGY_TOKEN_FILE points; here a local file.
  assert.equal(env[ENV.TOKEN_FILE], `${TOKEN_MOUNT_PATH}/token`);
  env[ENV.TOKEN_FILE] = tokenFile;
  return env;
}

async function requestSecret(
  target: WebhookProcess,
  pod: { name: string; uid: string; command: string[] },
  token: string,
): Promise<{ status: number; body: Record<string, string> }> {
  const response = await target.fetch("/secret", {
    method: "POST",
    headers: { "content-type": "application/json", "x-token": token },
    body: JSON.stringify({
      resources: "pods",
      name: pod.name,
      uid: pod.uid,
      signature: commandSignature(pod.command),
    }),
  });
  return { status: response.status, body: await response.json() };
}

before(async () => {
  kube = await startKubeApi();
  aws = await startAwsStandIn();
  aws.putSecret("shop/checkout", {
    string: JSON.stringify({ DB_PASSWORD: "pw-1", PIGGY_ALLOWED_SA: "shop:checkout" }),
  });
  const ca = createTestCa("piggy-token-e2e");
  dir = mkdtempSync(join(tmpdir(), "piggy-token-e2e-"));
  const key = join(dir, "seal-key");
  writeFileSync(key, "k".repeat(48));
  const env = {
    KUBECONFIG: kube.kubeconfigPath,
    PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:test",
    PIGGY_CA_BUNDLE_FILE: ca.certFile,
    PIGGY_SEAL_KEY_FILES: key,
    ...aws.env({ credentials: "static", region: "eu-west-1" }),
  };
  webhook = await startWebhook({ ca, env, allowOwnAddress: true });
  strict = await startWebhook({
    ca,
    env: { ...env, PIGGY_LEGACY_PODS: "false" },
    allowOwnAddress: true,
  });
});

after(async () => {
  await webhook?.stop();
  await strict?.stop();
  await aws?.close();
  await kube?.close();
  await Deno.remove(webhook.ca.dir, { recursive: true }).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

test("the mutation mounts a projected token for piggysec.com, read-only, into the wrapped container", async () => {
  const { pod, container } = await admittedPod();
  const volume = pod.spec?.volumes?.find((entry) => entry.name === TOKEN_VOLUME_NAME);
  assert.deepEqual(volume?.projected?.sources, [{
    serviceAccountToken: {
      audience: DEFAULT_TOKEN_AUDIENCE,
      expirationSeconds: 600,
      path: "token",
    },
  }]);
  assert.deepEqual(
    container.volumeMounts?.find((mount) => mount.name === TOKEN_VOLUME_NAME),
    { name: TOKEN_VOLUME_NAME, mountPath: TOKEN_MOUNT_PATH, readOnly: true },
  );
});

test("piggy-env sends the projected token and the app gets its secret", async () => {
  const admitted = await admittedPod();
  const tokenFile = join(dir, `${admitted.name}.token`);
  writeFileSync(
    tokenFile,
    kube.issueToken({
      namespace: NAMESPACE,
      serviceAccount: "checkout",
      podName: admitted.name,
      audiences: [DEFAULT_TOKEN_AUDIENCE],
    }),
  );
  const reviews = kube.tokenReviews.length;
  const logs = webhook.logs.length;
  const result = await runLauncher({
    args: admitted.container.args!,
    env: kubeletEnv(admitted.container, admitted.name, tokenFile),
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(new Map(parseReport(result.stdout).env).get("DB_PASSWORD"), "pw-1");
  // One review, for Piggy's audience; no compatibility warning.
  assert.deepEqual(kube.tokenReviews.slice(reviews), [{ audiences: [DEFAULT_TOKEN_AUDIENCE] }]);
  assert.ok(!webhook.logs.slice(logs).some((line) => line.includes(LEGACY_WARNING)));
});

test("a token for another audience is refused with 401, also under PIGGY_LEGACY_PODS", async () => {
  const pod = await admittedPod();
  const token = kube.issueToken({
    namespace: NAMESPACE,
    serviceAccount: "checkout",
    podName: pod.name,
    audiences: ["vault"],
  });
  for (const target of [webhook, strict]) {
    const answer = await requestSecret(target, pod, token);
    assert.equal(answer.status, 401, JSON.stringify(answer.body));
    assert.equal(answer.body.DB_PASSWORD, undefined);
  }
});

test("the API server's token is refused for a pod admitted with the projected token, also under PIGGY_LEGACY_PODS", async () => {
  // Every container of the pod holds the default token (a sidecar, an exec session): it must not
  // stand in for the projected token the wrapped container's launcher sends.
  const pod = await admittedPod();
  const token = kube.issueToken({
    namespace: NAMESPACE,
    serviceAccount: "checkout",
    podName: pod.name,
  });
  for (const target of [webhook, strict]) {
    const logs = target.logs.length;
    const answer = await requestSecret(target, pod, token);
    assert.equal(answer.status, 401, JSON.stringify(answer.body));
    assert.equal(answer.body.DB_PASSWORD, undefined);
    assert.ok(!target.logs.slice(logs).some((line) => line.includes(LEGACY_WARNING)));
  }
  assert.match((await requestSecret(webhook, pod, token)).body.message ?? "", /PIGGY_TOKEN_FILE/);
});

test("the API server's token is accepted only under PIGGY_LEGACY_PODS for a launcher never given the projected token, with a warning per request", async () => {
  // A pod admitted before the projected token: no PIGGY_TOKEN_FILE, no token volume (neither is
  // sealed, so the seal still matches).
  const admitted = await admittedPod();
  const legacy = structuredClone(admitted.pod);
  const name = `${admitted.name}-legacy`;
  const { uid: _uid, ...metadata } = legacy.metadata ?? {};
  legacy.metadata = { ...metadata, name };
  const spec = legacy.spec!;
  spec.volumes = (spec.volumes ?? []).filter((volume) => volume.name !== TOKEN_VOLUME_NAME);
  const container = spec.containers[0]!;
  container.env = (container.env ?? []).filter((entry) => entry.name !== ENV.TOKEN_FILE);
  container.volumeMounts = (container.volumeMounts ?? []).filter((mount) =>
    mount.name !== TOKEN_VOLUME_NAME
  );
  persistPod(kube, legacy, NAMESPACE, name);
  const pod = { ...admitted, name };
  const token = kube.issueToken({
    namespace: NAMESPACE,
    serviceAccount: "checkout",
    podName: name,
  });
  for (let round = 1; round <= 2; round++) {
    const logs = webhook.logs.length;
    const answer = await requestSecret(webhook, pod, token);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const warnings = webhook.logs.slice(logs).filter((line) => line.includes(LEGACY_WARNING));
    assert.equal(warnings.length, 1, `request ${round}`);
  }
  const refused = await requestSecret(strict, pod, token);
  assert.equal(refused.status, 401);
});

test("piggy-env re-reads the token file on each attempt (the kubelet rotates it)", async () => {
  const tokenFile = join(dir, "rotating.token");
  writeFileSync(tokenFile, "token-1\n");
  const responder = await startSecretResponder({
    secrets: { DB_PASSWORD: "pw" },
    answer: (n) => {
      if (n > 1) return { status: 200, body: { DB_PASSWORD: "pw" } };
      // The kubelet refreshes the projected token while the first attempt is answered 503.
      writeFileSync(tokenFile, "token-2\n");
      return { status: 503, body: { error: "KubernetesUnavailable", message: "retry" } };
    },
  });
  try {
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: {
        [ENV.ADDRESS]: responder.address,
        [ENV.POD_NAME]: "app-1",
        [ENV.UID]: "uid-1",
        [ENV.TOKEN_FILE]: tokenFile,
        [ENV.NUMBER_OF_RETRY]: "3",
        DB_PASSWORD: "piggy:DB_PASSWORD",
      },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(responder.requests.map((request) => request.headers["x-token"]), [
      "token-1",
      "token-2",
    ]);
  } finally {
    await responder.close();
  }
});
