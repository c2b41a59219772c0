import { test } from "node:test";
import assert from "node:assert/strict";
import type { Container, EnvVar, Pod } from "kubernetes-types/core/v1.d.ts";
import { ENV, INSTALLER_NAME, PIGGY_UID_ANNOTATION, VOLUME_NAME } from "../constants.ts";
import { resolveConfig } from "../config/resolve_config.ts";
import type { PiggyConfig } from "../config/settings.ts";
import { expandKubeletReferences, NO_FACTS, type PodFacts } from "../pod/container_refs.ts";
import { mutatePod } from "./mutate_pod.ts";
import { commandSignature } from "../pod/signature.ts";

const P = "piggysec.com/";
const BASE_ENV: Record<string, string> = {
  PIGGY_ENV_IMAGE: "ghcr.io/kongz/piggy-env:0.8.0",
  PIGGY_ADDRESS: "https://piggy.piggy.svc",
};

function configOf(annotations: Record<string, string> = {}, env = BASE_ENV): PiggyConfig {
  return resolveConfig(annotations, (name) => env[name]).config;
}

function podOf(
  containers: Partial<Container>[],
  options: { init?: Partial<Container>[]; annotations?: Record<string, string> | null } = {},
): Pod {
  const annotations = options.annotations === null
    ? undefined
    : options.annotations ?? { [`${P}aws-secret-name`]: "my-secret" };
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "test-pod", namespace: "default", ...(annotations ? { annotations } : {}) },
    spec: {
      ...(options.init
        ? { initContainers: options.init.map((c, i) => ({ name: `init-${i}`, ...c })) }
        : {}),
      containers: containers.map((c, i) => ({ name: `c${i}`, image: "app:1", ...c })),
    },
  };
}

// A fresh env array each time: containers must not share one (structuredClone keeps sharing).
function trigger(): Partial<Container> {
  return { env: [{ name: "DB_PASS", value: "piggy:db-pass" }] };
}

function counter(): () => string {
  let n = 0;
  return () => (++n).toString(16).padStart(32, "0");
}

function envMap(container: Container | undefined): Map<string, EnvVar> {
  return new Map((container?.env ?? []).map((entry) => [entry.name, entry]));
}

function installer(pod: Pod): Container | undefined {
  return pod.spec?.initContainers?.find((c) => c.name === INSTALLER_NAME);
}

test("mutatePod() hardens the installer for Pod Security restricted", async () => {
  const { pod } = await mutatePod(
    podOf([{ command: ["/app"], ...trigger() }]),
    configOf(),
    NO_FACTS,
    counter(),
  );
  assert.deepEqual(installer(pod)?.securityContext, {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    readOnlyRootFilesystem: true,
    seccompProfile: { type: "RuntimeDefault" },
    runAsNonRoot: true,
  });
});

test("mutatePod() copies the pod's runAsUser into the installer", async () => {
  const input = podOf([{ command: ["/app"], ...trigger() }]);
  input.spec!.securityContext = { runAsUser: 1000 };
  const { pod } = await mutatePod(input, configOf(), NO_FACTS, counter());
  assert.equal(installer(pod)?.securityContext?.runAsUser, 1000);
  assert.equal(installer(pod)?.securityContext?.runAsNonRoot, true);
});

test("mutatePod() does not set runAsNonRoot on the installer of a root pod", async () => {
  const input = podOf([{ command: ["/app"], ...trigger() }]);
  input.spec!.securityContext = { runAsUser: 0 };
  const { pod } = await mutatePod(input, configOf(), NO_FACTS, counter());
  assert.equal(installer(pod)?.securityContext?.runAsUser, 0);
  assert.equal(installer(pod)?.securityContext?.runAsNonRoot, undefined);
});

test("mutatePod() builds the installer as Go Piggy: name, image, args, mount, resources", async () => {
  const config = configOf({
    [`${P}aws-secret-name`]: "s",
    [`${P}piggy-env-image-pull-policy`]: "IfNotPresent",
  });
  const { pod } = await mutatePod(
    podOf([{ command: ["/app"], ...trigger() }]),
    config,
    NO_FACTS,
    counter(),
  );
  const init = pod.spec?.initContainers?.[0];
  assert.equal(init?.name, INSTALLER_NAME);
  assert.equal(init?.image, "ghcr.io/kongz/piggy-env:0.8.0");
  assert.equal(init?.imagePullPolicy, "IfNotPresent");
  assert.equal(init?.command, undefined);
  assert.deepEqual(init?.args, ["install", "/piggy"]);
  assert.deepEqual(init?.volumeMounts, [{ name: VOLUME_NAME, mountPath: "/piggy/" }]);
  assert.deepEqual(init?.resources, {
    limits: { cpu: "200m", memory: "256Mi" },
    requests: { cpu: "50m", memory: "128Mi" },
  });
  assert.equal(init?.restartPolicy, undefined);
});

