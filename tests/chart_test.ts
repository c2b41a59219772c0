/**
 * Chart tests with the real helm: lint, the default render (every object validated against the
 * Kubernetes schemas by `renderChart`) and the fields that matter, and values.schema.json.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { parseWebhookOptions } from "../src/config/webhook_options.ts";
import {
  CHART_DIR,
  dig,
  findObject,
  FIXTURES_DIR,
  helm,
  helmTemplate,
  type K8sObject,
  renderChart,
  renderNotes,
} from "./_chart.ts";

const NAME = "piggy-piggy-webhooks";
const NS = "piggy-system";
const TLS_SECRET = "piggy-piggy-webhooks-webhook-tls";

/** Every RBAC grant of the rendered ClusterRoles as "group/resource:verb". */
function grants(objects: K8sObject[]): string[] {
  const out: string[] = [];
  for (const role of objects.filter((o) => o.kind === "ClusterRole" || o.kind === "Role")) {
    for (const rule of (role.rules as Record<string, string[]>[] | undefined) ?? []) {
      for (const group of rule.apiGroups ?? []) {
        for (const resource of rule.resources ?? []) {
          for (const verb of rule.verbs ?? []) out.push(`${group}/${resource}:${verb}`);
        }
      }
    }
  }
  return out.sort();
}

function container(objects: K8sObject[]): Record<string, unknown> {
  const deployment = findObject(objects, "Deployment");
  return dig(deployment, "spec", "template", "spec", "containers", 0) as Record<string, unknown>;
}

function envOf(objects: K8sObject[]): Record<string, string> {
  const env = container(objects).env as { name: string; value: string }[];
  return Object.fromEntries(env.map((e) => [e.name, e.value]));
}

function webhook(objects: K8sObject[]): Record<string, unknown> {
  return dig(findObject(objects, "MutatingWebhookConfiguration"), "webhooks", 0) as Record<
    string,
    unknown
  >;
}

test("helm lint passes with defaults, strictly", async () => {
  const result = await helm(["lint", "--strict", CHART_DIR]);
  assert.equal(result.status, 0, result.stdout + result.stderr);
});

test("helm lint passes with each Go Piggy 0.7.5 values fixture", async () => {
  for (const file of ["defaults", "eks-production", "cert-manager", "exposed"]) {
    const result = await helm([
      "lint",
      CHART_DIR,
      "-f",
      join(FIXTURES_DIR, `go-0.7.5-${file}.yaml`),
    ]);
    assert.equal(result.status, 0, `${file}: ${result.stdout}${result.stderr}`);
  }
});

test("default render has exactly the expected objects", async () => {
  const kinds = (await renderChart()).map((o) => `${o.kind}/${o.metadata.name}`).sort();
  assert.deepEqual(kinds, [
    `ClusterRole/${NAME}-${NS}`,
    `ClusterRoleBinding/${NAME}-${NS}`,
    `ConfigMap/${NAME}-ca-bundle`,
    `Deployment/${NAME}`,
    `MutatingWebhookConfiguration/${NAME}-${NS}`,
    `Pod/${NAME}-test-healthz`,
    `PodDisruptionBudget/${NAME}`,
    `Secret/${NAME}-seal`,
    `Secret/${NAME}-webhook-tls`,
    `Service/${NAME}`,
    `ServiceAccount/${NAME}`,
    `ValidatingAdmissionPolicy/${NAME}-annotations-${NS}`,
    `ValidatingAdmissionPolicyBinding/${NAME}-annotations-${NS}`,
  ]);
});

test("Deployment runs 2 hardened replicas with HTTPS probes on port tcp", async () => {
  const objects = await renderChart();
  const deployment = findObject(objects, "Deployment");
  assert.equal(dig(deployment, "spec", "replicas"), 2);
  const pod = dig(deployment, "spec", "template", "spec") as Record<string, unknown>;
  assert.equal(pod.priorityClassName, "system-cluster-critical");
  assert.equal(dig(pod, "securityContext", "runAsNonRoot"), true);
  assert.equal(dig(pod, "securityContext", "seccompProfile", "type"), "RuntimeDefault");
  const c = container(objects);
  assert.deepEqual(dig(c, "securityContext", "capabilities", "drop"), ["ALL"]);
  assert.equal(dig(c, "securityContext", "readOnlyRootFilesystem"), true);
  assert.equal(dig(c, "securityContext", "allowPrivilegeEscalation"), false);
  assert.equal(dig(c, "securityContext", "runAsNonRoot"), true);
  assert.equal(dig(c, "securityContext", "runAsUser"), 65532);
  assert.equal(dig(c, "securityContext", "seccompProfile", "type"), "RuntimeDefault");
  assert.deepEqual(c.ports, [{ name: "tcp", containerPort: 8443, protocol: "TCP" }]);
  assert.deepEqual(dig(c, "readinessProbe", "httpGet"), {
    scheme: "HTTPS",
    path: "/readyz",
    port: "tcp",
  });
  assert.deepEqual(dig(c, "livenessProbe", "httpGet"), {
    scheme: "HTTPS",
    path: "/healthz",
    port: "tcp",
  });
});

