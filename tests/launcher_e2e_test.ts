/**
 * The whole proxy-mode path with real processes: the real webhook admits a pod, the pod is
 * persisted in the Kubernetes API stand-in, and the real piggy-env runs the wrapped command with
 * the environment the kubelet would give it (the mutated container's env, the downward-API pod name,
 * a pod-bound token). The app reports its PID and environment.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import type { KubeApiStandIn } from "../testing/kube_api.ts";
import type { AwsStandIn } from "../testing/aws.ts";
import type { WebhookProcess } from "../testing/webhook_process.ts";
import { admitPod, launcherToken, persistPod } from "../testing/flow.ts";
import { type Stack, startStack } from "../testing/stack.ts";
import { parseReport, REPORT_APP, runLauncher } from "../testing/launcher_process.ts";

const NAMESPACE = "shop";
const CANARY = `PIGGY-CANARY-${crypto.randomUUID()}`;

let kube: KubeApiStandIn;
let aws: AwsStandIn;
let webhook: WebhookProcess;
let tokenDir: string;
let stack: Stack;

before(async () => {
  // The CA is what the chart publishes and the webhook injects as PIGGY_CA_BUNDLE.
  stack = await startStack({
    caLabel: "piggy-e2e",
    region: "eu-west-1",
    allowOwnAddress: true,
  });
  ({ kube, aws, webhook } = stack);
  aws.putSecret("shop/checkout", {
    string: JSON.stringify({
      DB_PASSWORD: CANARY,
      API_KEY: "key-123",
      PIGGY_ALLOWED_SA: "shop:checkout",
    }),
  });
  tokenDir = mkdtempSync(join(tmpdir(), "piggy-e2e-token-"));
});

after(async () => {
  await stack?.stop();
  rmSync(tokenDir, { recursive: true, force: true });
});

function checkoutPod(annotations: Record<string, string> = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "checkout-",
      annotations: {
        "piggysec.com/piggy-address": webhook.url,
        "piggysec.com/aws-secret-name": "shop/checkout",
        ...annotations,
      },
    },
    spec: {
      serviceAccountName: "checkout",
      containers: [{
        name: "app",
        image: "shop/checkout:1.0",
        command: [REPORT_APP],
        args: ["--listen", ":8080"],
        env: [
          { name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" },
          { name: "API_KEY", value: "piggy:API_KEY" },
          { name: "PLAIN", value: "hello" },
        ],
      }],
    },
  };
}

/** Admits and persists a pod; returns the container and the env the kubelet would start it with. */
async function startablePod(annotations: Record<string, string> = {}) {
  const name = `checkout-${crypto.randomUUID().slice(0, 8)}`;
  const admitted = await admitPod(webhook, checkoutPod(annotations), NAMESPACE);
  assert.equal(admitted.review.response.allowed, true, JSON.stringify(admitted.review.response));
  const pod = persistPod(kube, admitted.pod, NAMESPACE, name);
  const container = pod.spec!.containers[0]!;
  const tokenFile = join(tokenDir, name);
  writeFileSync(tokenFile, launcherToken(kube, pod));
  return { name, container, env: kubeletEnv(container, name, tokenFile) };
}

/** The container environment as the kubelet resolves it (literal values, downward-API pod name). */
function kubeletEnv(container: Container, podName: string, tokenFile: string) {
  const env: Record<string, string> = {};
  for (const entry of container.env ?? []) {
    if (entry.value !== undefined) env[entry.name] = entry.value;
    else if (entry.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[entry.name] = podName;
  }
  env.PIGGY_TOKEN_FILE = tokenFile;
  return env;
}

test("a wrapped container gets its secrets from the real webhook, keeping its PID", async () => {
  const { container, env } = await startablePod();
  assert.deepEqual(container.command, ["/piggy/piggy-env"]);
  assert.deepEqual(container.args, ["--", REPORT_APP, "--listen", ":8080"]);
  assert.ok(env.PIGGY_CA_BUNDLE?.includes("BEGIN CERTIFICATE"), "the webhook injected its CA");

  const result = await runLauncher({ args: container.args!, env });
  assert.equal(result.code, 0, result.stderr);
  const report = parseReport(result.stdout);
  assert.equal(report.pid, result.pid, "the app runs as piggy-env's own process (execve)");
  assert.deepEqual(report.args, ["--listen", ":8080"]);
  const appEnv = new Map(report.env);
  assert.equal(appEnv.get("DB_PASSWORD"), CANARY);
  assert.equal(appEnv.get("API_KEY"), "key-123");
  assert.equal(appEnv.get("PLAIN"), "hello");
  const leftovers = report.env.map(([name]) => name).filter((name) => name.startsWith("PIGGY_"));
  assert.deepEqual(leftovers, [], "no launcher configuration reaches the app");
  assert.ok(!result.stderr.includes(CANARY), "the launcher never logs a value");
});

test("a command changed after admission is refused by the webhook", async () => {
  const { container, env } = await startablePod();
  const result = await runLauncher({ args: [...container.args!, "--debug-shell"], env });
  assert.equal(result.code, 1);
  assert.equal(result.stdout, "", "the app never started");
  assert.match(result.stderr, /403|signature/i);
});

test("with integrity off a changed command still gets its secrets", async () => {
  const { container, env } = await startablePod({
    "piggysec.com/piggy-enforce-integrity": "false",
  });
  const result = await runLauncher({ args: [...container.args!, "--extra"], env });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(new Map(parseReport(result.stdout).env).get("DB_PASSWORD"), CANARY);
});

test("a launcher that does not trust the webhook's CA is refused before sending its token", async () => {
  const { container, env } = await startablePod();
  const other = webhook.ca.issue("unrelated-leaf");
  const before = kube.counts.tokenreviews;
  const result = await runLauncher({
    args: container.args!,
    env: { ...env, PIGGY_CA_BUNDLE: other.cert },
  });
  assert.equal(result.code, 1);
  assert.equal(result.stdout, "");
  assert.equal(kube.counts.tokenreviews, before, "the webhook never saw the token");
});

test("the canary value never reaches the webhook's logs", () => {
  for (const line of [...webhook.logs, ...webhook.stdout]) {
    assert.ok(!line.includes(CANARY), `canary leaked: ${line.slice(0, 200)}`);
  }
});