test("mutatePod() keeps an already-wrapped command and signs the args after --", async () => {
  const input = podOf([{ command: ["/piggy/piggy-env"], args: ["--", "ls", "-la"], ...trigger() }]);
  const result = await mutatePod(input, configOf(), NO_FACTS, counter());
  const container = result.pod.spec?.containers[0];
  assert.deepEqual(container?.command, ["/piggy/piggy-env"]);
  assert.deepEqual(container?.args, ["--", "ls", "-la"]);
  assert.deepEqual([...result.signatures.values()], [await commandSignature(["ls", "-la"])]);
});

test("mutatePod() never wraps a command that already starts with the launcher", async () => {
  const input = podOf([{
    command: ["/piggy/piggy-env", "--retry", "3", "--", "app"],
    args: ["--port", "80"],
    ...trigger(),
  }]);
  const result = await mutatePod(input, configOf(), NO_FACTS, counter());
  const container = result.pod.spec?.containers[0];
  assert.deepEqual(container?.command, ["/piggy/piggy-env", "--retry", "3", "--", "app"]);
  assert.deepEqual(container?.args, ["--port", "80"]);
  // The launcher signs its argv after the first `--`.
  assert.deepEqual([...result.signatures.values()], [
    await commandSignature(["app", "--port", "80"]),
  ]);
});

test("mutatePod() signs the args as-is when a wrapped container's args do not start with --", async () => {
  const input = podOf([{ command: ["/piggy/piggy-env"], args: ["ls", "-la"], ...trigger() }]);
  const result = await mutatePod(input, configOf(), NO_FACTS, counter());
  assert.deepEqual([...result.signatures.values()], [await commandSignature(["ls", "-la"])]);
  assert.deepEqual(result.pod.spec?.containers[0]?.args, ["ls", "-la"]);
});

test("mutatePod() denies a container without command whose image was not looked up", async () => {
  const input = podOf([{ name: "web", ...trigger() }, {
    name: "worker",
    args: ["--queue"],
    ...trigger(),
  }]);
  const result = await mutatePod(input, configOf(), NO_FACTS, counter());
  assert.equal(result.changed, false);
  assert.equal(result.denial?.code, 400);
  assert.match(result.denial?.message ?? "", /Container "web", "worker" has no "command"/);
  assert.match(result.denial?.message ?? "", /set "command"/);
  assert.deepEqual(result.pod, input);
});

test("mutatePod() combines a looked-up Entrypoint/Cmd with args by Kubernetes' rules", () => {
  const input = podOf([
    { name: "both", ...trigger() },
    { name: "args", args: ["--mine"], ...trigger() },
    { name: "own", command: ["/own"], ...trigger() },
  ]);
  const image = { entrypoint: ["/entry", "-x"], cmd: ["--default"] };
  const facts: PodFacts = {
    ...NO_FACTS,
    images: new Map([["both", image], ["args", image], ["own", image]]),
  };
  const result = mutatePod(input, configOf(), facts, counter());
  const [both, args, own] = result.pod.spec?.containers ?? [];
  assert.deepEqual(both?.args, ["--", "/entry", "-x", "--default"]);
  assert.deepEqual(args?.args, ["--", "/entry", "-x", "--mine"]);
  assert.deepEqual(own?.args, ["--", "/own"], "a container's own command wins");
  assert.deepEqual([...result.signatures.values()], [
    commandSignature(["/entry", "-x", "--default"]),
    commandSignature(["/entry", "-x", "--mine"]),
    commandSignature(["/own"]),
  ]);
  // A second pass (the container is wrapped now) needs no image and changes nothing.
  const again = mutatePod(result.pod, configOf(), NO_FACTS, counter());
  assert.equal(again.changed, false);
});

test("mutatePod() escapes $ of image text so the kubelet runs it unchanged, and signs the spec form", () => {
  const input = podOf([{ name: "sh", ...trigger() }]);
  const image = { entrypoint: ["/bin/sh", "-c"], cmd: ["echo $(HOME) $$ $PATH"] };
  const result = mutatePod(
    input,
    configOf(),
    { ...NO_FACTS, images: new Map([["sh", image]]) },
    counter(),
  );
  const container = result.pod.spec?.containers[0];
  assert.deepEqual(container?.args, ["--", "/bin/sh", "-c", "echo $$(HOME) $$$$ $$PATH"]);
  const expanded = (container?.args ?? []).map((arg) =>
    expandKubeletReferences(arg, new Map([["HOME", "/root"]]))
  );
  assert.deepEqual(expanded, ["--", "/bin/sh", "-c", "echo $(HOME) $$ $PATH"]);
  // The launcher proves its argv is this form expanded (PIGGY_COMMAND_TEMPLATE) and sends its
  // signature; a second admission, which sees only the spec form, computes the same.
  assert.deepEqual([...result.signatures.values()], [
    commandSignature(["/bin/sh", "-c", "echo $$(HOME) $$$$ $$PATH"]),
  ]);
  assert.deepEqual(result.warnings.filter((w) => w.includes("$(VAR)")), []);
  const again = mutatePod(result.pod, configOf(), NO_FACTS, counter());
  assert.equal(again.changed, false);
  assert.deepEqual(again.signatures, result.signatures);
});

