import { test } from "node:test";
import assert from "node:assert/strict";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { parseAllDocuments } from "yaml";
import {
  loadAwsSeed,
  loadManifests,
  parseAwsSeed,
  parseManifest,
  secretValues,
  storedSecret,
  withAwsEndpoint,
  withLocalApp,
} from "../../testing/demo_data.ts";
import { renderManifests } from "./render_manifests.ts";
import { seedPlan } from "./seed_localstack.ts";

function pod(annotations: Record<string, string>): Pod {
  return {
    metadata: { name: "p", annotations },
    spec: {
      initContainers: [{ name: "init", command: ["/demo/app/x.sh"] }],
      containers: [{
        name: "c",
        command: ["/bin/sh", "/demo/app/print-secrets.sh"],
        args: ["TEST_ENV", "/demo/application"],
        env: [{ name: "A", value: "b" }],
      }],
    },
  };
}

test("parseAwsSeed() reads secrets and parameters and rejects wrong shapes", () => {
  const seed = parseAwsSeed(
    "region: eu-west-1\nsecretsManager:\n  - name: a/b\n    value: {K: v}\n" +
      "ssmParameters:\n  - name: /p/K\n    value: x\n",
  );
  assert.deepEqual(seed, {
    region: "eu-west-1",
    secrets: [{ name: "a/b", value: { K: "v" } }],
    parameters: [{ name: "/p/K", type: "String", value: "x" }],
  });
  for (
    const [text, pattern] of [
      ["secretsManager: []", /"region"/],
      ["region: r\nsecretsManager:\n  - name: a\n    value: {K: 1}", /value of "K"/],
      ["region: r\nssmParameters:\n  - name: p\n    value: x", /starting with "\/"/],
      ["region: r\nssmParameters:\n  - name: /p\n    type: Binary\n    value: x", /"type"/],
    ] as const
  ) {
    assert.throws(() => parseAwsSeed(text), pattern);
  }
});

test("the demo data covers every secret and SSM path the demo pods read", () => {
  const seed = loadAwsSeed();
  const pods = loadManifests().flatMap((m) => m.objects).filter((o) => o.kind === "Pod") as Pod[];
  assert.equal(pods.length, 5);
  for (const demoPod of pods) {
    const annotations = demoPod.metadata?.annotations ?? {};
    assert.equal(annotations["piggysec.com/aws-region"], seed.region, demoPod.metadata?.name);
    const path = annotations["piggysec.com/aws-ssm-parameter-path"];
    if (path) {
      assert.ok(seed.parameters.some((p) => p.name.startsWith(`${path}/`)), path);
      continue;
    }
    const name = annotations["piggysec.com/aws-secret-name"] ??
      `${demoPod.metadata?.namespace}/${demoPod.spec?.serviceAccountName ?? "default"}`;
    assert.ok(seed.secrets.some((secret) => secret.name === name), name);
    for (const container of demoPod.spec?.containers ?? []) {
      assert.ok(container.command?.length, `${container.name} sets command (Piggy requires it)`);
    }
  }
});

test("parseManifest() skips empty documents and rejects objects without kind", () => {
  assert.deepEqual(parseManifest("---\nkind: A\n---\n", "f.yaml"), [{ kind: "A" }]);
  assert.throws(() => parseManifest("a: 1\n", "f.yaml"), /f\.yaml/);
  assert.throws(() => parseManifest("kind: [\n", "f.yaml"), SyntaxError);
});

test("withAwsEndpoint() adds AWS_ENDPOINT_URL to standalone pods only, without mutating input", () => {
  const standalone = pod({ "piggysec.com/standalone": "true" });
  const copy = withAwsEndpoint(standalone, "http://localstack:4566");
  assert.deepEqual(copy.spec?.containers[0]?.env?.at(-1), {
    name: "AWS_ENDPOINT_URL",
    value: "http://localstack:4566",
  });
  assert.equal(copy.spec?.initContainers?.[0]?.env?.length, 1);
  assert.equal(standalone.spec?.containers[0]?.env?.length, 1, "input unchanged");
  assert.deepEqual(withAwsEndpoint(copy, "http://other"), copy, "an existing value is kept");
  const proxy = pod({ "piggysec.com/piggy-address": "https://piggy" });
  assert.deepEqual(withAwsEndpoint(proxy, "http://localstack:4566"), proxy);
});

test("withLocalApp() maps /demo/app/ in command and args, nothing else", () => {
  const copy = withLocalApp(pod({}), "/repo/demo/app");
  assert.deepEqual(copy.spec?.containers[0]?.command, [
    "/bin/sh",
    "/repo/demo/app/print-secrets.sh",
  ]);
  assert.deepEqual(copy.spec?.containers[0]?.args, ["TEST_ENV", "/demo/application"]);
  assert.deepEqual(copy.spec?.initContainers?.[0]?.command, ["/repo/demo/app/x.sh"]);
});

test("storedSecret() turns stringData into base64 data that secretValues() decodes", () => {
  const stored = storedSecret({
    kind: "Secret",
    data: { OLD: btoa("old") },
    stringData: { REF: "piggy:KEY\n", UNICODE: "é" },
  });
  assert.equal(stored.stringData, undefined);
  assert.deepEqual(secretValues(stored), { OLD: "old", REF: "piggy:KEY\n", UNICODE: "é" });
});

test("renderManifests() points standalone pods at the endpoint and keeps every object", () => {
  const manifests = loadManifests();
  const rendered = parseAllDocuments(renderManifests(manifests, "http://ls:4566"))
    .map((document) => document.toJS() as Pod & { kind: string });
  assert.equal(rendered.length, manifests.flatMap((m) => m.objects).length);
  for (const object of rendered.filter((o) => o.kind === "Pod")) {
    const hasEndpoint = object.spec!.containers.some((c) =>
      c.env?.some((e) => e.name === "AWS_ENDPOINT_URL" && e.value === "http://ls:4566")
    );
    const standalone = object.metadata?.annotations?.["piggysec.com/standalone"] === "true";
    assert.equal(hasEndpoint, standalone, object.metadata?.name);
  }
  assert.doesNotMatch(renderManifests(manifests), /AWS_ENDPOINT_URL/);
});

test("seedPlan() writes every secret as JSON and every parameter with its type", () => {
  const seed = loadAwsSeed();
  const plan = seedPlan(seed);
  assert.equal(plan.length, seed.secrets.length + seed.parameters.length);
  for (const secret of seed.secrets) {
    const call = plan.find((entry) => entry.name === secret.name);
    assert.ok(call?.service === "secretsmanager");
    assert.deepEqual(JSON.parse(call.secretString), secret.value);
  }
  for (const parameter of seed.parameters) {
    assert.deepEqual(plan.find((entry) => entry.name === parameter.name), {
      service: "ssm",
      ...parameter,
    });
  }
});
