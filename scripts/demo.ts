// deno-lint-ignore-file no-console
/**
 * `deno task demo`: Piggy end to end on one machine, in a few seconds, with nothing left running.
 *
 * 1. Starts the local Kubernetes API and AWS stand-ins (testing/), seeds AWS from
 *    demo/aws.yaml, and starts the real webhook (cli/webhook.ts, the shipped permission flags)
 *    over HTTPS with a fresh CA, configured as the Helm chart configures it.
 * 2. For each manifest of demo/k8s/: stores its Secrets and ServiceAccounts in the Kubernetes
 *    stand-in, submits each Pod to `/mutate` as an AdmissionReview, prints what the returned JSON
 *    Patch changed (a diff of the pod before and after), and checks that admitting the result again
 *    returns no patch.
 * 3. Starts every wrapped container as the kubelet would: its command (`/piggy/piggy-env -- …`)
 *    through the real launcher (cli/piggy_env.ts), with the env of the mutated spec (literal values,
 *    the downward-API pod name, envFrom/valueFrom of the stored Secret) and a pod-bound token; the
 *    demo app prints the values it received, and the demo checks them against demo/aws.yaml. Once,
 *    it also runs another command with the same token and shows that the webhook refuses it.
 *
 * What differs from a cluster is printed as a "local run" note: the demo app path, the webhook
 * address, the token file, and the AWS endpoint of standalone pods.
 *
 * Exit code 0 when every pod was mutated and every app printed its values; 1 with a message (and the
 * webhook's last log lines) otherwise. The last lines name the PIDs it started; all of them have
 * exited by then. `DEMO_AWS_DATA` names another AWS data file (tests use it to check failures).
 *
 * @module
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import { parse } from "yaml";
import {
  ANNOTATION_PREFIX,
  COMMAND_SEPARATOR,
  ENV,
  INSTALLER_NAME,
  LAUNCHER_PATH,
  RESERVED_KEYS,
} from "../src/constants.ts";
import { referenceKey } from "../src/pod/container_refs.ts";
import { createTestCa, type TestCa } from "../testing/pki.ts";
import { collapseInstaller, diffLines, formatDiff, yamlLines } from "../testing/pod_diff.ts";
import { type KubeApiStandIn, startKubeApi } from "../testing/kube_api.ts";
import { type AwsStandIn, startAwsStandIn } from "../testing/aws.ts";
import { startWebhook, type WebhookProcess } from "../testing/webhook_process.ts";
import { admitPod, persistPod } from "../testing/flow.ts";
import {
  ensureStandaloneBundle,
  type LauncherResult,
  spawnLauncher,
} from "../testing/launcher_process.ts";
import {
  type AwsSeed,
  CLUSTER_APP_DIR,
  expectedSource,
  isStandalonePod,
  type KubeObject,
  loadAwsSeed,
  loadManifests,
  LOCAL_APP_DIR,
  printedValues,
  REPO_ROOT,
  storedSecret,
  withAwsEndpoint,
  withLocalApp,
} from "../testing/demo_data.ts";
import { kubeletEnv, objectKey, type Objects } from "../testing/kubelet_env.ts";
import { Running } from "../testing/running.ts";

/** The demo gives up (and cleans up) after this long. */
const WATCHDOG_MS = 120_000;

/** Lines of context around each change of the pod diff. */
const DIFF_CONTEXT = 1;

const ADDRESS_ANNOTATION = `${ANNOTATION_PREFIX}piggy-address`;
const CLUSTER_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token";

// ---------------------------------------------------------------------------------------------
// Output

const useColor = Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");

function paint(code: string, text: string): string {
  return useColor ? `\x1b[${code}m${text}\x1b[0m` : text;
}

const green = (text: string) => paint("32", text);
const red = (text: string) => paint("31", text);
const dim = (text: string) => paint("2", text);
const bold = (text: string) => paint("1", text);

function step(text: string): void {
  console.log(`${bold("▶")} ${text}`);
}

function done(text: string): void {
  console.log(`${green("✔")} ${text}`);
}

function note(text: string): void {
  console.log(`  ${dim(text)}`);
}

// ---------------------------------------------------------------------------------------------
// The run

