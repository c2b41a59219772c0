/**
 * Conformance of /mutate with Go Piggy 0.7, through the handler: the cases of its admit_test.go,
 * mutate_test.go and pod_test.go, plus cases derived from its code. Every answer is applied as a
 * JSON Patch to the request object, the result is validated against the Kubernetes Pod schema, and
 * a second pass over it must yield no patch. Where Go Piggy misbehaves, the test name starts with
 * "fixed:" and says what we do instead (docs/migration.md lists these differences).
 */
import { parseWebhookOptions } from "../src/config/webhook_options.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Container, EnvVar, Pod } from "kubernetes-types/core/v1.d.ts";
import { createMutateHandler } from "../src/admission/mutate_handler.ts";
import type { AdmissionReviewResponse } from "../src/admission/types.ts";
import {
  ENV,
  INSTALLER_NAME,
  PIGGY_SEAL_ANNOTATION,
  PIGGY_UID_ANNOTATION,
  TOKEN_VOLUME_NAME,
  VOLUME_NAME,
} from "../src/constants.ts";
import { KubeApiError } from "../src/errors.ts";
import { FakeKubeClient } from "../src/k8s/fake.ts";
import { commandSignature } from "../src/pod/signature.ts";
import { assertValidPod, unknownPodFields } from "../testing/fixtures/pods/_pod_schema.ts";
import {
  applyReview,
  captureLogger,
  CHART_ENV,
  envOf,
  loadPod,
  mutateRequest,
  patchOf,
  podWith,
  readJson,
  reviewOf,
  sequentialUids,
  TEST_SEAL_KEY,
} from "../testing/fixtures/pods/_support.ts";

const P = "piggysec.com/";
const UID1 = "1".padStart(32, "0");
const UID2 = "2".padStart(32, "0");
const UID3 = "3".padStart(32, "0");

interface Setup {
  env?: Record<string, string>;
  kube?: FakeKubeClient;
  newUid?: () => string;
}

async function admit(
  pod: Pod,
  setup: Setup = {},
  options: Parameters<typeof reviewOf>[1] = {},
): Promise<AdmissionReviewResponse> {
  const { logger } = captureLogger();
  const mutate = createMutateHandler({
    kube: setup.kube ?? new FakeKubeClient(),
    options: parseWebhookOptions(envOf(setup.env ?? CHART_ENV)),
    logger,
    newUid: setup.newUid ?? sequentialUids(),
    sealKeys: [TEST_SEAL_KEY],
  });
  const response = await mutate(mutateRequest(reviewOf(pod, options)));
  assert.equal(response.status, 200);
  const { body } = await readJson(response);
  assert.equal(body.apiVersion, "admission.k8s.io/v1");
  assert.equal(body.kind, "AdmissionReview");
  assert.equal(body.response.uid, (reviewOf(pod, options).request as { uid: string }).uid);
  assert.equal(body.response.patch === undefined, body.response.patchType === undefined);
  return body;
}

/**
 * Admits the pod, applies the patch, validates the result, and checks that a second pass (with
 * other UIDs on offer) yields no patch.
 */
async function admitTwice(
  pod: Pod,
  setup: Setup = {},
): Promise<{ review: AdmissionReviewResponse; patched: Pod }> {
  const review = await admit(pod, setup);
  assert.equal(review.response.allowed, true, review.response.status?.message);
  const patched = applyReview(pod, review);
  assertValidPod(patched, pod);
  const again = await admit(patched, { ...setup, newUid: () => "f".repeat(32) });
  assert.equal(again.response.allowed, true);
  assert.deepEqual(patchOf(again), [], "second pass must not patch");
  return { review, patched };
}

function container(pod: Pod, name: string): Container | undefined {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) =>
    c.name === name
  );
}

function envMap(c: Container | undefined): Map<string, EnvVar> {
  return new Map((c?.env ?? []).map((entry) => [entry.name, entry]));
}

function uidMap(pod: Pod): Record<string, string> {
  return JSON.parse(pod.metadata?.annotations?.[PIGGY_UID_ANNOTATION] ?? "null");
}

function b64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

// Go Piggy piggy-webhooks/handler/admit_test.go