test("mutatePod() denies an image with neither Entrypoint nor Cmd, and skips unwrapped containers", () => {
  const input = podOf([{ name: "empty", ...trigger() }]);
  const empty = { entrypoint: [], cmd: [] };
  const denied = mutatePod(
    input,
    configOf(),
    { ...NO_FACTS, images: new Map([["empty", empty]]) },
    counter(),
  );
  assert.match(
    denied.denial?.message ?? "",
    /"empty" \(image "app:1"\) has no "command" and its image sets neither/,
  );
  const skipped = mutatePod(
    input,
    configOf(),
    { ...NO_FACTS, unwrapped: new Set(["empty"]) },
    counter(),
  );
  assert.equal(skipped.changed, false);
  assert.equal(skipped.denial, undefined);
});

test("mutatePod() wraps command + args behind the launcher", async () => {
  const input = podOf([{ command: ["python", "app.py"], args: ["--port", "80"], ...trigger() }]);
  const result = await mutatePod(input, configOf(), NO_FACTS, counter());
  const container = result.pod.spec?.containers[0];
  assert.deepEqual(container?.command, ["/piggy/piggy-env"]);
  assert.deepEqual(container?.args, ["--", "python", "app.py", "--port", "80"]);
  assert.deepEqual(
    result.signatures,
    new Map([["1".padStart(32, "0"), commandSignature(["python", "app.py", "--port", "80"])]]),
  );
  assert.deepEqual(container?.volumeMounts, [
    { name: VOLUME_NAME, mountPath: "/piggy/", readOnly: true },
  ]);
});

test("mutatePod() leaves a pod without piggy: values unchanged: no installer, volume or annotation (Go Piggy added them)", async () => {
  const input = podOf([{ command: ["/app"], env: [{ name: "NORMAL", value: "value" }] }]);
  const result = await mutatePod(input, configOf(), NO_FACTS, counter());
  assert.equal(result.changed, false);
  assert.deepEqual(result.pod, input);
  assert.deepEqual(result.signatures, new Map());
  assert.match(result.skipReason ?? "", /no container/);
});

test("mutatePod() wraps a container qualified through envFrom facts (with a command)", async () => {
  const facts: PodFacts = {
    configMaps: new Map([["cm", new Map([["key1", "secret1"]])]]),
    secrets: new Map(),
  };
  const input = podOf([{ command: ["/app"], envFrom: [{ configMapRef: { name: "cm" } }] }]);
  const result = await mutatePod(
    input,
    configOf({ [`${P}aws-secret-name`]: "my-aws-secret" }),
    facts,
    counter(),
  );
  assert.equal(result.changed, true);
  assert.equal(
    envMap(result.pod.spec?.containers[0]).get(ENV.AWS_SECRET_NAME)?.value,
    "my-aws-secret",
  );
});

test("mutatePod() adds one installer and one volume however often it runs", async () => {
  const config = configOf();
  let pod = podOf([{ command: ["/app"], env: [{ name: "DB", value: "piggy:db" }] }], {
    annotations: {},
  });
  pod.metadata!.annotations = { [`${P}aws-secret-name`]: "s" };
  for (let pass = 0; pass < 3; pass++) {
    pod = (await mutatePod(pod, config, NO_FACTS, counter())).pod;
    assert.equal(pod.spec?.volumes?.length, 1);
    assert.equal(pod.spec?.initContainers?.filter((c) => c.name === INSTALLER_NAME).length, 1);
  }
});

test("mutatePod() is idempotent: a second pass changes nothing and keeps the UIDs", async () => {
  const input = podOf([{ command: ["/a"], ...trigger() }, { command: ["/b"], ...trigger() }], {
    init: [{ command: ["/i"], ...trigger() }],
  });
  const config = configOf();
  const first = await mutatePod(input, config, NO_FACTS, counter());
  const again = counter();
  again(); // a generator that would hand out different UIDs
  const second = await mutatePod(first.pod, config, NO_FACTS, () => `f${again().slice(1)}`);
  assert.equal(second.changed, false);
  assert.deepEqual(second.pod, first.pod);
  assert.deepEqual(second.signatures, first.signatures);
});

