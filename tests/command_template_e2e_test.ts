/**
 * `$(VAR)` with integrity on, end to end: the real webhook admits a pod whose args use `$(VAR)`,
 * the kubelet's expansion is simulated (`testing/kubelet_env.ts`, its own implementation), and the
 * real piggy-env proves its argv is the admitted template expanded with literal variables. A
 * variable from a ConfigMap is not expanded by the proof (its value can change after admission),
 * and any other argv is refused by the webhook.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import { DEFAULT_TOKEN_AUDIENCE, ENV, LAUNCHER_PATH } from "../src/constants.ts";
import { type KubeApiStandIn, startKubeApi } from "../testing/kube_api.ts";
import { type AwsStandIn, startAwsStandIn } from "../testing/aws.ts";
import { startWebhook, type WebhookProcess } from "../testing/webhook_process.ts";
import { admitPod, persistPod } from "../testing/flow.ts";
import { createTestCa } from "../testing/pki.ts";
import { kubeletArgv, kubeletEnv, objectKey, type Objects } from "../testing/kubelet_env.ts";
import { logMessages, parseReport, REPORT_APP, runLauncher } from "../testing/launcher_process.ts";

const NAMESPACE = "shop";
const CONFIG_MAP = {
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "app-config", namespace: NAMESPACE },
  data: { mode: "fast" },
};

let kube: KubeApiStandIn;
let aws: AwsStandIn;
let webhook: WebhookProcess;
let dir: string;
const objects: Objects = new Map([[objectKey("ConfigMap", NAMESPACE, "app-config"), CONFIG_MAP]]);

function appPod(args: string[]): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "app-",
      annotations: {
        "piggysec.com/piggy-address": webhook.url,
        "piggysec.com/aws-secret-name": "shop/app",
      },
    },
    spec: {
      serviceAccountName: "app",
      containers: [{
        name: "app",
        image: "shop/app:1.0",
        command: [REPORT_APP],
        args,
        env: [
          { name: "PORT", value: "8080" },
          { name: "ADDR", value: "0.0.0.0:$(PORT)" },
          { name: "MODE", valueFrom: { configMapKeyRef: { name: "app-config", key: "mode" } } },
          { name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" },
        ],
      }],
    },
  };
}

/**
 * Admits and persists the pod, then starts its container as the kubelet would: env and argv
 * expanded, the projected token at a local path. `extraArgs` are appended to the kubelet's argv.
 */
async function startContainer(args: string[], extraArgs: string[] = []) {
  const name = `app-${crypto.randomUUID().slice(0, 8)}`;
  const admitted = await admitPod(webhook, appPod(args), NAMESPACE);
  assert.equal(admitted.review.response.allowed, true, JSON.stringify(admitted.review.response));
  const pod = persistPod(kube, admitted.pod, NAMESPACE, name);
  const container = pod.spec!.containers[0]! as Container;
  const env = kubeletEnv(container, pod, objects);
  const tokenFile = join(dir, `${name}.token`);
  writeFileSync(
    tokenFile,
    kube.issueToken({
      namespace: NAMESPACE,
      serviceAccount: "app",
      podName: name,
      audiences: [DEFAULT_TOKEN_AUDIENCE],
    }),
  );
  env.set(ENV.TOKEN_FILE, tokenFile);
  const argv = kubeletArgv(container, env);
  assert.equal(argv[0], LAUNCHER_PATH);
  const result = await runLauncher({
    args: [...argv.slice(1), ...extraArgs],
    env: Object.fromEntries(env),
  });
  return { result, warnings: admitted.review.response.warnings ?? [] };
}

before(async () => {
  kube = await startKubeApi();
  kube.put("configmaps", structuredClone(CONFIG_MAP));
  aws = await startAwsStandIn();
  aws.putSecret("shop/app", {
    string: JSON.stringify({ DB_PASSWORD: "pw-7", PIGGY_ALLOWED_SA: "shop:app" }),
  });
  const ca = createTestCa("piggy-template-e2e");
  dir = mkdtempSync(join(tmpdir(), "piggy-template-e2e-"));
  webhook = await startWebhook({
    ca,
    allowOwnAddress: true,
    env: {
      KUBECONFIG: kube.kubeconfigPath,
      PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:test",
      PIGGY_CA_BUNDLE_FILE: ca.certFile,
      ...aws.env({ credentials: "static", region: "eu-west-1" }),
    },
  });
});

after(async () => {
  await webhook?.stop();
  await aws?.close();
  await kube?.close();
  await Deno.remove(webhook.ca.dir, { recursive: true }).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

test("a pod with $(VAR) and $$ in its args runs with integrity on", async () => {
  const { result, warnings } = await startContainer([
    "--port=$(PORT)",
    "--listen=$(ADDR)",
    "$$HOME",
  ]);
  assert.deepEqual(warnings, []);
  assert.equal(result.code, 0, result.stderr);
  const report = parseReport(result.stdout);
  assert.deepEqual(report.args, ["--port=8080", "--listen=0.0.0.0:8080", "$HOME"]);
  const env = new Map(report.env);
  assert.equal(env.get("DB_PASSWORD"), "pw-7");
  assert.equal(env.get(ENV.COMMAND_TEMPLATE), undefined, "the template stays with the launcher");
});

test("a $(VAR) from a ConfigMap is not expanded by the proof: the webhook refuses the container", async () => {
  const { result, warnings } = await startContainer(["--port=$(PORT)", "--mode=$(MODE)"]);
  assert.match(warnings.join("\n"), /\$\(MODE\) in command or args is not set by a literal value/);
  assert.equal(result.code, 1);
  assert.equal(result.stdout, "", "the app never started");
  assert.ok(logMessages(result).some((message) => /Webhook answered 403/.test(message)));
});

test("an argv that is not the admitted template expanded is refused", async () => {
  const { result } = await startContainer(["--port=$(PORT)"], ["--debug-shell"]);
  assert.equal(result.code, 1);
  assert.equal(result.stdout, "");
  assert.ok(logMessages(result).some((message) => /Webhook answered 403/.test(message)));
});