test("Deployment spreads replicas over nodes and zones with its own selector", async () => {
  const deployment = findObject(await renderChart(), "Deployment");
  const selector = dig(deployment, "spec", "selector", "matchLabels");
  const spread = dig(deployment, "spec", "template", "spec", "topologySpreadConstraints") as {
    topologyKey: string;
    labelSelector: unknown;
  }[];
  assert.deepEqual(spread.map((s) => s.topologyKey), [
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
  ]);
  for (const s of spread) assert.deepEqual(s.labelSelector, { matchLabels: selector });
});

test("Deployment mounts the TLS Secret and passes the webhook settings", async () => {
  const objects = await renderChart();
  const { PIGGY_LEGACY_PODS_CREATED_BEFORE: cutoff, ...env } = envOf(objects);
  assert.deepEqual(env, {
    DEBUG: "false",
    LISTEN_ADDRESS: ":8443",
    PIGGY_ADMISSION_TIMEOUT: "4s",
    PIGGY_ALLOWED_ADDRESSES: `https://${NAME}.${NS}.svc.cluster.local`,
    PIGGY_CA_BUNDLE_FILE: "/certs/ca.crt",
    PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:0.8.0",
    PIGGY_ENV_IMAGE_PULL_POLICY: "IfNotPresent",
    PIGGY_LEGACY_PODS: "true",
    PIGGY_SEAL_KEY_FILES: "/etc/piggy/seal/key,/etc/piggy/seal/previous-key",
    TLS_CERT_FILE: "/certs/tls.crt",
    TLS_PRIVATE_KEY_FILE: "/certs/tls.key",
  });
  assert.match(cutoff ?? "", /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  const c = container(objects);
  assert.equal(c.image, "ghcr.io/piggysec/piggy-webhooks:0.8.0");
  const volumes = dig(findObject(objects, "Deployment"), "spec", "template", "spec", "volumes");
  assert.deepEqual((volumes as unknown[])[0], {
    name: "certs",
    secret: { secretName: `${NAME}-webhook-tls`, defaultMode: 0o444 },
  });
  assert.deepEqual((c.volumeMounts as unknown[])[0], {
    name: "certs",
    mountPath: "/certs",
    readOnly: true,
  });
});

test("Deployment user env is upper-cased and cannot move the certificate paths", async () => {
  const env = envOf(
    await renderChart({
      values: {
        env: { aws_region: "eu-west-1", TLS_CERT_FILE: "/elsewhere", DEBUG: "true", N: 3 },
        port: 9443,
      },
    }),
  );
  assert.equal(env.AWS_REGION, "eu-west-1");
  assert.equal(env.DEBUG, "true");
  assert.equal(env.N, "3");
  assert.equal(env.TLS_CERT_FILE, "/certs/tls.crt");
  assert.equal(env.LISTEN_ADDRESS, ":9443");
});

test("Deployment checksum annotation follows the certificate and the configuration", async () => {
  const annotations = async (values: Record<string, unknown>) =>
    dig(
      findObject(await renderChart({ values }), "Deployment"),
      "spec",
      "template",
      "metadata",
      "annotations",
    ) as Record<string, string>;
  const first = await annotations({});
  const second = await annotations({});
  assert.match(first["checksum/tls"] ?? "", /^[0-9a-f]{64}$/);
  // helm template cannot see the cluster: each render generates a new certificate.
  assert.notEqual(first["checksum/tls"], second["checksum/tls"]);
  assert.equal(first["checksum/config"], second["checksum/config"]);
  assert.notEqual(
    (await annotations({ debug: true }))["checksum/config"],
    first["checksum/config"],
  );
});

test("MutatingWebhookConfiguration has the safe admission settings", async () => {
  const objects = await renderChart();
  const hook = webhook(objects);
  assert.equal(hook.name, `${NAME}.${NS}.svc`);
  assert.deepEqual(hook.admissionReviewVersions, ["v1"]);
  assert.equal(hook.sideEffects, "None");
  assert.equal(hook.timeoutSeconds, 5);
  assert.equal(hook.failurePolicy, "Fail");
  assert.equal(hook.reinvocationPolicy, "IfNeeded");
  assert.equal(hook.matchPolicy, "Equivalent");
  assert.deepEqual(hook.rules, [{
    operations: ["CREATE"],
    apiGroups: [""],
    apiVersions: ["v1"],
    resources: ["pods"],
    scope: "Namespaced",
  }]);
  assert.deepEqual(dig(hook, "clientConfig", "service"), {
    name: NAME,
    namespace: NS,
    path: "/mutate",
    port: 443,
  });
  assert.equal(hook.objectSelector, undefined);
  const conditions = hook.matchConditions as { name: string; expression: string }[];
  assert.equal(conditions.length, 1);
  for (const key of ["piggy-address", "aws-secret-name", "aws-ssm-parameter-path"]) {
    assert.ok(conditions[0]?.expression.includes(`'piggysec.com/${key}'`), key);
  }
});

test("MutatingWebhookConfiguration never sends the release namespace or kube-system", async () => {
  const hook = webhook(await renderChart());
  assert.deepEqual(dig(hook, "namespaceSelector", "matchExpressions"), [{
    key: "kubernetes.io/metadata.name",
    operator: "NotIn",
    values: [NS, "kube-system"],
  }]);
});

test("RBAC grants exactly what the webhook calls and nothing else", async () => {
  const objects = await renderChart();
  assert.deepEqual(grants(objects), [
    "/configmaps:get",
    "/pods:get",
    "/secrets:get",
    "/serviceaccounts:get",
    "authentication.k8s.io/tokenreviews:create",
  ]);
  const binding = findObject(objects, "ClusterRoleBinding");
  assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: NAME, namespace: NS }]);
  assert.equal(dig(binding, "roleRef", "name"), findObject(objects, "ClusterRole").metadata.name);
});

