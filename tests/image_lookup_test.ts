/**
 * Wrapped containers without `command`: the real webhook process reads the image config from
 * Debian's real `docker-registry` (TLS from a test CA, htpasswd) with pull secrets read from the
 * Kubernetes API stand-in, wraps and signs the command Kubernetes would run, and the real piggy-env
 * then runs it with its secrets. Each credential source (pod imagePullSecrets, the
 * `image-pull-secret` annotation in dockercfg format, the service account's imagePullSecrets, ECR
 * through the AWS stand-in), wrong and missing credentials, an untrusted certificate, a registry
 * that never answers, warn-and-skip and off modes, other-namespace secrets, and 50 simultaneous
 * admissions of one image (one registry round trip).
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer as createNetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import { createMutateHandler } from "../src/admission/mutate_handler.ts";
import { parseWebhookOptions } from "../src/config/webhook_options.ts";
import { createKubeClient } from "../src/k8s/http_client.ts";
import { parseKubeConfig } from "../src/k8s/kubeconfig.ts";
import { Logger } from "../src/log.ts";
import { commandSignature } from "../src/pod/signature.ts";
import { DEFAULT_TOKEN_AUDIENCE, ENV } from "../src/constants.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { AwsEcrCredentialSource } from "../src/registry/ecr.ts";
import { type AwsStandIn, startAwsStandIn, STATIC_CREDENTIALS, withEnv } from "../testing/aws.ts";
import {
  admissionReview,
  admitPod,
  type Admitted,
  persistPod,
  uidAnnotation,
} from "../testing/flow.ts";
import { type KubeApiStandIn, startKubeApi } from "../testing/kube_api.ts";
import { kubeletArgv, kubeletEnv } from "../testing/kubelet_env.ts";
import {
  type LauncherResult,
  parseReport,
  REPORT_APP,
  runLauncher,
} from "../testing/launcher_process.ts";
import { createTestCa, type TestCa } from "../testing/pki.ts";
import { startRegistry, type TestRegistry } from "../testing/registry.ts";
import { startWebhook, type WebhookProcess } from "../testing/webhook_process.ts";
import { TEST_SEAL_KEY } from "../testing/fixtures/pods/_support.ts";

const NAMESPACE = "shop";
const CANARY = `PIGGY-CANARY-${crypto.randomUUID()}`;
const ECR_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const ALICE = { user: "alice", password: `pw-${crypto.randomUUID()}` };

let ca: TestCa;
let registry: TestRegistry;
let kube: KubeApiStandIn;
let aws: AwsStandIn;
let webhook: WebhookProcess;
let tokenDir: string;

function dockerConfigJson(host: string, user: string, password: string): string {
  return Buffer.from(JSON.stringify({ auths: { [host]: { username: user, password } } }))
    .toString("base64");
}

function dockerCfg(host: string, user: string, password: string): string {
  const auth = Buffer.from(`${user}:${password}`).toString("base64");
  return Buffer.from(JSON.stringify({ [`https://${host}`]: { auth } })).toString("base64");
}

function putPullSecret(
  namespace: string,
  name: string,
  format: "json" | "cfg",
  password = ALICE.password,
): void {
  kube.put("secrets", {
    metadata: { name, namespace },
    type: format === "json" ? "kubernetes.io/dockerconfigjson" : "kubernetes.io/dockercfg",
    data: format === "json"
      ? { ".dockerconfigjson": dockerConfigJson(registry.host, ALICE.user, password) }
      : { ".dockercfg": dockerCfg(registry.host, ALICE.user, password) },
  } as never);
}

before(async () => {
  ca = createTestCa("image-lookup");
  aws = await startAwsStandIn();
  aws.ecrPassword = `ecr-${crypto.randomUUID()}`;
  aws.putSecret("shop/checkout", {
    string: JSON.stringify({ DB_PASSWORD: CANARY, PIGGY_ALLOWED_SA: "shop:checkout" }),
  });
  [registry, kube] = await Promise.all([
    startRegistry({
      ca,
      auth: { kind: "htpasswd", users: { [ALICE.user]: ALICE.password, AWS: aws.ecrPassword } },
      serverNames: [ECR_HOST],
    }),
    startKubeApi(),
  ]);
  await Promise.all([
    registry.push("shop/report", "v1", { entrypoint: [REPORT_APP], cmd: ["--from-image", "yes"] }),
    registry.push("shop/cmd-only", "v1", { cmd: ["/bin/server", "--port", "80"] }),
    registry.push("shop/entry-only", "v1", { entrypoint: ["/bin/server"] }),
    registry.push("shop/empty", "v1", {}),
    registry.push("shop/busy", "v1", { entrypoint: ["/bin/busy"] }),
    // `$` in image text: the kubelet must run it as written, never expand it.
    registry.push("shop/dollar", "v1", {
      entrypoint: [REPORT_APP, "--cost=$1"],
      cmd: ["--price", "$5", "$(HOME)", "$$x"],
    }),
    registry.push("shop/multi", "v1", {
      index: [
        { architecture: "amd64", entrypoint: ["/bin/amd"] },
        { architecture: "arm64", entrypoint: ["/bin/arm"] },
      ],
    }),
  ]);
  putPullSecret(NAMESPACE, "pod-pull", "json");
  putPullSecret(NAMESPACE, "annotated-pull", "cfg");
  putPullSecret(NAMESPACE, "sa-pull", "json");
  putPullSecret(NAMESPACE, "wrong-pull", "json", "not-the-password");
  putPullSecret("other", "shared-pull", "json");
  kube.put("serviceaccounts", {
    metadata: { name: "with-pull", namespace: NAMESPACE },
    imagePullSecrets: [{ name: "sa-pull" }],
  } as never);
  webhook = await startWebhook({
    ca,
    allowOwnAddress: true,
    env: {
      KUBECONFIG: kube.kubeconfigPath,
      PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:test",
      PIGGY_CA_BUNDLE_FILE: ca.certFile,
      PIGGY_REGISTRY_CA_BUNDLE_FILE: ca.certFile,
      PIGGY_REGISTRY_ALLOW_LOOPBACK: "true",
      ...aws.env({ credentials: "static", region: "eu-west-1" }),
    },
  });
  tokenDir = mkdtempSync(join(tmpdir(), "piggy-image-token-"));
});

after(async () => {
  await webhook?.stop();
  await Promise.all([registry?.stop(), aws?.close(), kube?.close()]);
  rmSync(tokenDir, { recursive: true, force: true });
  rmSync(ca.dir, { recursive: true, force: true });
});

function pod(
  container: Partial<Container>,
  options: { annotations?: Record<string, string>; pullSecrets?: string[]; sa?: string } = {},
): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "checkout-",
      annotations: {
        "piggysec.com/piggy-address": webhook.url,
        "piggysec.com/aws-secret-name": "shop/checkout",
        ...options.annotations,
      },
    },
    spec: {
      serviceAccountName: options.sa ?? "checkout",
      ...(options.pullSecrets
        ? { imagePullSecrets: options.pullSecrets.map((name) => ({ name })) }
        : {}),
      containers: [{
        name: "app",
        image: `${registry.host}/shop/report:v1`,
        env: [{ name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" }],
        ...container,
      }],
    },
  };
}

function denial(admitted: Admitted): string {
  assert.equal(admitted.review.response.allowed, false, JSON.stringify(admitted.review.response));
  return admitted.review.response.status?.message ?? "";
}

function wrapped(admitted: Admitted): Container {
  assert.equal(admitted.review.response.allowed, true, JSON.stringify(admitted.review.response));
  const container = admitted.pod.spec!.containers[0]!;
  assert.deepEqual(container.command, ["/piggy/piggy-env"]);
  return container;
}

test("the looked-up image's wrapped command runs through piggy-env with its secrets", async () => {
  const admitted = await admitPod(webhook, pod({}, { pullSecrets: ["pod-pull"] }), NAMESPACE);
  const container = wrapped(admitted);
  assert.deepEqual(container.args, ["--", REPORT_APP, "--from-image", "yes"]);
  const signatures = Object.values(uidAnnotation(admitted.pod));
  assert.deepEqual(signatures, [commandSignature([REPORT_APP, "--from-image", "yes"])]);

  const name = `checkout-${crypto.randomUUID().slice(0, 8)}`;
  const stored = persistPod(kube, admitted.pod, NAMESPACE, name);
  const tokenFile = join(tokenDir, name);
  writeFileSync(
    tokenFile,
    kube.issueToken({
      namespace: NAMESPACE,
      serviceAccount: "checkout",
      podName: name,
      audiences: [DEFAULT_TOKEN_AUDIENCE],
    }),
  );
  const env: Record<string, string> = {};
  for (const entry of stored.spec!.containers[0]!.env ?? []) {
    if (entry.value !== undefined) env[entry.name] = entry.value;
    else if (entry.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[entry.name] = name;
  }
  // The kubelet mounts the projected token where PIGGY_TOKEN_FILE points; here a local file.
  env.PIGGY_TOKEN_FILE = tokenFile;
  const result = await runLauncher({ args: container.args!, env });
  assert.equal(result.code, 0, result.stderr);
  const report = parseReport(result.stdout);
  assert.deepEqual(report.args, ["--from-image", "yes"]);
  assert.equal(new Map(report.env).get("DB_PASSWORD"), CANARY);
});

/**
 * Persists the admitted pod under a fresh name and starts its container as the kubelet would
 * (env and argv expanded, the projected token at a local path): the real launcher then calls the
 * webhook's /secret.
 */
