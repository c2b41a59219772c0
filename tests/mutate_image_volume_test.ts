/**
 * PIGGY_LAUNCHER_IMAGE_VOLUME through the /mutate handler: the launcher comes from an image volume
 * of the piggy-env image (no installer, no emptyDir), mounted read-only with `subPath` at the
 * launcher directory the Dockerfile installs. Every answer is applied as a JSON Patch, the result
 * is validated against the Kubernetes Pod schema (kubernetes-models, which has `volumes[].image`),
 * and a second pass must yield no patch. Off, the output is the default one.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import { Pod as PodModel } from "kubernetes-models/v1/Pod";
import { createMutateHandler } from "../src/admission/mutate_handler.ts";
import type { AdmissionReviewResponse } from "../src/admission/types.ts";
import { parseWebhookOptions } from "../src/config/webhook_options.ts";
import {
  INSTALLER_NAME,
  LAUNCHER_IMAGE_SUBPATH,
  LAUNCHER_PATH,
  MOUNT_PATH,
  TOKEN_VOLUME_NAME,
  VOLUME_NAME,
} from "../src/constants.ts";
import { FakeKubeClient } from "../src/k8s/fake.ts";
import { assertValidPod } from "../testing/fixtures/pods/_pod_schema.ts";
import {
  applyReview,
  captureLogger,
  CHART_ENV,
  envOf,
  loadPod,
  mutateRequest,
  patchOf,
  readJson,
  reviewOf,
  sequentialUids,
  TEST_SEAL_KEY,
} from "../testing/fixtures/pods/_support.ts";

const ON: Readonly<Record<string, string>> = { ...CHART_ENV, PIGGY_LAUNCHER_IMAGE_VOLUME: "true" };

async function admit(
  pod: Pod,
  env: Readonly<Record<string, string>>,
  newUid: () => string = sequentialUids(),
): Promise<AdmissionReviewResponse> {
  const { logger } = captureLogger();
  const mutate = createMutateHandler({
    kube: new FakeKubeClient(),
    options: parseWebhookOptions(envOf({ ...env })),
    logger,
    newUid,
    sealKeys: [TEST_SEAL_KEY],
  });
  const response = await mutate(mutateRequest(reviewOf(pod)));
  assert.equal(response.status, 200);
  return (await readJson(response)).body;
}

/** Admits, applies the patch, validates the pod, and checks that a second pass patches nothing. */
async function admitTwice(pod: Pod, env: Readonly<Record<string, string>>): Promise<Pod> {
  const review = await admit(pod, env);
  assert.equal(review.response.allowed, true, review.response.status?.message);
  const patched = applyReview(pod, review);
  assertValidPod(patched, pod);
  const again = await admit(patched, env, () => "f".repeat(32));
  assert.equal(again.response.allowed, true);
  assert.deepEqual(patchOf(again), [], "second pass must not patch");
  return patched;
}

function byName(containers: readonly Container[] | undefined, name: string): Container {
  const found = containers?.find((container) => container.name === name);
  assert.ok(found, `container ${name}`);
  return found;
}

const IMAGE_MOUNT = {
  name: VOLUME_NAME,
  mountPath: MOUNT_PATH,
  readOnly: true,
  subPath: LAUNCHER_IMAGE_SUBPATH,
};

/** Without the projected token's volume or mount (its own tests cover it). */
function withoutToken<T extends { name: string }>(list: T[] | undefined): T[] | undefined {
  return list?.filter((entry) => entry.name !== TOKEN_VOLUME_NAME);
}

test("image volume: no installer, one image volume, read-only subPath mount, launcher command", async () => {
  const patched = await admitTwice(loadPod("app"), ON);
  assert.equal(patched.spec?.initContainers, undefined, "no init container is added");
  assert.deepEqual(withoutToken(patched.spec?.volumes), [{
    name: VOLUME_NAME,
    image: { reference: CHART_ENV.PIGGY_ENV_IMAGE, pullPolicy: "IfNotPresent" },
  }]);
  const app = byName(patched.spec?.containers, "app");
  assert.deepEqual(withoutToken(app.volumeMounts), [IMAGE_MOUNT]);
  assert.deepEqual(app.command, [LAUNCHER_PATH]);
  assert.deepEqual(app.args, ["--", "python", "app.py"]);
  assert.ok(LAUNCHER_PATH.startsWith(MOUNT_PATH), "the launcher lies in the mount");
});