test("one installer and one piggy-env volume, also after a second pass", async () => {
  const pod = loadPod("app");
  const { patched } = await admitTwice(pod);
  assert.equal(patched.spec?.initContainers?.length, 1);
  assert.equal(patched.spec?.initContainers?.[0]?.name, INSTALLER_NAME);
  assert.deepEqual(patched.spec?.volumes?.map((v) => v.name), [VOLUME_NAME, TOKEN_VOLUME_NAME]);
});

test("fixed: only aws-secret-name and no address is denied instead of a crash-looping pod", async () => {
  const review = await admit(loadPod("app"), { env: { PIGGY_ENV_IMAGE: "img" } });
  assert.equal(review.response.allowed, false);
  assert.match(review.response.status?.message ?? "", /piggy-address/);
});

test("fixed: a container without command is denied instead of being left unwrapped", async () => {
  const pod = loadPod("app");
  delete pod.spec!.containers[0]!.command;
  const review = await admit(pod);
  assert.equal(review.response.allowed, false);
  assert.match(review.response.status?.message ?? "", /Container "app" has no "command"/);
});

// Go Piggy piggy-webhooks/mutate/mutate_test.go

test("a valueFrom ConfigMap or Secret key holding piggy: wraps the container", async () => {
  const kube = new FakeKubeClient()
    .put("configmaps", {
      metadata: { name: "test-cm", namespace: "default" },
      data: { key1: "piggy:secret1" },
    })
    .put("secrets", {
      metadata: { name: "test-secret", namespace: "default" },
      data: { skey1: b64("piggy:secret2") },
    });
  const pod = loadPod("app");
  pod.spec!.containers[0]!.env = [
    { name: "VAR1", valueFrom: { configMapKeyRef: { name: "test-cm", key: "key1" } } },
  ];
  pod.spec!.containers.push({
    name: "second",
    image: "x",
    command: ["/second"],
    env: [{ name: "VAR3", valueFrom: { secretKeyRef: { name: "test-secret", key: "skey1" } } }],
  });
  const { patched } = await admitTwice(pod, { kube });
  assert.deepEqual(container(patched, "app")?.command, ["/piggy/piggy-env"]);
  assert.deepEqual(container(patched, "second")?.command, ["/piggy/piggy-env"]);
  // The original valueFrom entries are untouched.
  assert.deepEqual(container(patched, "app")?.env?.[0], pod.spec!.containers[0]!.env[0]);
});

test("a valueFrom key with a plain value does not wrap the container (no patch)", async () => {
  const kube = new FakeKubeClient().put("configmaps", {
    metadata: { name: "test-cm", namespace: "default" },
    data: { key2: "normal-value" },
  });
  const pod = loadPod("app");
  pod.spec!.containers[0]!.env = [
    { name: "VAR2", valueFrom: { configMapKeyRef: { name: "test-cm", key: "key2" } } },
  ];
  const review = await admit(pod, { kube });
  assert.equal(review.response.allowed, true);
  assert.equal(review.response.patch, undefined);
});

test("envFrom ConfigMap and Secret sources wrap the container", async () => {
  const kube = new FakeKubeClient()
    .put("configmaps", {
      metadata: { name: "cm", namespace: "default" },
      data: { key1: "piggy:secret1" },
    })
    .put("secrets", {
      metadata: { name: "sec", namespace: "default" },
      data: { skey1: b64("piggy:s") },
    });
  for (const envFrom of [[{ configMapRef: { name: "cm" } }], [{ secretRef: { name: "sec" } }]]) {
    const pod = loadPod("app");
    pod.spec!.containers[0]!.env = [];
    pod.spec!.containers[0]!.envFrom = envFrom;
    const { patched } = await admitTwice(pod, { kube });
    assert.deepEqual(patched.spec?.containers[0]?.envFrom, envFrom);
    assert.deepEqual(patched.spec?.containers[0]?.command, ["/piggy/piggy-env"]);
  }
});

test("the pod keeps its name and is mutated", async () => {
  const pod = podWith("app", { annotations: { [`${P}aws-secret-name`]: "my-secret" } });
  pod.spec!.containers[0]!.env = [{ name: "DB_PASS", value: "piggy:db-pass" }];
  const { patched } = await admitTwice(pod);
  assert.equal(patched.metadata?.name, "test-pod");
  assert.equal(envMap(patched.spec?.containers[0]).get(ENV.AWS_SECRET_NAME)?.value, "my-secret");
});

