// deno-lint-ignore-file no-console
/**
 * The steps of `deno task demo` (scripts/demo.ts), each printing what it does: start the stand-ins
 * and the real webhook, store the objects of a demo manifest, admit a pod and show the diff, and
 * start a wrapped container through the real piggy-env, checking what the app printed against
 * demo/aws.yaml.
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
  TOKEN_VOLUME_NAME,
} from "../src/constants.ts";
import { referenceKey } from "../src/pod/container_refs.ts";
import { createTestCa, type TestCa } from "./pki.ts";
import { collapseInstaller, diffLines, formatDiff, yamlLines } from "./pod_diff.ts";
import { type KubeApiStandIn, startKubeApi } from "./kube_api.ts";
import { type AwsStandIn, startAwsStandIn } from "./aws.ts";
import { startWebhook, type WebhookProcess } from "./webhook_process.ts";
import { admitPod, persistPod } from "./flow.ts";
import { ensureStandaloneBundle, type LauncherResult, spawnLauncher } from "./launcher_process.ts";
import {
  type AwsSeed,
  CLUSTER_APP_DIR,
  expectedSource,
  isStandalonePod,
  type KubeObject,
  LOCAL_APP_DIR,
  printedValues,
  REPO_ROOT,
  storedSecret,
  withAwsEndpoint,
  withLocalApp,
} from "./demo_data.ts";
import { kubeletEnv, objectKey, type Objects } from "./kubelet_env.ts";
import type { Running } from "./running.ts";

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

/** Colours, only when stdout is a terminal and `NO_COLOR` is unset. */
export const green = (text: string): string => paint("32", text);
export const red = (text: string): string => paint("31", text);
export const dim = (text: string): string => paint("2", text);
export const bold = (text: string): string => paint("1", text);

/** A step starts. */
export function step(text: string): void {
  console.log(`${bold("▶")} ${text}`);
}

/** A step succeeded. */
export function done(text: string): void {
  console.log(`${green("✔")} ${text}`);
}

/** A detail of the current step. */
export function note(text: string): void {
  console.log(`  ${dim(text)}`);
}

/** A structured log record as `level message`. */
export function logLine(record: Record<string, unknown>): string {
  return `${String(record.level ?? "")} ${String(record.message ?? "")}`;
}