interface DemoContext {
  kube: KubeApiStandIn;
  aws: AwsStandIn;
  webhook: WebhookProcess;
  seed: AwsSeed;
  objects: Objects;
  tokenDir: string;
  running: Running;
  /** The installer init container was shown in full once. */
  installerShown: boolean;
  /** The integrity check was shown once. */
  integrityShown: boolean;
}

function chartImage(): string {
  const chart = parse(
    readFileSync(join(REPO_ROOT, "charts", "piggy-webhooks", "Chart.yaml"), "utf8"),
  ) as { appVersion?: unknown };
  return `ghcr.io/piggysec/piggy-env:${String(chart.appVersion ?? "latest")}`;
}

function storeObject(context: DemoContext, object: KubeObject): void {
  const namespace = object.metadata?.namespace ?? "default";
  const name = object.metadata?.name ?? "";
  switch (object.kind) {
    case "Namespace":
      note(`namespace ${name}`);
      return;
    case "Secret": {
      const stored = storedSecret(object);
      context.kube.put("secrets", stored as never);
      context.objects.set(objectKey("Secret", namespace, name), stored);
      note(`Secret ${namespace}/${name} stored in the Kubernetes API (it holds only references)`);
      return;
    }
    case "ConfigMap":
      context.kube.put("configmaps", object as never);
      context.objects.set(objectKey("ConfigMap", namespace, name), object);
      note(`ConfigMap ${namespace}/${name} stored in the Kubernetes API`);
      return;
    case "ServiceAccount":
      context.kube.put("serviceaccounts", object as never);
      note(`ServiceAccount ${namespace}/${name} stored in the Kubernetes API`);
      return;
    default:
      throw new Error(
        `Cannot apply ${object.kind} "${name}": the demo handles Pods, Secrets, ` +
          "ConfigMaps, ServiceAccounts and Namespaces",
      );
  }
}

function logLine(record: Record<string, unknown>): string {
  return `${String(record.level ?? "")} ${String(record.message ?? "")}`;
}

/** Runs piggy-env with `args`; prints its log lines and the webhook's audit lines meanwhile. */
async function launch(
  context: DemoContext,
  args: string[],
  env: Record<string, string>,
): Promise<LauncherResult> {
  await ensureStandaloneBundle();
  const logsBefore = context.webhook.logs.length;
  context.running.check();
  const launcher = spawnLauncher({ args, env, timeoutMs: 30_000 });
  context.running.launchers.add(launcher);
  context.running.pids.push(launcher.pid);
  let result: LauncherResult;
  try {
    result = await launcher.done;
  } finally {
    context.running.launchers.delete(launcher);
  }
  for (const record of result.logs) note(`piggy-env: ${logLine(record)}`);
  for (const line of result.plainStderr) note(`piggy-env: ${line}`);
  for (const line of context.webhook.logs.slice(logsBefore)) {
    try {
      const record = JSON.parse(line) as Record<string, unknown>;
      if (String(record.message ?? "").startsWith("Request from")) {
        note(`webhook: ${logLine(record)}`);
      }
    } catch {
      // not a log record
    }
  }
  return result;
}