test("missing ConfigMaps and Secrets are skipped, optional or not (no patch)", async () => {
  const pod = loadPod("app");
  pod.spec!.containers[0]!.env = [
    { name: "A", valueFrom: { configMapKeyRef: { name: "missing", key: "k" } } },
    { name: "B", valueFrom: { secretKeyRef: { name: "missing", key: "k" } } },
  ];
  pod.spec!.containers[0]!.envFrom = [
    { configMapRef: { name: "missing-optional", optional: true } },
    { configMapRef: { name: "missing-required" } },
  ];
  const review = await admit(pod);
  assert.equal(review.response.allowed, true);
  assert.equal(review.response.patch, undefined);
});

test("fixed: a ConfigMap API error denies the pod with the reason instead of HTTP 500", async () => {
  for (const placement of ["valueFrom", "envFrom"] as const) {
    const kube = new FakeKubeClient().fail("configmaps", new KubeApiError("k8s error", 500));
    const pod = loadPod("app");
    pod.spec!.containers[0]!.env = placement === "valueFrom"
      ? [{ name: "V", valueFrom: { configMapKeyRef: { name: "test-cm", key: "k" } } }]
      : [];
    if (placement === "envFrom") {
      pod.spec!.containers[0]!.envFrom = [{ configMapRef: { name: "test-cm" } }];
    }
    const review = await admit(pod, { kube });
    assert.equal(review.response.allowed, false);
    assert.match(review.response.status?.message ?? "", /k8s error/);
    assert.match(review.response.status?.message ?? "", /ConfigMap "test-cm"/);
  }
});

test("annotations set the installer; the address falls back to the webhook env", async () => {
  const pod = podWith("app", {
    annotations: {
      [`${P}piggy-env-image`]: "custom-image",
      [`${P}piggy-env-image-pull-policy`]: "IfNotPresent",
      [`${P}piggy-env-resource-cpu-request`]: "100m",
      [`${P}piggy-env-resource-memory-request`]: "128Mi",
      [`${P}piggy-env-resource-cpu-limit`]: "500m",
      [`${P}piggy-env-resource-memory-limit`]: "256Mi",
      [`${P}piggy-psp-allow-privilege-escalation`]: "true",
      [`${P}aws-secret-name`]: "my-secret",
      [`${P}debug`]: "true",
    },
  });
  const { patched } = await admitTwice(pod, {
    env: { PIGGY_ADDRESS: "https://env-address", PIGGY_ALLOWED_ADDRESSES: "https://env-address" },
  });
  const installer = patched.spec?.initContainers?.[0];
  assert.equal(installer?.image, "custom-image");
  assert.equal(installer?.imagePullPolicy, "IfNotPresent");
  assert.equal(installer?.resources?.requests?.cpu, "100m");
  assert.equal(installer?.securityContext?.allowPrivilegeEscalation, true);
  const env = envMap(patched.spec?.containers[0]);
  assert.equal(env.get(ENV.AWS_SECRET_NAME)?.value, "my-secret");
  assert.equal(env.get(ENV.DEBUG)?.value, "true");
  assert.equal(env.get(ENV.ADDRESS)?.value, "https://env-address");
});

test("fixed: a container without command and without piggy: env is left alone (no patch)", async () => {
  const pod = loadPod("app");
  delete pod.spec!.containers[0]!.command;
  pod.spec!.containers[0]!.env = [{ name: "PLAIN", value: "x" }];
  const review = await admit(pod);
  assert.equal(review.response.allowed, true);
  assert.equal(review.response.patch, undefined);
});