async function startAdmitted(admitted: Pod): Promise<LauncherResult> {
  const name = `checkout-${crypto.randomUUID().slice(0, 8)}`;
  const stored = persistPod(kube, admitted, NAMESPACE, name);
  const container = stored.spec!.containers[0]!;
  const env = kubeletEnv(container, stored, new Map());
  const tokenFile = join(tokenDir, name);
  writeFileSync(
    tokenFile,
    kube.issueToken({
      namespace: NAMESPACE,
      serviceAccount: "checkout",
      podName: name,
      audiences: [DEFAULT_TOKEN_AUDIENCE],
    }),
  );
  env.set(ENV.TOKEN_FILE, tokenFile);
  const argv = kubeletArgv(container, env);
  assert.equal(argv[0], "/piggy/piggy-env");
  return await runLauncher({ args: argv.slice(1), env: Object.fromEntries(env) });
}

test("an image command with $ passes /secret with the real launcher, admitted once or twice", async () => {
  const image = `${registry.host}/shop/dollar:v1`;
  const first = await admitPod(webhook, pod({ image }, { pullSecrets: ["pod-pull"] }), NAMESPACE);
  // Each `$` of image text is doubled, so the kubelet's expansion gives it back unchanged.
  assert.deepEqual(wrapped(first).args, [
    "--",
    REPORT_APP,
    "--cost=$$1",
    "--price",
    "$$5",
    "$$(HOME)",
    "$$$$x",
  ]);
  // Re-admission of the mutated spec (a copy of a running pod, a reinvocation): the wrapped
  // container's signature is recomputed from its escaped args, and nothing changes.
  const again = await admitPod(webhook, first.pod, NAMESPACE);
  assert.equal(again.review.response.allowed, true, JSON.stringify(again.review.response));
  assert.deepEqual(again.pod, first.pod);
  // The container's own args with $(VAR) of a literal value, after the image's Entrypoint.
  const withArgs = await admitPod(
    webhook,
    pod({
      image,
      args: ["--port=$(PORT)"],
      env: [
        { name: "PORT", value: "8080" },
        { name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" },
      ],
    }, { pullSecrets: ["pod-pull"] }),
    NAMESPACE,
  );
  const cases: Array<[string, Pod, string[]]> = [
    ["first admission", first.pod, ["--cost=$1", "--price", "$5", "$(HOME)", "$$x"]],
    ["re-admission", again.pod, ["--cost=$1", "--price", "$5", "$(HOME)", "$$x"]],
    ["args with $(PORT)", withArgs.pod, ["--cost=$1", "--port=8080"]],
  ];
  for (const [label, admitted, args] of cases) {
    const result = await startAdmitted(admitted);
    assert.equal(result.code, 0, `${label}: ${result.stderr}`);
    const report = parseReport(result.stdout);
    assert.deepEqual(report.args, args, label);
    assert.equal(new Map(report.env).get("DB_PASSWORD"), CANARY, label);
  }
});

test("Kubernetes' rules: args replace Cmd, Entrypoint-only and Cmd-only images", async () => {
  const withArgs = wrapped(
    await admitPod(webhook, pod({ args: ["--mine"] }, { pullSecrets: ["pod-pull"] }), NAMESPACE),
  );
  assert.deepEqual(withArgs.args, ["--", REPORT_APP, "--mine"]);
  const cmdOnly = wrapped(
    await admitPod(
      webhook,
      pod({ image: `${registry.host}/shop/cmd-only:v1` }, { pullSecrets: ["pod-pull"] }),
      NAMESPACE,
    ),
  );
  assert.deepEqual(cmdOnly.args, ["--", "/bin/server", "--port", "80"]);
  const entryOnly = wrapped(
    await admitPod(
      webhook,
      pod({ image: `${registry.host}/shop/entry-only:v1` }, { pullSecrets: ["pod-pull"] }),
      NAMESPACE,
    ),
  );
  assert.deepEqual(entryOnly.args, ["--", "/bin/server"]);
  const empty = denial(
    await admitPod(
      webhook,
      pod({ image: `${registry.host}/shop/empty:v1` }, { pullSecrets: ["pod-pull"] }),
      NAMESPACE,
    ),
  );
  assert.match(empty, /neither Entrypoint nor Cmd/);
});

test("credential sources: image-pull-secret annotation (dockercfg) and the service account", async () => {
  const annotated = await admitPod(
    webhook,
    pod({}, { annotations: { "piggysec.com/image-pull-secret": "annotated-pull" } }),
    NAMESPACE,
  );
  wrapped(annotated);
  const viaSa = await admitPod(webhook, pod({}, { sa: "with-pull" }), NAMESPACE);
  wrapped(viaSa);
  // A missing secret is skipped, as the kubelet does; the next source still applies.
  wrapped(await admitPod(webhook, pod({}, { pullSecrets: ["absent", "pod-pull"] }), NAMESPACE));
});

test("no, wrong and other-namespace credentials deny the pod, naming container, image and reason", async () => {
  const image = `${registry.host}/shop/report:v1`;
  const none = denial(await admitPod(webhook, pod({}), NAMESPACE));
  assert.match(none, new RegExp(`container "app" \\(image "${image}"\\)`));
  assert.match(none, /requires credentials/);
  assert.match(none, /Set "command"/);
  const wrong = denial(
    await admitPod(webhook, pod({}, { pullSecrets: ["wrong-pull"] }), NAMESPACE),
  );
  assert.match(wrong, /refused the pull-secret credentials/);
  assert.doesNotMatch(wrong, /not-the-password/);
  const other = denial(
    await admitPod(
      webhook,
      pod({}, {
        annotations: {
          "piggysec.com/image-pull-secret": "shared-pull",
          "piggysec.com/image-pull-secret-namespace": "other",
        },
      }),
      NAMESPACE,
    ),
  );
  assert.match(other, /PIGGY_IMAGE_PULL_SECRET_ANY_NAMESPACE/);
  const missing = denial(
    await admitPod(
      webhook,
      pod({ image: `${registry.host}/shop/absent:v1` }, { pullSecrets: ["pod-pull"] }),
      NAMESPACE,
    ),
  );
  assert.match(missing, /was not found/);
});

test("platform: the pod's arch nodeSelector, the override annotation, and disagreeing platforms", async () => {
  const image = `${registry.host}/shop/multi:v1`;
  const amd = wrapped(
    await admitPod(webhook, pod({ image }, { pullSecrets: ["pod-pull"] }), NAMESPACE),
  );
  assert.deepEqual(amd.args, ["--", "/bin/amd"]);
  const armPod = pod({ image }, { pullSecrets: ["pod-pull"] });
  armPod.spec!.nodeSelector = { "kubernetes.io/arch": "arm64" };
  assert.deepEqual(wrapped(await admitPod(webhook, armPod, NAMESPACE)).args, ["--", "/bin/arm"]);
  const overridden = pod({ image }, {
    pullSecrets: ["pod-pull"],
    annotations: { "piggysec.com/image-platform": "linux/arm64" },
  });
  assert.deepEqual(wrapped(await admitPod(webhook, overridden, NAMESPACE)).args, [
    "--",
    "/bin/arm",
  ]);
  const either = pod({ image }, { pullSecrets: ["pod-pull"] });
  either.spec!.affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{
          matchExpressions: [{
            key: "kubernetes.io/arch",
            operator: "In",
            values: ["amd64", "arm64"],
          }],
        }],
      },
    },
  };
  assert.match(denial(await admitPod(webhook, either, NAMESPACE)), /different Entrypoint\/Cmd/);
});