test("mutatePod() is idempotent in standalone mode (UIDs kept by signature)", async () => {
  const config = configOf({ [`${P}aws-secret-name`]: "s", [`${P}standalone`]: "true" });
  const input = podOf([{ command: ["/a"], ...trigger() }, { command: ["/a"], ...trigger() }]);
  const first = await mutatePod(input, config, NO_FACTS, counter());
  const second = await mutatePod(first.pod, config, NO_FACTS, () => "e".repeat(32));
  assert.equal(second.changed, false);
  assert.equal(first.signatures.size, 2);
});

test("mutatePod() wraps only a container added after the first pass, keeping the others' UIDs", async () => {
  const config = configOf();
  const first = await mutatePod(
    podOf([{ command: ["/a"], ...trigger() }]),
    config,
    NO_FACTS,
    counter(),
  );
  const added = structuredClone(first.pod);
  added.spec!.containers.push({ name: "late", image: "x", command: ["/late"], ...trigger() });
  const second = await mutatePod(added, config, NO_FACTS, () => "a".repeat(32));
  assert.equal(second.changed, true);
  assert.deepEqual(second.pod.spec?.containers[0], first.pod.spec?.containers[0]);
  assert.equal(envMap(second.pod.spec?.containers[1]).get(ENV.UID)?.value, "a".repeat(32));
  assert.deepEqual([...second.signatures.keys()].sort(), ["1".padStart(32, "0"), "a".repeat(32)]);
});

test("mutatePod() replaces a PIGGY_UID that is not in the annotation map", async () => {
  const input = podOf([{
    command: ["/piggy/piggy-env"],
    args: ["--", "/a"],
    env: [{ name: "X", value: "piggy:x" }, { name: ENV.UID, value: "forged" }],
  }]);
  input.metadata!.annotations![PIGGY_UID_ANNOTATION] = JSON.stringify({ other: "sig" });
  const result = await mutatePod(input, configOf(), NO_FACTS, counter());
  assert.equal(envMap(result.pod.spec?.containers[0]).get(ENV.UID)?.value, "1".padStart(32, "0"));
  assert.deepEqual([...result.signatures.keys()], ["1".padStart(32, "0")]);
});

test("mutatePod() re-signs a wrapped container whose args changed since the first pass", async () => {
  const config = configOf();
  const first = await mutatePod(
    podOf([{ command: ["/a"], ...trigger() }]),
    config,
    NO_FACTS,
    counter(),
  );
  const edited = structuredClone(first.pod);
  edited.spec!.containers[0]!.args = ["--", "/a", "--verbose"];
  const second = await mutatePod(edited, config, NO_FACTS, counter());
  assert.deepEqual(
    second.signatures,
    new Map([["1".padStart(32, "0"), commandSignature(["/a", "--verbose"])]]),
  );
  assert.equal(second.changed, true);
});

test("mutatePod() injects env in Go Piggy's order with every optional setting", async () => {
  const config = configOf({
    [`${P}aws-secret-name`]: "my-secret",
    [`${P}aws-region`]: "us-east-1",
    [`${P}piggy-address`]: "http://piggy",
    [`${P}piggy-ignore-no-env`]: "true",
    [`${P}piggy-dns-resolver`]: "1.1.1.1",
    [`${P}piggy-initial-delay`]: "5s",
    [`${P}piggy-number-of-retry`]: "3",
    [`${P}debug`]: "true",
  });
  const input = podOf([{ command: ["echo"], env: [{ name: "TRIGGER", value: "piggy:trigger" }] }]);
  const { pod } = await mutatePod(input, config, NO_FACTS, counter());
  assert.deepEqual(pod.spec?.containers[0]?.env, [
    { name: "TRIGGER", value: "piggy:trigger" },
    { name: ENV.AWS_SECRET_NAME, value: "my-secret" },
    { name: ENV.AWS_REGION, value: "us-east-1" },
    { name: ENV.AWS_SSM_PARAMETER_PATH, value: "" },
    { name: ENV.DEBUG, value: "true" },
    { name: ENV.ADDRESS, value: "http://piggy" },
    {
      name: ENV.POD_NAME,
      valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } },
    },
    { name: ENV.UID, value: "1".padStart(32, "0") },
    { name: ENV.IGNORE_NO_ENV, value: "true" },
    { name: ENV.DNS_RESOLVER, value: "1.1.1.1" },
    { name: ENV.INITIAL_DELAY, value: "5s" },
    { name: ENV.NUMBER_OF_RETRY, value: "3" },
  ]);
});

