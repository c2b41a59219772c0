/**
 * The chart's admission seal key: created once and kept (lookup on upgrade, resource-policy keep),
 * or taken from an existing Secret for `helm template` users; the legacy cutoff stays put across
 * upgrades.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { parseWebhookOptions } from "../src/config/webhook_options.ts";
import { sealKeyFromText } from "../src/pod/seal.ts";
import {
  dig,
  findObject,
  helmTemplate,
  type K8sObject,
  ownedByRelease,
  renderChart,
  startFakeCluster,
} from "./_chart.ts";

const NAME = "piggy-piggy-webhooks";
const NS = "piggy-system";
const SEAL_SECRET = `${NAME}-seal`;
const CUTOFF_ANNOTATION = "piggysec.com/legacy-pods-created-before";

function podSpec(objects: K8sObject[]): Record<string, unknown> {
  return dig(findObject(objects, "Deployment"), "spec", "template", "spec") as Record<
    string,
    unknown
  >;
}

function envOf(objects: K8sObject[]): Record<string, string> {
  const env = dig(podSpec(objects), "containers", 0, "env") as { name: string; value: string }[];
  return Object.fromEntries(env.map((entry) => [entry.name, entry.value]));
}

function sealVolume(objects: K8sObject[]): unknown {
  return (podSpec(objects).volumes as { name: string }[]).find((volume) => volume.name === "seal");
}

function sealData(objects: K8sObject[]): Record<string, string> {
  const data = dig(findObject(objects, "Secret", SEAL_SECRET), "data") as Record<string, string>;
  return Object.fromEntries(
    Object.entries(data).map(([key, value]) => [key, Buffer.from(value, "base64").toString()]),
  );
}

function checksum(objects: K8sObject[], name: string): unknown {
  return dig(
    findObject(objects, "Deployment"),
    "spec",
    "template",
    "metadata",
    "annotations",
    name,
  );
}

test("the chart creates the seal key Secret once, kept on uninstall, mounted read-only", async () => {
  const started = Date.now();
  const objects = await renderChart();
  const secret = findObject(objects, "Secret", SEAL_SECRET);
  assert.equal(dig(secret, "metadata", "annotations", "helm.sh/resource-policy"), "keep");
  const { key, ...rest } = sealData(objects);
  assert.deepEqual(rest, {});
  assert.match(key ?? "", /^[A-Za-z0-9]{64}$/);
  assert.equal(sealKeyFromText(key ?? "").byteLength, 64);
  assert.deepEqual(sealVolume(objects), {
    name: "seal",
    secret: { secretName: SEAL_SECRET, defaultMode: 0o444 },
  });
  const mounts = dig(podSpec(objects), "containers", 0, "volumeMounts") as unknown[];
  assert.ok(
    mounts.some((mount) =>
      JSON.stringify(mount) ===
        JSON.stringify({ name: "seal", mountPath: "/etc/piggy/seal", readOnly: true })
    ),
  );
  // What the webhook is given parses, and names the mounted files.
  const options = parseWebhookOptions((name) => envOf(objects)[name]);
  assert.deepEqual(options.sealKeyFiles, ["/etc/piggy/seal/key", "/etc/piggy/seal/previous-key"]);
  assert.equal(options.legacyPods, true);
  // The cutoff: the first render's time plus 15 minutes, stored on the Secret.
  const cutoff = envOf(objects).PIGGY_LEGACY_PODS_CREATED_BEFORE ?? "";
  assert.equal(dig(secret, "metadata", "annotations", CUTOFF_ANNOTATION), cutoff);
  const minutes = (Date.parse(cutoff) - started) / 60_000;
  assert.ok(minutes > 14 && minutes <= 15.5, `cutoff ${cutoff} is ${minutes} min ahead`);
});

test("helm template cannot look the Secret up: each render makes a new key", async () => {
  const first = sealData(await renderChart()).key;
  const second = sealData(await renderChart()).key;
  assert.notEqual(first, second);
});

test("an upgrade reuses the seal key, the previous key and the cutoff of the existing Secret", async () => {
  const installed = findObject(await renderChart(), "Secret", SEAL_SECRET);
  // An operator rotating: the new key under "key", the old one under "previous-key".
  const existing = ownedByRelease(installed, "piggy", NS);
  const data = existing.data as Record<string, string>;
  data["previous-key"] = Buffer.from("p".repeat(48)).toString("base64");
  (existing.metadata.annotations as Record<string, string>)[CUTOFF_ANNOTATION] =
    "2026-01-02T03:04:05Z";
  const cluster = await startFakeCluster({ objects: [existing] });
  try {
    const options = {
      env: { KUBECONFIG: cluster.kubeconfig },
      args: ["--dry-run=server", "--disable-openapi-validation"],
    };
    const first = await renderChart(options);
    assert.ok(cluster.requests.includes(`GET /api/v1/namespaces/${NS}/secrets/${SEAL_SECRET}`));
    const second = await renderChart(options);
    for (const upgraded of [first, second]) {
      assert.deepEqual(sealData(upgraded), {
        key: Buffer.from(data.key ?? "", "base64").toString(),
        "previous-key": "p".repeat(48),
      });
      assert.equal(envOf(upgraded).PIGGY_LEGACY_PODS_CREATED_BEFORE, "2026-01-02T03:04:05Z");
    }
    assert.equal(checksum(first, "checksum/seal"), checksum(second, "checksum/seal"));
    assert.equal(checksum(first, "checksum/config"), checksum(second, "checksum/config"));
  } finally {
    await cluster.close();
  }
});

test("with seal.existingSecret every render uses the same Secret and cutoff, and creates none", async () => {
  const values = {
    seal: { existingSecret: "my-seal" },
    legacyPods: { createdBefore: "2026-01-31T12:00:00Z" },
  };
  const renders = [await renderChart({ values }), await renderChart({ values })];
  for (const objects of renders) {
    assert.equal(objects.filter((o) => o.metadata.name === SEAL_SECRET).length, 0);
    assert.deepEqual(sealVolume(objects), {
      name: "seal",
      secret: { secretName: "my-seal", defaultMode: 0o444 },
    });
    assert.equal(envOf(objects).PIGGY_LEGACY_PODS_CREATED_BEFORE, "2026-01-31T12:00:00Z");
    assert.equal(checksum(objects, "checksum/seal"), undefined);
  }
  assert.deepEqual(podSpec(renders[0]!).volumes, podSpec(renders[1]!).volumes);
  assert.deepEqual(envOf(renders[0]!), envOf(renders[1]!));
});

test("seal.existingSecret needs legacyPods.createdBefore unless legacy pods are off", async () => {
  const failed = await helmTemplate({ values: { seal: { existingSecret: "my-seal" } } });
  assert.notEqual(failed.status, 0);
  assert.match(failed.stderr, /legacyPods\.createdBefore is required with seal\.existingSecret/);
  const off = await renderChart({
    values: { seal: { existingSecret: "my-seal" }, legacyPods: { enabled: false } },
  });
  assert.equal(envOf(off).PIGGY_LEGACY_PODS, "false");
  assert.equal(envOf(off).PIGGY_LEGACY_PODS_CREATED_BEFORE, undefined);
});

test("values.schema.json refuses a cutoff that is not RFC 3339", async () => {
  const result = await helmTemplate({ values: { legacyPods: { createdBefore: "yesterday" } } });
  assert.notEqual(result.status, 0);
  assert.match(result.stderr, /createdBefore/);
});