test("every optional launcher setting is injected", async () => {
  const pod = podWith("app", {
    annotations: {
      [`${P}aws-secret-name`]: "my-secret",
      [`${P}aws-region`]: "us-east-1",
      [`${P}piggy-address`]: "https://piggy",
      [`${P}piggy-ignore-no-env`]: "true",
      [`${P}piggy-dns-resolver`]: "1.1.1.1",
      [`${P}piggy-initial-delay`]: "5s",
      [`${P}piggy-number-of-retry`]: "3",
    },
  });
  pod.spec!.containers[0] = {
    name: "app",
    image: "x",
    command: ["echo"],
    env: [{ name: "TRIGGER", value: "piggy:trigger" }],
  };
  const { patched } = await admitTwice(pod, {
    env: { ...CHART_ENV, PIGGY_ALLOWED_ADDRESSES: "https://piggy" },
  });
  const env = envMap(patched.spec?.containers[0]);
  assert.equal(env.get(ENV.AWS_REGION)?.value, "us-east-1");
  assert.equal(env.get(ENV.ADDRESS)?.value, "https://piggy");
  assert.equal(env.get(ENV.IGNORE_NO_ENV)?.value, "true");
  assert.equal(env.get(ENV.DNS_RESOLVER)?.value, "1.1.1.1");
  assert.equal(env.get(ENV.INITIAL_DELAY)?.value, "5s");
  assert.equal(env.get(ENV.NUMBER_OF_RETRY)?.value, "3");
});

// Go Piggy piggy-webhooks/mutate/pod_test.go

test("the installer never escalates privileges and has no runAsUser by default", async () => {
  const { patched } = await admitTwice(loadPod("app"));
  const context = patched.spec?.initContainers?.[0]?.securityContext;
  assert.equal(context?.allowPrivilegeEscalation, false);
  assert.equal(context?.runAsUser, undefined);
  assert.equal(context?.runAsNonRoot, true);
  assert.deepEqual(context?.capabilities, { drop: ["ALL"] });
  assert.deepEqual(context?.seccompProfile, { type: "RuntimeDefault" });
  assert.equal(context?.readOnlyRootFilesystem, true);
});

test("the installer runs as the pod's runAsUser", async () => {
  const pod = loadPod("app");
  pod.spec!.securityContext = { runAsUser: 1000 };
  const { patched } = await admitTwice(pod);
  assert.equal(patched.spec?.initContainers?.[0]?.securityContext?.runAsUser, 1000);
});

test("a pod wrapped by Go Piggy 0.7 is recognised: only the projected token and the seal are added", async () => {
  const pod = loadPod("wrapped_by_go");
  const review = await admit(pod);
  assert.equal(review.response.allowed, true);
  assert.deepEqual(patchOf(review).map(({ op, path }) => [op, path]), [
    ["add", "/spec/volumes/1"],
    ["add", "/spec/containers/0/volumeMounts/1"],
    ["add", "/spec/containers/0/env/7"],
    ["add", "/metadata/annotations/piggysec.com~1piggy-seal"],
  ]);
  assert.deepEqual(uidMap(pod), {
    "0f3c5a9e1d2b4c6f8a7e9d0c1b2a3f4e": await commandSignature(["ls", "-la"]),
  });
});

test("fixed: no command means a denial naming the container, not an image lookup", async () => {
  const pod = loadPod("app");
  pod.spec!.containers[0] = { name: "web", image: "x", env: [{ name: "S", value: "piggy:s" }] };
  const review = await admit(pod);
  assert.equal(review.response.allowed, false);
  assert.match(review.response.status?.message ?? "", /"web" has no "command": set "command"/);
});

test("command [python, app.py] is wrapped and signed", async () => {
  const { patched } = await admitTwice(loadPod("app"));
  const app = patched.spec?.containers[0];
  assert.deepEqual(app?.command, ["/piggy/piggy-env"]);
  assert.deepEqual(app?.args, ["--", "python", "app.py"]);
  assert.deepEqual(uidMap(patched), {
    [UID1]: "c933fbddcaf73b7f6028b45404b1e81b7ee91915588d41940eea1dd6d686469f",
  });
  assert.equal(envMap(app).get(ENV.UID)?.value, UID1);
});

test("a container with only plain env is not mutated (no patch at all; Go Piggy added the installer anyway)", async () => {
  const pod = loadPod("app");
  pod.spec!.containers[0]!.env = [{ name: "NORMAL", value: "value" }];
  const review = await admit(pod);
  assert.equal(review.response.patch, undefined);
});