test("mutatePod() applies annotations over the webhook env for the installer and env", async () => {
  const config = configOf({
    [`${P}piggy-env-image`]: "custom-image",
    [`${P}piggy-env-image-pull-policy`]: "IfNotPresent",
    [`${P}piggy-env-resource-cpu-request`]: "100m",
    [`${P}piggy-env-resource-memory-request`]: "128Mi",
    [`${P}piggy-env-resource-cpu-limit`]: "500m",
    [`${P}piggy-env-resource-memory-limit`]: "256Mi",
    [`${P}piggy-psp-allow-privilege-escalation`]: "true",
    [`${P}aws-secret-name`]: "my-secret",
    [`${P}debug`]: "true",
  }, { PIGGY_ADDRESS: "http://env-address" });
  const { pod } = await mutatePod(
    podOf([{ command: ["/app"], ...trigger() }]),
    config,
    NO_FACTS,
    counter(),
  );
  const init = installer(pod);
  assert.equal(init?.image, "custom-image");
  assert.equal(init?.imagePullPolicy, "IfNotPresent");
  assert.deepEqual(init?.resources, {
    limits: { cpu: "500m", memory: "256Mi" },
    requests: { cpu: "100m", memory: "128Mi" },
  });
  assert.equal(init?.securityContext?.allowPrivilegeEscalation, true);
  const env = envMap(pod.spec?.containers[0]);
  assert.equal(env.get(ENV.AWS_SECRET_NAME)?.value, "my-secret");
  assert.equal(env.get(ENV.DEBUG)?.value, "true");
  assert.equal(env.get(ENV.ADDRESS)?.value, "http://env-address");
});

test("mutatePod() in standalone mode injects PIGGY_STANDALONE and the secret version, no proxy env", async () => {
  const config = configOf({
    [`${P}aws-secret-name`]: "s",
    [`${P}standalone`]: "true",
    [`${P}aws-secret-version`]: "AWSPREVIOUS",
  }, { ...BASE_ENV, PIGGY_CA_BUNDLE: "pem" });
  const { pod } = await mutatePod(
    podOf([{ command: ["/app"], ...trigger() }]),
    config,
    NO_FACTS,
    counter(),
  );
  const names = (pod.spec?.containers[0]?.env ?? []).map((entry) => entry.name);
  assert.deepEqual(names, [
    "DB_PASS",
    ENV.AWS_SECRET_NAME,
    ENV.AWS_REGION,
    ENV.AWS_SSM_PARAMETER_PATH,
    ENV.STANDALONE,
    ENV.AWS_SECRET_VERSION,
  ]);
  assert.equal(envMap(pod.spec?.containers[0]).get(ENV.AWS_SECRET_VERSION)?.value, "AWSPREVIOUS");
});

test("mutatePod() does not inject the secret version in proxy mode or when unset", async () => {
  const proxy = configOf({
    [`${P}aws-secret-name`]: "s",
    [`${P}aws-secret-version`]: "AWSPREVIOUS",
  });
  const standalone = configOf({ [`${P}aws-secret-name`]: "s", [`${P}standalone`]: "true" });
  for (const config of [proxy, standalone]) {
    const { pod } = await mutatePod(
      podOf([{ command: ["/app"], ...trigger() }]),
      config,
      NO_FACTS,
      counter(),
    );
    assert.equal(envMap(pod.spec?.containers[0]).has(ENV.AWS_SECRET_VERSION), false);
  }
});

test("mutatePod() injects the operator's CA bundle in proxy mode", async () => {
  const config = configOf({ [`${P}aws-secret-name`]: "s" }, {
    ...BASE_ENV,
    PIGGY_CA_BUNDLE: "pem-text",
  });
  const { pod } = await mutatePod(
    podOf([{ command: ["/app"], ...trigger() }]),
    config,
    NO_FACTS,
    counter(),
  );
  const names = (pod.spec?.containers[0]?.env ?? []).map((entry) => entry.name);
  assert.equal(names.indexOf(ENV.CA_BUNDLE), names.indexOf(ENV.UID) + 1);
  assert.equal(envMap(pod.spec?.containers[0]).get(ENV.CA_BUNDLE)?.value, "pem-text");
});

test("mutatePod() upserts injected env by name and leaves the user's entries untouched", async () => {
  const input = podOf([{
    command: ["/app"],
    env: [
      { name: "FIRST", value: "1" },
      { name: ENV.AWS_REGION, value: "old-region" },
      { name: "DB", value: "piggy:db" },
      { name: ENV.AWS_SECRET_NAME, value: "my-secret" },
    ],
  }]);
  const { pod } = await mutatePod(
    input,
    configOf({ [`${P}aws-secret-name`]: "my-secret", [`${P}aws-region`]: "eu-west-1" }),
    NO_FACTS,
    counter(),
  );
  const env = pod.spec?.containers[0]?.env ?? [];
  assert.deepEqual(env.slice(0, 4), [
    { name: "FIRST", value: "1" },
    { name: ENV.AWS_REGION, value: "eu-west-1" },
    { name: "DB", value: "piggy:db" },
    { name: ENV.AWS_SECRET_NAME, value: "my-secret" },
  ]);
  assert.equal(env.filter((entry) => entry.name === ENV.AWS_REGION).length, 1);
});