/** Runs one wrapped container through piggy-env and checks what the app printed. */
async function startContainer(
  context: DemoContext,
  pod: Pod,
  container: Container,
): Promise<void> {
  const namespace = pod.metadata?.namespace ?? "default";
  const podName = pod.metadata?.name ?? "";
  const standalone = isStandalonePod(pod);
  const env = kubeletEnv(container, pod, context.objects);
  const launcherEnv: Record<string, string> = Object.fromEntries(env);
  if (standalone) {
    const roleArn = env.get("AWS_ROLE_ARN");
    const aws = context.aws.env({
      credentials: "web-identity",
      region: null,
      ...(roleArn ? { roleArn } : {}),
    });
    Object.assign(launcherEnv, aws);
    note(
      `local run: AWS_WEB_IDENTITY_TOKEN_FILE=${
        env.get("AWS_WEB_IDENTITY_TOKEN_FILE") ?? "(unset)"
      } → a token the AWS stand-in's STS accepts`,
    );
  } else {
    const token = context.kube.issueToken({
      namespace,
      serviceAccount: pod.spec?.serviceAccountName ?? "default",
      podName,
    });
    const tokenFile = join(context.tokenDir, `${namespace}-${podName}-token`);
    writeFileSync(tokenFile, token, { mode: 0o600 });
    launcherEnv[ENV.TOKEN_FILE] = tokenFile;
    note(`local run: the pod-bound token of ${CLUSTER_TOKEN_FILE} is in ${ENV.TOKEN_FILE}`);
  }

  const command = [...(container.command ?? []), ...(container.args ?? [])];
  step(
    `starting container "${container.name}" (${standalone ? "standalone" : "proxy"} mode): ` +
      command.map((part) => part.startsWith(REPO_ROOT) ? relative(REPO_ROOT, part) : part)
        .join(" "),
  );
  const result = await launch(context, container.args ?? [], launcherEnv);
  for (const line of result.stdout.trimEnd().split("\n")) {
    if (line !== "") console.log(`  │ ${line}`);
  }
  if (result.code !== 0) {
    const errors = result.logs.filter((record) => record.level === "error")
      .map((record) => String(record.message));
    throw new Error(
      `Container "${container.name}" of pod ${namespace}/${podName} exited with ` +
        `${result.code ?? result.signal}${errors.length > 0 ? `: ${errors.join("; ")}` : ""}`,
    );
  }

  const source = expectedSource(pod, context.seed);
  const printed = printedValues(result.stdout);
  const checked: string[] = [];
  for (const [name, value] of env) {
    const key = referenceKey(value);
    if (key === undefined || !printed.has(name)) continue;
    const expected = source.values.get(key);
    if (expected === undefined || RESERVED_KEYS.has(key) || printed.get(name) !== expected) {
      throw new Error(
        `Container "${container.name}" of pod ${namespace}/${podName}: ${name} does not hold ` +
          `the value of "${key}" from ${source.label} (demo/aws.yaml)`,
      );
    }
    checked.push(name);
  }
  if (checked.length === 0) {
    throw new Error(
      `Container "${container.name}" of pod ${namespace}/${podName} printed no resolved reference`,
    );
  }
  if (!result.stdout.includes("launcher variables left in my environment: none")) {
    throw new Error(`Container "${container.name}" still sees piggy-env's own PIGGY_* variables`);
  }
  const appPid = Number(/demo app: pid (\d+)/.exec(result.stdout)?.[1]);
  const sameProcess = appPid === result.pid
    ? `as piggy-env's own process (pid ${appPid}, execve)`
    : `as pid ${appPid} (piggy-env was pid ${result.pid})`;
  done(`${checked.join(", ")} from ${source.label}; the app ran ${sameProcess}`);

  if (!standalone && !context.integrityShown) {
    context.integrityShown = true;
    const other = [COMMAND_SEPARATOR, "/bin/sh", "-c", "env"];
    step(
      `the same token with another command, as after kubectl exec: ${LAUNCHER_PATH} ` +
        other.join(" "),
    );
    const refused = await launch(context, other, launcherEnv);
    if (refused.code === 0 || refused.stdout !== "") {
      throw new Error(`piggy-env ran "${other.slice(1).join(" ")}" with the pod's secrets`);
    }
    done(
      `refused (exit ${refused.code}): the command is not the one signed at admission ` +
        "(piggy-enforce-integrity, on by default)",
    );
  }
}