test("fixed: an envFrom reference needs a command; with one the secret name is injected", async () => {
  const kube = new FakeKubeClient().put("configmaps", {
    metadata: { name: "cm", namespace: "default" },
    data: { key1: "piggy:secret1" },
  });
  const pod = podWith("app", { annotations: { [`${P}aws-secret-name`]: "my-aws-secret" } });
  pod.spec!.containers[0] = {
    name: "app",
    image: "x",
    envFrom: [{ configMapRef: { name: "cm" } }],
  };
  const denied = await admit(pod, { kube });
  assert.equal(denied.response.allowed, false);
  pod.spec!.containers[0].command = ["/app"];
  const { patched } = await admitTwice(pod, { kube });
  assert.equal(
    envMap(patched.spec?.containers[0]).get(ENV.AWS_SECRET_NAME)?.value,
    "my-aws-secret",
  );
  assert.notEqual(Object.values(uidMap(patched))[0], "");
});

test("{} annotations + env trigger: one volume and one installer after each pass", async () => {
  const pod = loadPod("app");
  pod.metadata!.annotations = {};
  pod.spec!.containers[0]!.env = [{ name: "DB", value: "piggy:db" }];
  const env = { ...CHART_ENV, PIGGY_ENV_IMAGE: "piggy-image:v1", AWS_SECRET_NAME: "s" };
  const { patched } = await admitTwice(pod, { env });
  assert.deepEqual(patched.spec?.volumes?.map((v) => v.name), [VOLUME_NAME, TOKEN_VOLUME_NAME]);
  assert.deepEqual(patched.spec?.initContainers?.map((c) => [c.name, c.image]), [[
    INSTALLER_NAME,
    "piggy-image:v1",
  ]]);
});

// Cases derived from Go Piggy's code (not tested upstream)

test("the signature vectors of Go Piggy's command signature are written into piggy-uid", async () => {
  const commands = [["sh", "-c", "echo hello"], ["python", "app.py"], ["ls", "-la"], ["/demo"]];
  const pod = loadPod("app");
  pod.spec!.containers = commands.map((command, i) => ({
    name: `c${i}`,
    image: "x",
    command,
    env: [{ name: "S", value: "piggy:s" }],
  }));
  const { patched } = await admitTwice(pod);
  assert.deepEqual(uidMap(patched), {
    [UID1]: "2dd7e5fd4cee0bfad2b0f0ef8ec72a608873636f7bf71ad416d18317939b3222",
    [UID2]: "c933fbddcaf73b7f6028b45404b1e81b7ee91915588d41940eea1dd6d686469f",
    [UID3]: "1de700c29687cae34561545f50d3c8b3d9afe88e04cc11069f8a6dc6e4ce9464",
    ["4".padStart(32, "0")]: "c918c7721b18fd83a8f9aab9b52a131f2ff72a3ea3c8f1b4df822b4029b7443a",
  });
  // Compact JSON sorted by key, as Go's json.Marshal.
  const raw = patched.metadata?.annotations?.[PIGGY_UID_ANNOTATION] ?? "";
  assert.equal(raw, JSON.stringify(uidMap(patched)));
  assert.ok(!raw.includes(" "));
});

test("an already-wrapped container whose args lack -- is signed over args as-is", async () => {
  const pod = loadPod("wrapped_by_go");
  pod.spec!.containers[0]!.args = ["ls", "-la"];
  const review = await admit(pod);
  // No args rewrite and no uid map change: the signature is the one Go Piggy recorded.
  assert.ok(patchOf(review).every(({ path }) => !path.includes("/args") && !path.includes("uid")));
});

test("fixed: empty command with args is denied instead of Entrypoint + args", async () => {
  const pod = loadPod("app");
  delete pod.spec!.containers[0]!.command;
  pod.spec!.containers[0]!.args = ["--port", "80"];
  const review = await admit(pod);
  assert.equal(review.response.allowed, false);
});

// Reinvocation, ordering, controllers, unknown fields, golden patch