test("mutatePod() creates metadata.annotations when absent", async () => {
  const input = podOf([{ command: ["/app"], ...trigger() }], { annotations: null });
  const result = await mutatePod(
    input,
    configOf({}, { ...BASE_ENV, AWS_SECRET_NAME: "s" }),
    NO_FACTS,
    counter(),
  );
  assert.equal(
    result.pod.metadata?.annotations?.[PIGGY_UID_ANNOTATION],
    JSON.stringify(Object.fromEntries(result.signatures)),
  );
});

test("mutatePod() writes the piggy-uid map as compact JSON sorted by UID", async () => {
  const ids = ["b".repeat(32), "a".repeat(32)];
  const result = await mutatePod(
    podOf([{ command: ["/x"], ...trigger() }, { command: ["ls", "-la"], ...trigger() }]),
    configOf(),
    NO_FACTS,
    () => ids.shift()!,
  );
  assert.equal(
    result.pod.metadata?.annotations?.[PIGGY_UID_ANNOTATION],
    `{"${"a".repeat(32)}":"${await commandSignature(["ls", "-la"])}","${
      "b".repeat(32)
    }":"${await commandSignature(["/x"])}"}`,
  );
});

test("mutatePod() denies proxy mode without an address", async () => {
  const result = await mutatePod(
    podOf([{ command: ["/app"], ...trigger() }]),
    configOf({ [`${P}aws-secret-name`]: "s" }, { PIGGY_ENV_IMAGE: "img" }),
    NO_FACTS,
    counter(),
  );
  assert.match(
    result.denial?.message ?? "",
    /piggysec\.com\/piggy-address" \(or the webhook env PIGGY_ADDRESS\) must be set/,
  );
});

test("mutatePod() denies an empty installer image", async () => {
  const result = await mutatePod(
    podOf([{ command: ["/app"], ...trigger() }]),
    configOf({ [`${P}aws-secret-name`]: "s" }, { PIGGY_ADDRESS: "https://p" }),
    NO_FACTS,
    counter(),
  );
  assert.match(result.denial?.message ?? "", /piggy-env-image/);
});

test("mutatePod() skips a pod without trigger settings even when it has piggy: values", async () => {
  const result = await mutatePod(
    podOf([{ command: ["/app"], ...trigger() }], { annotations: {} }),
    configOf({}, { PIGGY_ENV_IMAGE: "img" }),
    NO_FACTS,
    counter(),
  );
  assert.equal(result.changed, false);
  assert.match(result.skipReason ?? "", /aws-secret-name/);
});

test("mutatePod() skips mirror pods and Windows pods with a warning", async () => {
  const mirror = podOf([{ command: ["/app"], ...trigger() }]);
  mirror.metadata!.annotations!["kubernetes.io/config.mirror"] = "abc";
  const windows = podOf([{ command: ["/app"], ...trigger() }]);
  windows.spec!.os = { name: "windows" };
  for (const input of [mirror, windows]) {
    const result = await mutatePod(input, configOf(), NO_FACTS, counter());
    assert.equal(result.changed, false);
    assert.equal(result.warnings.length, 1);
    assert.deepEqual(result.pod, input);
  }
});

test("mutatePod() wraps native sidecars and puts the installer first", async () => {
  const input = podOf([{ command: ["/app"], ...trigger() }], {
    init: [
      { name: "plain", command: ["/setup"] },
      { name: "sidecar", restartPolicy: "Always", command: ["/proxy"], ...trigger() },
    ],
  });
  const { pod, wrapped } = await mutatePod(input, configOf(), NO_FACTS, counter());
  assert.deepEqual(pod.spec?.initContainers?.map((c) => c.name), [
    INSTALLER_NAME,
    "plain",
    "sidecar",
  ]);
  assert.deepEqual(pod.spec?.initContainers?.[2]?.command, ["/piggy/piggy-env"]);
  assert.equal(pod.spec?.initContainers?.[2]?.restartPolicy, "Always");
  assert.deepEqual(pod.spec?.initContainers?.[1]?.command, ["/setup"]);
  assert.deepEqual(wrapped, ["sidecar", "c0"]);
});

test("mutatePod() moves the installer back in front of a wrapped init container added before it", async () => {
  const config = configOf();
  const first = await mutatePod(
    podOf([{ command: ["/app"], ...trigger() }]),
    config,
    NO_FACTS,
    counter(),
  );
  const edited = structuredClone(first.pod);
  edited.spec!.initContainers!.unshift({
    name: "early",
    image: "x",
    command: ["/early"],
    ...trigger(),
  });
  const second = await mutatePod(edited, config, NO_FACTS, counter());
  assert.deepEqual(second.pod.spec?.initContainers?.map((c) => c.name), [INSTALLER_NAME, "early"]);
  const third = await mutatePod(second.pod, config, NO_FACTS, counter());
  assert.equal(third.changed, false);
});