/** Notes the webhook's log records since `from` whose message matches `pattern`. */
function noteWebhookLogs(webhook: WebhookProcess, from: number, pattern: RegExp): void {
  for (const line of webhook.logs.slice(from)) {
    try {
      const record = JSON.parse(line) as Record<string, unknown>;
      if (pattern.test(String(record.message ?? ""))) note(`webhook: ${logLine(record)}`);
    } catch {
      // not a log record
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The services

/** The running services and what the demo has shown so far. */
export interface DemoContext {
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

/**
 * Starts the Kubernetes API and AWS stand-ins (AWS seeded with `seed`), a CA and the real webhook
 * configured as the Helm chart configures it; each is stopped by `running`.
 */
export async function startServices(seed: AwsSeed, running: Running): Promise<DemoContext> {
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
    allowOwnAddress: true,
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
    const status = await webhook.stop("SIGTERM", 5_000);
    note(`webhook exited with ${status.code}`);
  });
  done(`webhook listening on ${webhook.url} (pid ${webhook.child.pid})`);
  note(
    `PIGGY_ENV_IMAGE=${image}, PIGGY_CA_BUNDLE_FILE=<demo CA>: wrapped containers verify ` +
      "the webhook with that CA",
  );
  return {
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
}

// ---------------------------------------------------------------------------------------------
// Manifests

const STORED_KINDS: Readonly<Record<string, "secrets" | "configmaps" | "serviceaccounts">> = {
  Secret: "secrets",
  ConfigMap: "configmaps",
  ServiceAccount: "serviceaccounts",
};

/** Stores a Secret, ConfigMap or ServiceAccount of a manifest in the Kubernetes stand-in. */
export function storeObject(context: DemoContext, object: KubeObject): void {
  const namespace = object.metadata?.namespace ?? "default";
  const name = object.metadata?.name ?? "";
  const kind = object.kind ?? "";
  if (kind === "Namespace") return note(`namespace ${name}`);
  const resource = STORED_KINDS[kind];
  if (resource === undefined) {
    throw new Error(
      `Cannot apply ${object.kind} "${name}": the demo handles Pods, Secrets, ` +
        "ConfigMaps, ServiceAccounts and Namespaces",
    );
  }
  const stored = kind === "Secret" ? storedSecret(object) : object;
  context.kube.put(resource, stored as never);
  if (kind !== "ServiceAccount") context.objects.set(objectKey(kind, namespace, name), stored);
  note(
    `${kind} ${namespace}/${name} stored in the Kubernetes API` +
      (kind === "Secret" ? " (it holds only references)" : ""),
  );
}

/** The pod as it runs here: the local demo app, the local webhook and AWS addresses. */
function localPod(context: DemoContext, manifestPod: Pod): Pod {
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
  return pod;
}

/**
 * Admits a demo pod through `/mutate`, prints the diff, checks that a second admission changes
 * nothing, stores the pod and starts its wrapped containers.
 */
export async function runPod(context: DemoContext, manifestPod: Pod): Promise<void> {
  context.running.check();
  const namespace = manifestPod.metadata?.namespace ?? "default";
  const name = manifestPod.metadata?.name ?? "";
  const pod = localPod(context, manifestPod);

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
  noteWebhookLogs(context.webhook, logsBefore, /mutated|denied/);
  done(`allowed with a JSON Patch of ${operations} operations; the pod before → after:`);
  let diff = diffLines(yamlLines(pod), yamlLines(mutated));
  if (context.installerShown) diff = collapseInstaller(diff);
  context.installerShown = true;
  const colours = { added: green, removed: red, unchanged: dim };
  for (const line of formatDiff(diff, DIFF_CONTEXT, colours)) console.log(line);

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

// ---------------------------------------------------------------------------------------------
// Containers

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
  noteWebhookLogs(context.webhook, logsBefore, /^Request from/);
  return result;
}

/**
 * The launcher's environment beyond the kubelet's: AWS stand-in credentials for a standalone pod,
 * a pod-bound token file for a proxy pod.
 */
function credentialsEnv(
  context: DemoContext,
  pod: Pod,
  env: Map<string, string>,
): Record<string, string> {
  if (isStandalonePod(pod)) {
    const roleArn = env.get("AWS_ROLE_ARN");
    note(
      `local run: AWS_WEB_IDENTITY_TOKEN_FILE=${
        env.get("AWS_WEB_IDENTITY_TOKEN_FILE") ?? "(unset)"
      } → a token the AWS stand-in's STS accepts`,
    );
    return context.aws.env({
      credentials: "web-identity",
      region: null,
      ...(roleArn ? { roleArn } : {}),
    });
  }
  const namespace = pod.metadata?.namespace ?? "default";
  const podName = pod.metadata?.name ?? "";
  // What the kubelet writes into the projected volume the mutation added: a pod-bound token for
  // Piggy's audience.
  const audience = pod.spec?.volumes?.find((volume) => volume.name === TOKEN_VOLUME_NAME)
    ?.projected?.sources?.[0]?.serviceAccountToken?.audience;
  const token = context.kube.issueToken({
    namespace,
    serviceAccount: pod.spec?.serviceAccountName ?? "default",
    podName,
    ...(audience ? { audiences: [audience] } : {}),
  });
  const tokenFile = join(context.tokenDir, `${namespace}-${podName}-token`);
  writeFileSync(tokenFile, token, { mode: 0o600 });
  note(
    `local run: the projected token of ${env.get(ENV.TOKEN_FILE) ?? CLUSTER_TOKEN_FILE} ` +
      `(audience "${audience ?? "the API server"}") is in ${ENV.TOKEN_FILE}`,
  );
  return { [ENV.TOKEN_FILE]: tokenFile };
}

/**
 * The names whose printed value is the one their `piggy:` reference names in demo/aws.yaml.
 *
 * @throws {Error} when a printed value differs, or when none was printed
 */
function checkPrinted(
  context: DemoContext,
  where: string,
  pod: Pod,
  env: Map<string, string>,
  stdout: string,
): { checked: string[]; label: string } {
  const source = expectedSource(pod, context.seed);
  const printed = printedValues(stdout);
  const checked: string[] = [];
  for (const [name, value] of env) {
    const key = referenceKey(value);
    if (key === undefined || !printed.has(name)) continue;
    const expected = source.values.get(key);
    if (expected === undefined || RESERVED_KEYS.has(key) || printed.get(name) !== expected) {
      throw new Error(
        `${where}: ${name} does not hold the value of "${key}" from ${source.label} ` +
          "(demo/aws.yaml)",
      );
    }
    checked.push(name);
  }
  if (checked.length === 0) throw new Error(`${where} printed no resolved reference`);
  return { checked, label: source.label };
}

/** Runs one wrapped container through piggy-env and checks what the app printed. */
async function startContainer(context: DemoContext, pod: Pod, container: Container) {
  const where = `Container "${container.name}" of pod ${pod.metadata?.namespace ?? "default"}/${
    pod.metadata?.name ?? ""
  }`;
  const standalone = isStandalonePod(pod);
  const env = kubeletEnv(container, pod, context.objects);
  const launcherEnv = { ...Object.fromEntries(env), ...credentialsEnv(context, pod, env) };

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
      `${where} exited with ${result.code ?? result.signal}` +
        (errors.length > 0 ? `: ${errors.join("; ")}` : ""),
    );
  }
  const { checked, label } = checkPrinted(context, where, pod, env, result.stdout);
  if (!result.stdout.includes("launcher variables left in my environment: none")) {
    throw new Error(`Container "${container.name}" still sees piggy-env's own PIGGY_* variables`);
  }
  const appPid = Number(/demo app: pid (\d+)/.exec(result.stdout)?.[1]);
  const sameProcess = appPid === result.pid
    ? `as piggy-env's own process (pid ${appPid}, execve)`
    : `as pid ${appPid} (piggy-env was pid ${result.pid})`;
  done(`${checked.join(", ")} from ${label}; the app ran ${sameProcess}`);

  if (!standalone && !context.integrityShown) {
    context.integrityShown = true;
    await showRefusedCommand(context, launcherEnv);
  }
}

/** Runs another command with a proxy container's token and shows that the webhook refuses it. */
async function showRefusedCommand(context: DemoContext, env: Record<string, string>) {
  const other = [COMMAND_SEPARATOR, "/bin/sh", "-c", "env"];
  step(
    `the same token with another command, as after kubectl exec: ${LAUNCHER_PATH} ` +
      other.join(" "),
  );
  const refused = await launch(context, other, env);
  if (refused.code === 0 || refused.stdout !== "") {
    throw new Error(`piggy-env ran "${other.slice(1).join(" ")}" with the pod's secrets`);
  }
  done(
    `refused (exit ${refused.code}): the command is not the one signed at admission ` +
      "(piggy-enforce-integrity, on by default)",
  );
}

/** Prints why the demo failed and the webhook's last log lines. */
export function showFailure(failure: unknown, running: Running): void {
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