test("a golden patch: exact operations, with the annotation key escaped as ~1", async () => {
  const review = await admit(loadPod("app"));
  const securityContext = {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    readOnlyRootFilesystem: true,
    seccompProfile: { type: "RuntimeDefault" },
    runAsNonRoot: true,
  };
  assert.deepEqual(patchOf(review), [
    {
      op: "add",
      path: "/spec/containers/0/env/2",
      value: { name: ENV.AWS_SECRET_NAME, value: "default/test-secret" },
    },
    { op: "add", path: "/spec/containers/0/env/3", value: { name: ENV.AWS_REGION, value: "" } },
    {
      op: "add",
      path: "/spec/containers/0/env/4",
      value: { name: ENV.AWS_SSM_PARAMETER_PATH, value: "" },
    },
    {
      op: "add",
      path: "/spec/containers/0/env/5",
      value: { name: ENV.ADDRESS, value: CHART_ENV.PIGGY_ADDRESS },
    },
    {
      op: "add",
      path: "/spec/containers/0/env/6",
      value: {
        name: ENV.POD_NAME,
        valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } },
      },
    },
    { op: "add", path: "/spec/containers/0/env/7", value: { name: ENV.UID, value: UID1 } },
    {
      op: "add",
      path: "/spec/containers/0/env/8",
      value: { name: ENV.TOKEN_FILE, value: "/var/run/secrets/piggysec.com/serviceaccount/token" },
    },
    // A changed list of strings is replaced whole (fast-json-patch's compare gives 2 operations).
    { op: "replace", path: "/spec/containers/0/command", value: ["/piggy/piggy-env"] },
    {
      op: "add",
      path: "/spec/containers/0/volumeMounts",
      value: [
        { name: VOLUME_NAME, mountPath: "/piggy/", readOnly: true },
        {
          name: TOKEN_VOLUME_NAME,
          mountPath: "/var/run/secrets/piggysec.com/serviceaccount",
          readOnly: true,
        },
      ],
    },
    { op: "add", path: "/spec/containers/0/args", value: ["--", "python", "app.py"] },
    {
      op: "add",
      path: "/spec/initContainers",
      value: [{
        name: INSTALLER_NAME,
        image: CHART_ENV.PIGGY_ENV_IMAGE,
        imagePullPolicy: "IfNotPresent",
        args: ["install", "/piggy"],
        volumeMounts: [{ name: VOLUME_NAME, mountPath: "/piggy/" }],
        securityContext,
        resources: {
          limits: { cpu: "200m", memory: "256Mi" },
          requests: { cpu: "50m", memory: "128Mi" },
        },
      }],
    },
    {
      op: "add",
      path: "/spec/volumes",
      value: [
        { name: VOLUME_NAME, emptyDir: { sizeLimit: "256Mi" } },
        {
          name: TOKEN_VOLUME_NAME,
          projected: {
            defaultMode: 0o644,
            sources: [{
              serviceAccountToken: {
                audience: "piggysec.com",
                expirationSeconds: 600,
                path: "token",
              },
            }],
          },
        },
      ],
    },
    {
      op: "add",
      path: "/metadata/annotations/piggysec.com~1piggy-uid",
      value: `{"${UID1}":"c933fbddcaf73b7f6028b45404b1e81b7ee91915588d41940eea1dd6d686469f"}`,
    },
    {
      op: "add",
      path: "/metadata/annotations/piggysec.com~1piggy-seal",
      value: "v1.5HruUQf_NxvsoYbiwDP8TcCO3azX9qSEd17EVxf5Abk",
    },
  ]);
});

test("the annotations map is created when the pod has none (Go Piggy wrote into a nil map)", async () => {
  const pod = loadPod("controller");
  const { review, patched } = await admitTwice(pod, {
    env: { ...CHART_ENV, AWS_SECRET_NAME: "team-a/web" },
  });
  assert.ok(patchOf(review).some((op) => op.op === "add" && op.path === "/metadata/annotations"));
  assert.deepEqual(Object.keys(patched.metadata?.annotations ?? {}).sort(), [
    PIGGY_SEAL_ANNOTATION,
    PIGGY_UID_ANNOTATION,
  ]);
});

test("a controller-created pod (generateName, no name, ownerReferences) is mutated", async () => {
  const pod = loadPod("controller");
  const { patched } = await admitTwice(pod, {
    env: { ...CHART_ENV, AWS_SECRET_NAME: "team-a/web" },
  });
  assert.equal(patched.metadata?.name, undefined);
  assert.equal(patched.metadata?.generateName, "web-7c9d5f-");
  assert.deepEqual(patched.metadata?.ownerReferences, pod.metadata?.ownerReferences);
  assert.deepEqual(patched.spec?.containers[0]?.args, ["--", "/demo"]);
  assert.deepEqual(patched.spec?.containers[0]?.resources, pod.spec?.containers[0]?.resources);
});