/** Admits one pod, prints the diff, stores it and starts its wrapped containers. */
async function runPod(context: DemoContext, manifestPod: Pod): Promise<void> {
  context.running.check();
  const namespace = manifestPod.metadata?.namespace ?? "default";
  const name = manifestPod.metadata?.name ?? "";
  let pod = withLocalApp(manifestPod);
  note(
    `local run: ${CLUSTER_APP_DIR}/ (a ConfigMap in the cluster) → ${
      relative(REPO_ROOT, LOCAL_APP_DIR)
    }/`,
  );
  const annotations = pod.metadata?.annotations ?? {};
  if (annotations[ADDRESS_ANNOTATION]) {
    note(
      `local run: ${ADDRESS_ANNOTATION} ${
        annotations[ADDRESS_ANNOTATION]
      } → ${context.webhook.url}`,
    );
    annotations[ADDRESS_ANNOTATION] = context.webhook.url;
  }
  if (isStandalonePod(pod)) {
    pod = withAwsEndpoint(pod, context.aws.url);
    note(
      `local run: AWS_ENDPOINT_URL=${context.aws.url} added (scripts/dev does the same for ` +
        "LocalStack)",
    );
  }
  // The API server's ServiceAccount admission plugin runs before the webhooks.
  pod.spec = {
    containers: [],
    ...pod.spec,
    serviceAccountName: pod.spec?.serviceAccountName ?? "default",
  };

  step(`admitting Pod ${namespace}/${name}: AdmissionReview (CREATE) → POST /mutate`);
  const logsBefore = context.webhook.logs.length;
  const { review, pod: mutated } = await admitPod(context.webhook, pod, namespace);
  context.running.check();
  const response = review.response;
  if (!response.allowed) {
    throw new Error(`The webhook denied pod ${namespace}/${name}: ${response.status?.message}`);
  }
  for (const warning of response.warnings ?? []) note(`warning: ${warning}`);
  const operations = response.patch ? (JSON.parse(atob(response.patch)) as unknown[]).length : 0;
  if (operations === 0) throw new Error(`The webhook did not mutate pod ${namespace}/${name}`);
  for (const line of context.webhook.logs.slice(logsBefore)) {
    try {
      const record = JSON.parse(line) as Record<string, unknown>;
      if (/mutated|denied/.test(String(record.message ?? ""))) {
        note(`webhook: ${logLine(record)}`);
      }
    } catch {
      // not a log record
    }
  }
  done(`allowed with a JSON Patch of ${operations} operations; the pod before → after:`);
  let diff = diffLines(yamlLines(pod), yamlLines(mutated));
  if (context.installerShown) diff = collapseInstaller(diff);
  context.installerShown = true;
  for (
    const line of formatDiff(diff, DIFF_CONTEXT, { added: green, removed: red, unchanged: dim })
  ) {
    console.log(line);
  }

  const again = await admitPod(context.webhook, mutated, namespace);
  if (!again.review.response.allowed || again.review.response.patch) {
    throw new Error(`Admitting the mutated pod ${namespace}/${name} again changed it`);
  }
  done("admitting the mutated pod again returns no patch (safe with reinvocationPolicy IfNeeded)");

  const stored = persistPod(context.kube, mutated, namespace, name);
  for (const container of [...(stored.spec?.initContainers ?? []), ...stored.spec!.containers]) {
    if (container.name === INSTALLER_NAME) continue;
    if (container.command?.[0] !== LAUNCHER_PATH) {
      note(`container "${container.name}" has no piggy: reference: left as it is, not run here`);
      continue;
    }
    await startContainer(context, stored, container);
  }
}