test("50 simultaneous admissions of one image make one registry round trip", async () => {
  await registry.settled();
  const count = () =>
    registry.requests().filter((r) =>
      r.method === "GET" && r.uri.startsWith("/v2/shop/busy/manifests/")
    )
      .length;
  const before = count();
  const metricsBefore = await imageLookupMetrics();
  const answers = await Promise.all(
    Array.from({ length: 50 }, () =>
      admitPod(
        webhook,
        pod({ image: `${registry.host}/shop/busy:v1` }, { pullSecrets: ["pod-pull"] }),
        NAMESPACE,
      )),
  );
  for (const answer of answers) assert.deepEqual(wrapped(answer).args, ["--", "/bin/busy"]);
  await registry.settled();
  assert.equal(count() - before, 1);
  // And the next admission is served from the cache.
  wrapped(
    await admitPod(
      webhook,
      pod({ image: `${registry.host}/shop/busy:v1` }, { pullSecrets: ["pod-pull"] }),
      NAMESPACE,
    ),
  );
  await registry.settled();
  assert.equal(count() - before, 1);
  const metrics = await imageLookupMetrics();
  assert.equal(metrics.miss - metricsBefore.miss, 1);
  assert.equal(metrics.coalesced + metrics.hit - metricsBefore.coalesced - metricsBefore.hit, 50);
  assert.equal(metrics.error - metricsBefore.error, 0);
});