test("image volume: the pull policy follows the installer's setting", async () => {
  const patched = await admitTwice(loadPod("app"), {
    ...ON,
    PIGGY_ENV_IMAGE_PULL_POLICY: "Always",
  });
  const volume = patched.spec?.volumes?.[0] as { image?: { pullPolicy?: string } } | undefined;
  assert.equal(volume?.image?.pullPolicy, "Always");
});

test("image volume: wrapped init containers and sidecars mount it too; pod init order kept", async () => {
  const pod = loadPod("sidecar");
  const patched = await admitTwice(pod, ON);
  assert.deepEqual(
    patched.spec?.initContainers?.map((container) => container.name),
    pod.spec?.initContainers?.map((container) => container.name),
  );
  assert.ok(!patched.spec?.initContainers?.some((c) => c.name === INSTALLER_NAME));
  const migrate = byName(patched.spec?.initContainers, "migrate");
  assert.deepEqual(withoutToken(migrate.volumeMounts), [IMAGE_MOUNT]);
  assert.deepEqual(migrate.command, [LAUNCHER_PATH]);
  const orders = byName(patched.spec?.containers, "orders");
  assert.deepEqual(withoutToken(orders.volumeMounts), [IMAGE_MOUNT]);
  assert.equal(byName(patched.spec?.containers, "metrics").volumeMounts, undefined);
});

test("image volume: without PIGGY_ENV_IMAGE the pod is denied, naming the setting", async () => {
  const { PIGGY_ENV_IMAGE: _, ...env } = ON;
  const review = await admit(loadPod("app"), env);
  assert.equal(review.response.allowed, false);
  assert.match(review.response.status?.message ?? "", /PIGGY_ENV_IMAGE/);
});

test("image volume: off (unset or false) gives the installer and emptyDir output", async () => {
  const unset = await admit(loadPod("app"), CHART_ENV);
  const off = await admit(loadPod("app"), { ...CHART_ENV, PIGGY_LAUNCHER_IMAGE_VOLUME: "false" });
  assert.deepEqual(patchOf(off), patchOf(unset));
  const patched = applyReview(loadPod("app"), off);
  assert.equal(patched.spec?.initContainers?.[0]?.name, INSTALLER_NAME);
  assert.ok(patched.spec?.volumes?.[0]?.emptyDir);
  assert.deepEqual(withoutToken(byName(patched.spec?.containers, "app").volumeMounts), [
    { name: VOLUME_NAME, mountPath: MOUNT_PATH, readOnly: true },
  ]);
});

test("image volume: an invalid PIGGY_LAUNCHER_IMAGE_VOLUME stops start-up", () => {
  assert.throws(
    () => parseWebhookOptions(envOf({ ...CHART_ENV, PIGGY_LAUNCHER_IMAGE_VOLUME: "yes" })),
    /PIGGY_LAUNCHER_IMAGE_VOLUME/,
  );
});

test("image volume: the schema in use knows volumes[].image (a bad pull policy fails)", () => {
  const pod = loadPod("app");
  pod.spec!.volumes = [
    { name: VOLUME_NAME, image: { reference: "x", pullPolicy: "Sometimes" } } as never,
  ];
  assert.throws(() => new PodModel(pod as ConstructorParameters<typeof PodModel>[0]).validate());
});

test("image volume: the subPath is where the Dockerfile installs the launcher tree", () => {
  const dockerfile = readFileSync(new URL("../Dockerfile", import.meta.url), "utf8");
  const stage = dockerfile.slice(dockerfile.indexOf(" AS piggy-env"));
  assert.match(
    stage.slice(0, stage.indexOf("\nFROM ")),
    new RegExp(`COPY [^\\n]*/piggy-env-dist/ /${LAUNCHER_IMAGE_SUBPATH}/\\n`),
  );
});