test("native sidecars: installer at index 0, sidecar and init wrapped, ephemeral untouched", async () => {
  const kube = new FakeKubeClient().put("secrets", {
    metadata: { name: "shipper-secret", namespace: "shop" },
    data: { TOKEN: b64("piggy:shipper-token") },
  });
  const pod = loadPod("sidecar");
  const { patched } = await admitTwice(pod, { kube });
  assert.deepEqual(patched.spec?.initContainers?.map((c) => c.name), [
    INSTALLER_NAME,
    "migrate",
    "log-shipper",
  ]);
  const shipper = container(patched, "log-shipper");
  assert.equal(shipper?.restartPolicy, "Always");
  assert.deepEqual(shipper?.args, ["--", "/shipper", "--config", "/etc/shipper.yaml"]);
  assert.deepEqual(container(patched, "migrate")?.command, ["/piggy/piggy-env"]);
  assert.deepEqual(container(patched, "metrics"), pod.spec?.containers[1]);
  assert.deepEqual(patched.spec?.ephemeralContainers, pod.spec?.ephemeralContainers);
  assert.equal(Object.keys(uidMap(patched)).length, 3);
});

test("reinvocation after a foreign mutation wraps only the new container and keeps the UIDs", async () => {
  const first = await admitTwice(loadPod("sidecar"), {
    kube: new FakeKubeClient().put("secrets", {
      metadata: { name: "shipper-secret", namespace: "shop" },
      data: { TOKEN: b64("piggy:t") },
    }),
  });
  const foreign = structuredClone(first.patched);
  foreign.spec!.containers.push({
    name: "injected-by-other-webhook",
    image: "x",
    command: ["/agent"],
    env: [{ name: "K", value: "piggy:k" }],
  });
  const review = await admit(foreign, { newUid: () => "c".repeat(32) });
  const patched = applyReview(foreign, review);
  assertValidPod(patched, foreign);
  const before = uidMap(first.patched);
  const after = uidMap(patched);
  assert.deepEqual(
    Object.fromEntries(Object.entries(after).filter(([uid]) => uid in before)),
    before,
  );
  assert.equal(after["c".repeat(32)], await commandSignature(["/agent"]));
  for (const name of ["migrate", "log-shipper", "orders"]) {
    assert.deepEqual(container(patched, name), container(first.patched, name));
  }
  const third = await admit(patched, { newUid: () => "d".repeat(32) });
  assert.deepEqual(patchOf(third), []);
});

test("fields Piggy does not model survive the patch (Go Piggy's typed diff removed them), in standalone SSM mode", async () => {
  const pod = loadPod("unknown_fields");
  const review = await admit(pod);
  const patched = applyReview(pod, review);
  assertValidPod(patched, pod);
  assert.deepEqual((patched.spec as unknown as Record<string, unknown>).futurePodField, {
    enabled: true,
  });
  assert.deepEqual(
    (patched.spec?.containers[0] as unknown as Record<string, unknown>).futureContainerField,
    [
      "kept",
    ],
  );
  assert.deepEqual(patched.spec?.containers[0]?.env?.[0], pod.spec?.containers[0]?.env?.[0]);
  assert.ok(unknownPodFields(patched).includes("/spec/futurePodField"));
  const env = envMap(patched.spec?.containers[0]);
  assert.equal(env.get(ENV.STANDALONE)?.value, "true");
  assert.equal(env.get(ENV.AWS_SSM_PARAMETER_PATH)?.value, "/prod/app");
  assert.equal(env.has(ENV.ADDRESS), false);
  assert.equal(env.has(ENV.UID), false);
  const again = await admit(patched, { newUid: () => "f".repeat(32) });
  assert.deepEqual(patchOf(again), []);
});

test("a dry-run request gets the same patch", async () => {
  const wet = await admit(loadPod("sidecar"));
  const dry = await admit(loadPod("sidecar"), {}, { dryRun: true });
  assert.deepEqual(dry, wet);
});