test("mutatePod() leaves ephemeral containers alone", async () => {
  const input = podOf([{ command: ["/app"], ...trigger() }]);
  input.spec!.ephemeralContainers = [{
    name: "debug",
    image: "busybox",
    command: ["sh"],
    ...trigger(),
  }];
  const { pod } = await mutatePod(input, configOf(), NO_FACTS, counter());
  assert.deepEqual(pod.spec?.ephemeralContainers, input.spec?.ephemeralContainers);
});

test("mutatePod() uses a disk-backed emptyDir with a size limit, or Memory on request", async () => {
  const disk = await mutatePod(
    podOf([{ command: ["/app"], ...trigger() }]),
    configOf(),
    NO_FACTS,
    counter(),
  );
  assert.deepEqual(disk.pod.spec?.volumes, [{
    name: VOLUME_NAME,
    emptyDir: { sizeLimit: "256Mi" },
  }]);
  const memory = await mutatePod(
    podOf([{ command: ["/app"], ...trigger() }]),
    configOf({
      [`${P}aws-secret-name`]: "s",
      [`${P}piggy-env-volume-medium`]: "Memory",
      [`${P}piggy-env-volume-size-limit`]: "200Mi",
      [`${P}piggy-env-resource-memory-limit`]: "512Mi",
    }),
    NO_FACTS,
    counter(),
  );
  assert.deepEqual(memory.pod.spec?.volumes, [
    { name: VOLUME_NAME, emptyDir: { medium: "Memory", sizeLimit: "200Mi" } },
  ]);
  assert.deepEqual(memory.warnings, []);
});

test("mutatePod() warns when a Memory volume cannot fit in the installer memory limit", async () => {
  const result = await mutatePod(
    podOf([{ command: ["/app"], ...trigger() }]),
    configOf({ [`${P}aws-secret-name`]: "s", [`${P}piggy-env-volume-medium`]: "Memory" }),
    NO_FACTS,
    counter(),
  );
  assert.equal(result.warnings.length, 1);
  assert.match(result.warnings[0] ?? "", /memory limit/);
});

test("mutatePod() never modifies its input", async () => {
  const input = podOf([{ command: ["/app"], ...trigger() }], {
    init: [{ command: ["/i"], ...trigger() }],
  });
  const copy = structuredClone(input);
  await mutatePod(input, configOf(), NO_FACTS, counter());
  assert.deepEqual(input, copy);
});

test("mutatePod() recognises a container wrapped by hand as qualifying", async () => {
  const input = podOf([{ command: ["/piggy/piggy-env"], args: ["--", "/app"] }]);
  const result = await mutatePod(input, configOf(), NO_FACTS, counter());
  assert.deepEqual(result.wrapped, ["c0"]);
  assert.equal(
    envMap(result.pod.spec?.containers[0]).get(ENV.ADDRESS)?.value,
    BASE_ENV.PIGGY_ADDRESS,
  );
});

function limitedPod(memory: string, standalone: boolean): Pod {
  return {
    metadata: {
      name: "app",
      annotations: {
        "piggysec.com/aws-secret-name": "app/secret",
        ...(standalone
          ? { "piggysec.com/standalone": "true" }
          : { "piggysec.com/piggy-address": "https://piggy.example" }),
      },
    },
    spec: {
      containers: [{
        name: "app",
        image: "app:1",
        command: ["/app"],
        env: [{ name: "DB_PASS", value: "piggy:DB_PASS" }],
        resources: { limits: { memory } },
      }],
    },
  };
}

function memoryWarningsFor(memory: string, standalone: boolean): string[] {
  const pod = limitedPod(memory, standalone);
  const { config } = resolveConfig(pod.metadata?.annotations ?? {}, () => undefined);
  const result = mutatePod(
    pod,
    { ...config, piggyEnvImage: "ghcr.io/kongz/piggy-env:0.8.0" },
    NO_FACTS,
    counter(),
  );
  assert.equal(result.changed, true);
  return result.warnings.filter((warning) => warning.includes("memory limit"));
}

test("mutatePod() warns when a wrapped container's memory limit is below the launcher's peak plus a margin", () => {
  // proxy: 70Mi peak + 32Mi margin = 102Mi; standalone (light AWS client): 72Mi + 32Mi = 104Mi
  const [proxy] = memoryWarningsFor("100Mi", false);
  assert.match(
    proxy ?? "",
    /Container "app": memory limit "100Mi" is below 102Mi.*proxy mode \(70Mi\)/,
  );
  assert.deepEqual(memoryWarningsFor("102Mi", false), []);
  assert.deepEqual(memoryWarningsFor("1Gi", false), []);
  const [standalone] = memoryWarningsFor("103Mi", true);
  assert.match(standalone ?? "", /below 104Mi.*standalone mode \(72Mi\)/);
  assert.deepEqual(memoryWarningsFor("104Mi", true), []);
});