/** `piggy_image_lookups_total` of the webhook, by result. */
async function imageLookupMetrics(): Promise<
  Record<"hit" | "miss" | "coalesced" | "error", number>
> {
  const text = await (await webhook.fetch("/metrics")).text();
  const value = (result: string) =>
    Number(
      new RegExp(`^piggy_image_lookups_total\\{result="${result}"\\} (\\d+)$`, "m").exec(text)
        ?.[1] ?? 0,
    );
  return {
    hit: value("hit"),
    miss: value("miss"),
    coalesced: value("coalesced"),
    error: value("error"),
  };
}

// In-process: the same handler the webhook runs, with options a second process would need.

function kubeClient() {
  const readText = (path: string) => readFileSync(path, "utf8");
  return createKubeClient(
    parseKubeConfig(readText(kube.kubeconfigPath), {
      path: kube.kubeconfigPath,
      readFile: readText,
    }),
  );
}

async function admitInProcess(
  subject: Pod,
  env: Record<string, string>,
  registryOptions: ConstructorParameters<typeof RegistryClient>[0] = {},
  ecr?: AwsEcrCredentialSource,
) {
  // The pods name the process webhook's address (see pod()): allow it here too.
  const allowed: Record<string, string> = { PIGGY_ALLOWED_ADDRESSES: webhook.url, ...env };
  const options = parseWebhookOptions((name) => allowed[name]);
  const client = new RegistryClient({
    caCertificates: ca.cert,
    allowLoopback: true,
    lookupTimeoutMs: options.imageLookupTimeoutMs,
    ...registryOptions,
  });
  const kubeApi = kubeClient();
  try {
    const handler = createMutateHandler({
      kube: kubeApi,
      options,
      logger: new Logger({ sink: () => {} }),
      sealKeys: [TEST_SEAL_KEY],
      images: {
        registry: client,
        ...(ecr ? { ecr } : {}),
        mode: options.imageLookup,
        timeoutMs: options.imageLookupTimeoutMs,
        allowOtherNamespaces: options.imagePullSecretAnyNamespace,
        forbidSkipVerify: options.imageForbidSkipVerify,
      },
    });
    const response = await handler(
      new Request("https://piggy/mutate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(admissionReview(subject, NAMESPACE)),
      }),
    );
    return (await response.json()) as Admitted["review"];
  } finally {
    client.close();
    kubeApi.close();
  }
}