test("the CA bundle comes from the webhook env only, never from an annotation", async () => {
  const pod = podWith("app", { annotations: { [`${P}piggy-ca-bundle`]: "attacker-pem" } });
  const plain = await admit(pod);
  const patched = applyReview(pod, plain);
  assert.equal(envMap(patched.spec?.containers[0]).has(ENV.CA_BUNDLE), false);
  assert.ok(plain.response.warnings?.some((w) => w.includes("piggy-ca-bundle")));
  const operator = await admitTwice(podWith("app"), {
    env: { ...CHART_ENV, PIGGY_CA_BUNDLE: "operator-pem" },
  });
  assert.equal(
    envMap(operator.patched.spec?.containers[0]).get(ENV.CA_BUNDLE)?.value,
    "operator-pem",
  );
});

// Bad settings

const DENIED: [string, string][] = [
  ["piggy-enforce-integrity", "yes"],
  ["standalone", "maybe"],
];

for (const [key, value] of DENIED) {
  test(`a bad ${key} annotation (${JSON.stringify(value)}) denies the pod and names it`, async () => {
    const review = await admit(podWith("app", { annotations: { [`${P}${key}`]: value } }));
    assert.equal(review.response.allowed, false);
    assert.equal(review.response.status?.code, 400);
    assert.ok(review.response.status?.message.includes(`${P}${key}`));
  });
}

test("a bad PIGGY_ENFORCE_SERVICE_ACCOUNT env stops the webhook before any pod is admitted", () => {
  assert.throws(
    () => parseWebhookOptions(envOf({ ...CHART_ENV, PIGGY_ENFORCE_SERVICE_ACCOUNT: "yes" })),
    /^SyntaxError: Cannot use PIGGY_ENFORCE_SERVICE_ACCOUNT="yes": not a boolean/,
  );
});

const WARNED: [string, string, (pod: Pod) => void][] = [
  ["debug", "yes", (pod) => assert.equal(envMap(pod.spec?.containers[0]).has(ENV.DEBUG), false)],
  [
    "piggy-number-of-retry",
    "-1",
    (pod) => assert.equal(envMap(pod.spec?.containers[0]).has(ENV.NUMBER_OF_RETRY), false),
  ],
  [
    "piggy-initial-delay",
    "soon",
    (pod) => assert.equal(envMap(pod.spec?.containers[0]).has(ENV.INITIAL_DELAY), false),
  ],
  [
    "piggy-env-resource-memory-limit",
    "64MB",
    (pod) => assert.equal(pod.spec?.initContainers?.[0]?.resources?.limits?.memory, "256Mi"),
  ],
  [
    "piggy-env-image-pull-policy",
    "sometimes",
    (pod) => assert.equal(pod.spec?.initContainers?.[0]?.imagePullPolicy, "IfNotPresent"),
  ],
  [
    "piggy-psp-allow-privilege-escalation",
    "yes",
    (pod) =>
      assert.equal(pod.spec?.initContainers?.[0]?.securityContext?.allowPrivilegeEscalation, false),
  ],
  [
    "piggy-env-volume-medium",
    "tmpfs",
    (pod) => assert.deepEqual(pod.spec?.volumes?.[0]?.emptyDir, { sizeLimit: "256Mi" }),
  ],
];

for (const [key, value, check] of WARNED) {
  test(`a bad ${key} annotation (${JSON.stringify(value)}) is a warning and the fallback applies`, async () => {
    const pod = podWith("app", { annotations: { [`${P}${key}`]: value } });
    const { review, patched } = await admitTwice(pod);
    const warnings = review.response.warnings ?? [];
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.ok(warnings[0]?.includes(`${P}${key}`));
    assert.ok((warnings[0]?.length ?? 0) <= 120);
    check(patched);
  });
}

test("assertValidPod() catches a misspelled field name and a schema violation", () => {
  const pod = loadPod("app");
  const typo = structuredClone(pod);
  (typo.spec!.containers[0] as unknown as Record<string, unknown>).volumeMount = [];
  assert.throws(() => assertValidPod(typo, pod), /spec\/containers\/0\/volumeMount/);
  const wrongType = structuredClone(pod);
  (wrongType.spec!.containers[0] as unknown as Record<string, unknown>).command = "python";
  assert.throws(() => assertValidPod(wrongType, pod));
  const badEnum = structuredClone(pod);
  badEnum.spec!.containers[0]!.imagePullPolicy = "Sometimes";
  assert.throws(() => assertValidPod(badEnum, pod));
});