test("RBAC is rendered for an existing ServiceAccount too", async () => {
  const objects = await renderChart({
    values: { serviceAccount: { create: false, name: "mine" } },
  });
  assert.equal(objects.filter((o) => o.kind === "ServiceAccount").length, 0);
  assert.equal(dig(findObject(objects, "ClusterRoleBinding"), "subjects", 0, "name"), "mine");
  assert.equal(
    dig(findObject(objects, "Deployment"), "spec", "template", "spec", "serviceAccountName"),
    "mine",
  );
});

test("two releases in different namespaces have distinct cluster-scoped names", async () => {
  const clusterNames = async (namespace: string) =>
    (await renderChart({ namespace })).filter((o) => o.metadata.namespace === undefined).map((o) =>
      `${o.kind}/${o.metadata.name}`
    );
  const a = await clusterNames("team-a");
  const b = await clusterNames("team-b");
  assert.equal(a.length, 5);
  assert.deepEqual(a.filter((name) => b.includes(name)), []);
  for (const name of a) assert.ok(name.endsWith("-team-a"), name);
});

test("the CA is published in a ConfigMap and matches the webhook caBundle", async () => {
  const objects = await renderChart();
  const ca = dig(findObject(objects, "ConfigMap"), "data", "ca.crt") as string;
  assert.match(ca, /^-----BEGIN CERTIFICATE-----\n/);
  const secretCa = Buffer.from(
    dig(findObject(objects, "Secret", TLS_SECRET), "data", "ca.crt") as string,
    "base64",
  ).toString();
  const bundle = Buffer.from(dig(webhook(objects), "clientConfig", "caBundle") as string, "base64")
    .toString();
  assert.equal(secretCa.trim(), ca.trim());
  assert.equal(bundle.trim(), ca.trim());
});

test("the helm test pod calls /healthz over HTTPS and verifies the certificate", async () => {
  const pod = findObject(await renderChart(), "Pod");
  assert.equal(dig(pod, "metadata", "annotations", "helm.sh/hook"), "test");
  const args = dig(pod, "spec", "containers", 0, "args") as string[];
  assert.equal(args.at(-1), `https://${NAME}.${NS}.svc:443/healthz`);
  assert.equal(args[args.indexOf("--cacert") + 1], "/ca/ca.crt");
  assert.ok(!args.includes("--insecure") && !args.includes("-k"));
  assert.deepEqual(dig(pod, "spec", "volumes", 0, "secret"), {
    secretName: `${NAME}-webhook-tls`,
    items: [{ key: "ca.crt", path: "ca.crt" }],
  });
});