const BASE_ENV = { PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:test" };

test("ECR: a token from GetAuthorizationToken (AWS stand-in) for an ECR host only", async () => {
  const port = Number(registry.host.split(":")[1]);
  const ecr = new AwsEcrCredentialSource({ credentials: { ...STATIC_CREDENTIALS } });
  try {
    await withEnv(aws.env({ credentials: "static", region: "eu-west-1" }), async () => {
      const before = aws.count("GetAuthorizationToken");
      const review = await admitInProcess(
        pod({ image: `${ECR_HOST}/shop/report:v1` }),
        BASE_ENV,
        {
          connectOverride: (host) => (host === ECR_HOST ? { host: "127.0.0.1", port } : undefined),
        },
        ecr,
      );
      assert.equal(review.response.allowed, true, JSON.stringify(review.response));
      assert.equal(aws.count("GetAuthorizationToken") - before, 1);
      // Never without TLS verification.
      const unverified = await admitInProcess(
        pod({ image: `${ECR_HOST}/shop/report:v1` }, {
          annotations: { "piggysec.com/image-skip-verify-registry": "true" },
        }),
        BASE_ENV,
        {
          connectOverride: (host) => (host === ECR_HOST ? { host: "127.0.0.1", port } : undefined),
        },
        ecr,
      );
      assert.equal(unverified.response.allowed, false);
      assert.match(
        unverified.response.status?.message ?? "",
        /never sent without TLS verification/,
      );
      // The ECR token is never offered to another host: the loopback registry needs credentials.
      const other = await admitInProcess(pod({}), BASE_ENV, {}, ecr);
      assert.equal(other.response.allowed, false);
      assert.equal(aws.count("GetAuthorizationToken") - before, 1);
    });
  } finally {
    ecr.close();
  }
});

test("options: other-namespace secrets allowed, warn-and-skip, lookups off", async () => {
  const otherNs = pod({}, {
    annotations: {
      "piggysec.com/image-pull-secret": "shared-pull",
      "piggysec.com/image-pull-secret-namespace": "other",
    },
  });
  const allowed = await admitInProcess(otherNs, {
    ...BASE_ENV,
    PIGGY_IMAGE_PULL_SECRET_ANY_NAMESPACE: "true",
  });
  assert.equal(allowed.response.allowed, true, JSON.stringify(allowed.response));

  const warn = await admitInProcess(pod({}), { ...BASE_ENV, PIGGY_IMAGE_LOOKUP: "warn" });
  assert.equal(warn.response.allowed, true, JSON.stringify(warn.response));
  assert.equal(warn.response.patch, undefined, "the only candidate container stays unwrapped");
  assert.ok(
    warn.response.warnings?.some((w) => /^Container "app" left unwrapped .*set "command"/.test(w)),
    JSON.stringify(warn.response),
  );

  const off = await admitInProcess(pod({}, { pullSecrets: ["pod-pull"] }), {
    ...BASE_ENV,
    PIGGY_IMAGE_LOOKUP: "off",
  });
  assert.equal(off.response.allowed, false);
  assert.match(off.response.status?.message ?? "", /has no "command"/);
});

test("an untrusted registry certificate and a registry that never answers deny in time", async () => {
  const untrusted = await admitInProcess(pod({}, { pullSecrets: ["pod-pull"] }), BASE_ENV, {
    caCertificates: createTestCa("other").cert,
  });
  assert.equal(untrusted.response.allowed, false);
  assert.match(untrusted.response.status?.message ?? "", /not trusted/);
  // The pod may opt out of verification, unless the webhook forbids it.
  const skipping = pod({}, {
    pullSecrets: ["pod-pull"],
    annotations: { "piggysec.com/image-skip-verify-registry": "true" },
  });
  const skipped = await admitInProcess(skipping, BASE_ENV, {
    caCertificates: createTestCa("other").cert,
  });
  assert.equal(skipped.response.allowed, true, JSON.stringify(skipped.response));
  const forbidden = await admitInProcess(skipping, {
    ...BASE_ENV,
    PIGGY_IMAGE_FORBID_SKIP_VERIFY: "true",
  });
  assert.equal(forbidden.response.allowed, false);
  assert.match(forbidden.response.status?.message ?? "", /PIGGY_IMAGE_FORBID_SKIP_VERIFY/);

  const sockets: Socket[] = [];
  const silent = createNetServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = silent.address() as AddressInfo;
    const started = Date.now();
    const review = await admitInProcess(
      pod({ image: `127.0.0.1:${port}/shop/report:v1` }),
      { ...BASE_ENV, PIGGY_IMAGE_LOOKUP_TIMEOUT: "2s" },
    );
    assert.equal(review.response.allowed, false);
    // On a loaded machine the deadline may already hit the service-account read.
    assert.match(review.response.status?.message ?? "", /deadline|timeout/);
    assert.ok(Date.now() - started < 20_000, "the admission deadline ended the lookup");
  } finally {
    sockets.forEach((s) => s.destroy());
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});
