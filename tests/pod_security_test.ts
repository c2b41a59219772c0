/**
 * The mutated pod, with the launcher installer and the projected token volume, still validates
 * against the Pod schema and meets the Pod Security "restricted" profile (encoded in
 * fixtures/pods/_pod_security.ts), in proxy and standalone mode, with a native sidecar.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import type { Container, Pod, SecurityContext } from "kubernetes-types/core/v1.d.ts";
import { parseWebhookOptions } from "../src/config/webhook_options.ts";
import { createMutateHandler } from "../src/admission/mutate_handler.ts";
import { TOKEN_VOLUME_NAME } from "../src/constants.ts";
import { FakeKubeClient } from "../src/k8s/fake.ts";
import { assertValidPod } from "../testing/fixtures/pods/_pod_schema.ts";
import {
  baselineViolations,
  restrictedViolations,
} from "../testing/fixtures/pods/_pod_security.ts";
import {
  applyReview,
  captureLogger,
  CHART_ENV,
  envOf,
  mutateRequest,
  readJson,
  reviewOf,
  sequentialUids,
  TEST_SEAL_KEY,
} from "../testing/fixtures/pods/_support.ts";

function restrictedContext(): SecurityContext {
  return {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    runAsNonRoot: true,
    seccompProfile: { type: "RuntimeDefault" },
  };
}

function app(name: string, extra: Partial<Container> = {}): Container {
  return {
    name,
    image: `registry.example/${name}:1.0`,
    command: [`/bin/${name}`],
    env: [{ name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" }],
    securityContext: restrictedContext(),
    ...extra,
  };
}

/** A pod that meets "restricted" as written. */
function restrictedPod(annotations: Record<string, string> = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "web",
      namespace: "team-a",
      annotations: { "piggysec.com/aws-secret-name": "team-a/web", ...annotations },
    },
    spec: {
      serviceAccountName: "web",
      securityContext: { runAsUser: 1000, runAsNonRoot: true },
      initContainers: [app("proxy", { restartPolicy: "Always" })],
      containers: [app("web"), {
        name: "plain",
        image: "registry.example/plain:1",
        securityContext: restrictedContext(),
      }],
    },
  };
}

async function mutated(pod: Pod, env: Record<string, string> = {}): Promise<Pod> {
  const { logger } = captureLogger();
  const mutate = createMutateHandler({
    kube: new FakeKubeClient(),
    options: parseWebhookOptions(envOf({ ...CHART_ENV, ...env })),
    logger,
    newUid: sequentialUids(),
    sealKeys: [TEST_SEAL_KEY],
  });
  const { body } = await readJson(await mutate(mutateRequest(reviewOf(pod))));
  assert.equal(body.response.allowed, true, body.response.status?.message);
  return applyReview(pod, body);
}

test("the Pod Security checks find each kind of violation", () => {
  const pod = restrictedPod();
  assert.deepEqual(restrictedViolations(pod), []);
  const bad = structuredClone(pod);
  const web = bad.spec!.containers[0]!;
  web.securityContext = { privileged: true, capabilities: { add: ["SYS_ADMIN"] } };
  web.ports = [{ containerPort: 80, hostPort: 80 }];
  bad.spec!.hostNetwork = true;
  bad.spec!.volumes = [{ name: "host", hostPath: { path: "/" } }, {
    name: "nfs",
    nfs: { server: "nfs", path: "/" },
  }];
  bad.spec!.securityContext = { runAsUser: 0, seccompProfile: { type: "Unconfined" } };
  const baseline = baselineViolations(bad);
  for (
    const expected of [
      /hostNetwork/,
      /hostPath/,
      /privileged/,
      /"SYS_ADMIN" is not allowed/,
      /hostPort/,
      /Unconfined/,
    ]
  ) {
    assert.ok(baseline.some((line) => expected.test(line)), `${expected} in ${baseline}`);
  }
  const restricted = restrictedViolations(bad);
  for (
    const expected of [
      /nfs volume/,
      /runAsUser must not be 0/,
      /containers\[0\]\.securityContext\.allowPrivilegeEscalation must be false/,
      /containers\[0\] must run as non-root/,
      /containers\[0\]\.securityContext\.capabilities\.drop must include ALL/,
      /containers\[0\] needs seccompProfile/,
    ]
  ) {
    assert.ok(restricted.some((line) => expected.test(line)), `${expected} in ${restricted}`);
  }
});

test("a restricted pod stays restricted and schema-valid after the mutation, projected token included", async () => {
  const pod = restrictedPod();
  const out = await mutated(pod);
  assert.ok(out.spec?.volumes?.some((volume) => volume.name === TOKEN_VOLUME_NAME));
  assert.deepEqual(
    [...out.spec!.initContainers!, ...out.spec!.containers].map((c) => [
      c.name,
      c.volumeMounts?.some((mount) => mount.name === TOKEN_VOLUME_NAME) ?? false,
    ]),
    [["install-piggy-env", false], ["proxy", true], ["web", true], ["plain", false]],
  );
  assertValidPod(out, pod);
  assert.deepEqual(restrictedViolations(out), []);
});

test("a restricted standalone pod stays restricted and gets no token volume", async () => {
  const pod = restrictedPod({ "piggysec.com/standalone": "true" });
  const out = await mutated(pod);
  assert.equal(out.spec?.volumes?.some((volume) => volume.name === TOKEN_VOLUME_NAME), false);
  assertValidPod(out, pod);
  assert.deepEqual(restrictedViolations(out), []);
});

test("a restricted pod stays restricted with the launcher from an image volume", async () => {
  const pod = restrictedPod();
  const out = await mutated(pod, { PIGGY_LAUNCHER_IMAGE_VOLUME: "true" });
  const launcher = out.spec?.volumes?.find((volume) => "image" in volume);
  assert.ok(launcher, "an image volume carries the launcher");
  assert.equal(out.spec!.initContainers!.some((c) => c.name === "install-piggy-env"), false);
  assert.deepEqual(restrictedViolations(out), []);
  const nfs = structuredClone(out);
  nfs.spec!.volumes!.push({ name: "nfs", nfs: { server: "nfs", path: "/" } });
  assert.ok(restrictedViolations(nfs).some((line) => /nfs volume/.test(line)));
});