async function run(running: Running): Promise<void> {
  const seed = loadAwsSeed(Deno.env.get("DEMO_AWS_DATA") || undefined);
  const manifests = loadManifests();
  const pods = manifests.flatMap((manifest) => manifest.objects).filter((o) => o.kind === "Pod");
  console.log(
    bold(`Piggy demo: ${pods.length} pods of demo/k8s/, AWS data of demo/aws.yaml (fake values)`),
  );

  step("starting the Kubernetes API stand-in");
  const kube = await startKubeApi();
  running.onCleanup("Kubernetes API stand-in", () => kube.close());
  note(`listening on ${kube.url}`);

  step("starting the AWS stand-in (Secrets Manager, SSM Parameter Store, STS)");
  const aws = await startAwsStandIn();
  running.onCleanup("AWS stand-in", () => aws.close());
  for (const secret of seed.secrets) {
    aws.putSecret(secret.name, { string: JSON.stringify(secret.value) });
  }
  for (const parameter of seed.parameters) {
    aws.putParameter(parameter.name, parameter.value, parameter.type);
  }
  note(
    `listening on ${aws.url}; seeded ${seed.secrets.length} secrets and ` +
      `${seed.parameters.length} parameters from demo/aws.yaml`,
  );

  let ca: TestCa;
  try {
    ca = createTestCa("piggy-demo");
  } catch (error) {
    throw new Error("Cannot create the demo CA: the demo needs openssl on PATH", { cause: error });
  }
  running.onCleanup("demo CA", () => rmSync(ca.dir, { recursive: true, force: true }));
  const tokenDir = mkdtempSync(join(tmpdir(), "piggy-demo-tokens-"));
  running.onCleanup("token files", () => rmSync(tokenDir, { recursive: true, force: true }));

  step("starting the webhook (cli/webhook.ts over HTTPS, with the chart's settings)");
  const image = chartImage();
  const webhook = await startWebhook({
    ca,
    env: {
      KUBECONFIG: kube.kubeconfigPath,
      PIGGY_ENV_IMAGE: image,
      PIGGY_ENV_IMAGE_PULL_POLICY: "IfNotPresent",
      PIGGY_CA_BUNDLE_FILE: ca.certFile,
      ...aws.env({ credentials: "static", region: seed.region }),
    },
  });
  running.pids.push(webhook.child.pid);
  running.webhookLogs = webhook.logs;
  running.onCleanup("webhook", async () => {
    step(`stopping the webhook (pid ${webhook.child.pid})`);
    const timer = setTimeout(() => {
      try {
        webhook.child.kill("SIGKILL");
      } catch {
        // already exited
      }
    }, 5_000);
    const status = await webhook.stop();
    clearTimeout(timer);
    note(`webhook exited with ${status.code}`);
  });
  done(`webhook listening on ${webhook.url} (pid ${webhook.child.pid})`);
  note(
    `PIGGY_ENV_IMAGE=${image}, PIGGY_CA_BUNDLE_FILE=<demo CA>: wrapped containers verify ` +
      "the webhook with that CA",
  );

  const context: DemoContext = {
    kube,
    aws,
    webhook,
    seed,
    objects: new Map(),
    tokenDir,
    running,
    installerShown: false,
    integrityShown: false,
  };
  for (const manifest of manifests) {
    console.log("");
    console.log(bold(`── ${manifest.file}`));
    for (const object of manifest.objects) {
      if (object.kind === "Pod") await runPod(context, object as Pod);
      else storeObject(context, object);
    }
  }
  console.log("");
}

/**
 * Runs the demo.
 *
 * @returns the process exit code
 */
export async function main(): Promise<number> {
  const started = performance.now();
  const running = new Running();
  let failure: unknown;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const listeners: Array<[Deno.Signal, () => void]> = [];
  const interrupted = new Promise<never>((_, reject) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      const listener = () => reject(new Error(`Interrupted by ${signal}`));
      Deno.addSignalListener(signal, listener);
      listeners.push([signal, listener]);
    }
    timer = setTimeout(
      () => reject(new Error(`The demo did not finish within ${WATCHDOG_MS / 1000} s`)),
      WATCHDOG_MS,
    );
  });
  const demo = run(running);
  try {
    await Promise.race([demo, interrupted]);
  } catch (error) {
    failure = error;
  } finally {
    clearTimeout(timer);
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
  if (failure) {
    // Let the interrupted step notice (its launcher is killed) before printing the failure.
    await running.abort();
    let grace: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      demo.catch(() => undefined),
      new Promise((resolve) => (grace = setTimeout(resolve, 3_000))),
    ]);
    clearTimeout(grace);
  }
  if (failure) {
    const message = failure instanceof Error ? failure.message : String(failure);
    console.log(`${red("✖")} demo failed: ${message}`);
    if (running.webhookLogs.length > 0) note("last webhook log lines:");
    for (const line of running.webhookLogs.slice(-8)) {
      try {
        note(`  ${logLine(JSON.parse(line) as Record<string, unknown>)}`);
      } catch {
        note(`  ${line}`);
      }
    }
  }
  const cleanupFailures = await running.stopAll();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  for (const line of cleanupFailures) console.log(`${red("✖")} cleanup failed: ${line}`);
  console.log(`processes started: ${running.pids.join(" ")}`);
  if (failure || cleanupFailures.length > 0) return 1;
  done(`demo finished in ${seconds} s; the webhook and the stand-ins are stopped`);
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main());
}