test("NOTES give the proxy address and say which pods reach the webhook", async () => {
  const notes = await renderNotes();
  assert.ok(notes.includes(`piggysec.com/piggy-address: https://${NAME}.${NS}.svc.cluster.local`));
  assert.ok(notes.includes(`${NS}, kube-system`));
  assert.ok(notes.includes("matching mutate.matchConditions"));
  assert.ok(notes.includes(`ConfigMap "${NAME}-ca-bundle"`));
  assert.ok(notes.includes(`helm test piggy -n ${NS}`));
  assert.ok(!notes.includes("WARNING"));
});

// values.schema.json

const REJECTED: [string, Record<string, unknown>, RegExp][] = [
  ["an unknown top-level key", { replicas: 3 }, /additional properties 'replicas' not allowed/],
  [
    "an unknown nested key",
    { mutate: { certificate: { certmanager: { enabled: true } } } },
    /certmanager/,
  ],
  ["a string replica count", { replicaCount: "two" }, /replicaCount/],
  ["a timeout over 30 s", { mutate: { timeoutSeconds: 31 } }, /timeoutSeconds/],
  ["a true timeout", { mutate: { timeoutSeconds: true } }, /timeoutSeconds/],
  ["a lower-case failure policy", { mutate: { podsFailurePolicy: "fail" } }, /podsFailurePolicy/],
  ["a pull policy typo", { image: { pullPolicy: "IfNotPresen" } }, /pullPolicy/],
  ["a match condition without expression", {
    mutate: { matchConditions: [{ name: "x" }] },
  }, /expression/],
  ["a non-string annotation", { podAnnotations: { a: 1 } }, /podAnnotations/],
  ["an env map as a list", { env: [{ name: "A", value: "b" }] }, /env/],
  ["an unknown ingress key", { ingress: { hosts: ["a"] } }, /hosts/],
];

for (const [what, values, message] of REJECTED) {
  test(`values.schema.json rejects ${what}`, async () => {
    const result = await helmTemplate({ values });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /values don't meet the specifications of the schema/);
    assert.match(result.stderr, message);
  });
}

test("values.schema.json accepts Go Piggy's null and false defaults", async () => {
  const objects = await renderChart({
    values: {
      aws: { roleArn: null },
      mutate: {
        timeoutSeconds: false,
        certificate: { tls: { crt: null, key: null }, ca: { crt: null } },
      },
      debug: "true",
    },
  });
  assert.equal(webhook(objects).timeoutSeconds, 5);
  assert.equal(envOf(objects).DEBUG, "true");
});

test("the webhook's admission deadline stays below the webhook's timeoutSeconds", async () => {
  const cases: [unknown, string][] = [[undefined, "4s"], [false, "4s"], [1, "800ms"], [2, "1s"], [
    30,
    "29s",
  ]];
  for (const [timeoutSeconds, deadline] of cases) {
    const objects = await renderChart({
      values: {
        mutate: timeoutSeconds === undefined ? {} : { timeoutSeconds },
        // A value given through env is replaced: the chart keeps the order of the two.
        env: { PIGGY_ADMISSION_TIMEOUT: "1m" },
      },
    });
    const seconds = Number(webhook(objects).timeoutSeconds);
    const env = envOf(objects);
    assert.equal(env.PIGGY_ADMISSION_TIMEOUT, deadline, `timeoutSeconds ${timeoutSeconds}`);
    const ms = parseWebhookOptions((name) => env[name]).admissionTimeoutMs;
    assert.ok(ms < seconds * 1000, `${ms} ms deadline, timeoutSeconds ${seconds}`);
  }
});

test("Deployment gives the webhook time to turn not-ready and drain before SIGKILL", async () => {
  const objects = await renderChart();
  const spec = dig(findObject(objects, "Deployment"), "spec", "template", "spec") as Record<
    string,
    unknown
  >;
  // PIGGY_SHUTDOWN_DELAY (5 s by default) + the 25 s drain bound must fit in the grace period.
  assert.ok(Number(spec.terminationGracePeriodSeconds) > 30);
  assert.equal(envOf(objects).PIGGY_SHUTDOWN_DELAY, undefined, "the 5 s default applies");
});