test("mutatePod() mounts the launcher volume read-only in wrapped containers, not in the installer", () => {
  const pod = limitedPod("1Gi", false);
  const { config } = resolveConfig(pod.metadata?.annotations ?? {}, () => undefined);
  const result = mutatePod(
    pod,
    { ...config, piggyEnvImage: "ghcr.io/kongz/piggy-env:0.8.0" },
    NO_FACTS,
    counter(),
  );
  assert.deepEqual(result.pod.spec?.containers[0]?.volumeMounts, [
    { name: VOLUME_NAME, mountPath: "/piggy/", readOnly: true },
  ]);
  assert.deepEqual(result.pod.spec?.initContainers?.[0]?.volumeMounts, [
    { name: VOLUME_NAME, mountPath: "/piggy/" },
  ]);
});

/** A quantity of the grid below in exact nano-units (no float rounding), for the property check. */
function nanoUnits(text: string): bigint {
  const match = /^(\d+)(?:\.(\d+))?(m|Mi|Gi|G)?$/.exec(text);
  if (!match) throw new SyntaxError(`not a grid quantity: ${text}`);
  const fraction = (match[2] ?? "").padEnd(9, "0");
  const base = BigInt(match[1]!) * 1_000_000_000n + BigInt(fraction);
  const scale: Record<string, bigint> = { m: 1n, Mi: 1_048_576_000n, Gi: 1_073_741_824_000n };
  const suffix = match[3];
  if (suffix === undefined) return base;
  if (suffix === "G") return base * 1_000_000_000n;
  return suffix === "m" ? base / 1_000n : base * (scale[suffix]! / 1_000n);
}

test("mutatePod() never gives the installer a request above its limit (every combination)", () => {
  const cpus = ["0", "10m", "50m", "0.2", "200m", "1", "1500m"];
  const memories = ["0", "32Mi", "64Mi", "128Mi", "134217728", "256Mi", "1G"];
  let lowered = 0;
  let combinations = 0;
  for (const cpuRequest of cpus) {
    for (const cpuLimit of cpus) {
      for (const memoryRequest of memories) {
        for (const memoryLimit of memories) {
          combinations++;
          // Half the values come from annotations, half from the webhook env.
          const values = {
            "piggy-env-resource-cpu-request": cpuRequest,
            "piggy-env-resource-cpu-limit": cpuLimit,
            "piggy-env-resource-memory-request": memoryRequest,
            "piggy-env-resource-memory-limit": memoryLimit,
          };
          const annotations: Record<string, string> = { [`${P}aws-secret-name`]: "my-secret" };
          const env = { ...BASE_ENV };
          for (const [index, [key, value]] of Object.entries(values).entries()) {
            if ((index + combinations) % 2 === 0) annotations[`${P}${key}`] = value;
            else env[key.toUpperCase().replaceAll("-", "_")] = value;
          }
          const resolved = resolveConfig(annotations, (name) => env[name]);
          assert.deepEqual(resolved.problems, [], JSON.stringify(values));
          const result = mutatePod(
            podOf([{ ...trigger(), command: ["/app"] }], { annotations }),
            resolved.config,
            NO_FACTS,
            counter(),
          );
          assert.equal(
            result.denial,
            undefined,
            JSON.stringify([values, result.denial, result.skipReason]),
          );
          const resources = installer(result.pod)?.resources;
          const requests = resources?.requests as Record<string, string>;
          const limits = resources?.limits as Record<string, string>;
          assert.deepEqual(limits, { cpu: cpuLimit, memory: memoryLimit });
          const expected: string[] = [];
          for (
            const [resource, request, limit] of [
              ["cpu", cpuRequest, cpuLimit],
              ["memory", memoryRequest, memoryLimit],
            ] as const
          ) {
            assert.ok(nanoUnits(requests[resource]!) <= nanoUnits(limit), JSON.stringify(values));
            if (nanoUnits(request) > nanoUnits(limit)) {
              assert.equal(requests[resource], limit, JSON.stringify(values));
              expected.push(
                `Installer ${resource} request "${request}" is above its limit "${limit}" ` +
                  `(${P}piggy-env-resource-${resource}-request and -limit): the request is ` +
                  `lowered to "${limit}"`,
              );
              lowered++;
            } else {
              assert.equal(requests[resource], request, JSON.stringify(values));
            }
          }
          assert.deepEqual(
            result.warnings.filter((warning) => warning.startsWith("Installer ")),
            expected,
          );
        }
      }
    }
  }
  assert.equal(combinations, 2401);
  assert.ok(lowered > 1000, `${lowered} requests lowered`);
});
