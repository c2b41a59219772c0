/**
 * Chart tests with the real helm: non-default values and Go Piggy 0.7.5 values files. Every render
 * is validated against the Kubernetes schemas by `renderChart`.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  dig,
  findObject,
  FIXTURES_DIR,
  helmTemplate,
  type K8sObject,
  renderChart,
  renderNotes,
  startFakeCluster,
} from "./_chart.ts";
import { parseAllowedAddresses } from "../src/config/allowed_addresses.ts";

const NS = "piggy-system";
const TLS_SECRET = "piggy-piggy-webhooks-webhook-tls";

function webhook(objects: K8sObject[]): Record<string, unknown> {
  return dig(findObject(objects, "MutatingWebhookConfiguration"), "webhooks", 0) as Record<
    string,
    unknown
  >;
}

function envOf(objects: K8sObject[]): Record<string, string> {
  const deployment = findObject(objects, "Deployment");
  const env = dig(deployment, "spec", "template", "spec", "containers", 0, "env") as {
    name: string;
    value: string;
  }[];
  return Object.fromEntries(env.map((e) => [e.name, e.value]));
}

function excluded(objects: K8sObject[]): unknown {
  return dig(webhook(objects), "namespaceSelector", "matchExpressions", 0, "values");
}

function fixture(name: string): string {
  return join(FIXTURES_DIR, `go-0.7.5-${name}.yaml`);
}

test("mutate.objectSelector is rendered as the webhook objectSelector", async () => {
  const selector = {
    matchLabels: { "piggysec.com/inject": "true" },
    matchExpressions: [{ key: "tier", operator: "NotIn", values: ["system"] }],
  };
  const hook = webhook(await renderChart({ values: { mutate: { objectSelector: selector } } }));
  assert.deepEqual(hook.objectSelector, selector);
});

test("mutate.excludeNamespaces adds to the release namespace and kube-system, once each", async () => {
  const objects = await renderChart({
    values: { mutate: { excludeNamespaces: ["monitoring", NS, "kube-system", "istio-system"] } },
  });
  assert.deepEqual(excluded(objects), [NS, "kube-system", "monitoring", "istio-system"]);
});

test("autoscaling renders an HPA and leaves replicas to it", async () => {
  const objects = await renderChart({
    values: {
      autoscaling: {
        enabled: true,
        minReplicas: 3,
        maxReplicas: 7,
        targetCPUUtilizationPercentage: 60,
        targetMemoryUtilizationPercentage: 70,
      },
    },
  });
  assert.equal(dig(findObject(objects, "Deployment"), "spec", "replicas"), undefined);
  const hpa = findObject(objects, "HorizontalPodAutoscaler");
  assert.equal(dig(hpa, "spec", "minReplicas"), 3);
  assert.equal(dig(hpa, "spec", "maxReplicas"), 7);
  assert.equal(dig(hpa, "spec", "scaleTargetRef", "name"), "piggy-piggy-webhooks");
  const metrics = dig(hpa, "spec", "metrics") as unknown[];
  assert.deepEqual(
    metrics.map((
      m,
    ) => [dig(m, "resource", "name"), dig(m, "resource", "target", "averageUtilization")]),
    [["cpu", 60], ["memory", 70]],
  );
});

test("--kube-version 1.26 renders no matchConditions, 1.27 does", async () => {
  assert.equal(webhook(await renderChart({ kubeVersion: "1.26.9" })).matchConditions, undefined);
  assert.equal(
    (webhook(await renderChart({ kubeVersion: "1.27.0" })).matchConditions as unknown[]).length,
    1,
  );
});

test("NOTES on Kubernetes 1.26 warn that every pod reaches the webhook", async () => {
  const cluster = await startFakeCluster({ minor: 26 });
  try {
    const notes = await renderNotes({}, cluster);
    assert.ok(notes.includes("EVERY pod created in the other namespaces"), notes);
    assert.ok(notes.includes("they need Kubernetes 1.27 or later"), notes);
  } finally {
    await cluster.close();
  }
});

test("an empty mutate.matchConditions renders none", async () => {
  assert.equal(
    webhook(await renderChart({ values: { mutate: { matchConditions: [] } } })).matchConditions,
    undefined,
  );
});

test("mutate timeout, failure and reinvocation policies are passed through", async () => {
  const hook = webhook(
    await renderChart({
      values: {
        mutate: { timeoutSeconds: 12, podsFailurePolicy: "Ignore", reinvocationPolicy: "Never" },
      },
    }),
  );
  assert.equal(hook.timeoutSeconds, 12);
  assert.equal(hook.failurePolicy, "Ignore");
  assert.equal(hook.reinvocationPolicy, "Never");
});

test("PIGGY_ADDRESS is set only when mutate.defaultPiggyAddress is on", async () => {
  assert.equal(envOf(await renderChart()).PIGGY_ADDRESS, undefined);
  assert.equal(
    envOf(await renderChart({ values: { mutate: { defaultPiggyAddress: true } } })).PIGGY_ADDRESS,
    `https://piggy-piggy-webhooks.${NS}.svc.cluster.local`,
  );
  assert.equal(
    envOf(
      await renderChart({
        values: {
          mutate: { defaultPiggyAddress: true },
          service: { port: 8443 },
          clusterDomain: "corp.internal",
        },
      }),
    ).PIGGY_ADDRESS,
    `https://piggy-piggy-webhooks.${NS}.svc.corp.internal:8443`,
  );
});

test("PIGGY_ALLOWED_ADDRESSES holds the release's Service URL plus mutate.allowedAddresses", async () => {
  const own = `https://piggy-piggy-webhooks.${NS}.svc.cluster.local`;
  const plain = envOf(await renderChart()).PIGGY_ALLOWED_ADDRESSES;
  assert.equal(plain, own);
  assert.deepEqual(parseAllowedAddresses(plain ?? ""), [own]);
  const extra = envOf(
    await renderChart({
      values: { mutate: { allowedAddresses: ["https://piggy.other.example:8443", own] } },
    }),
  ).PIGGY_ALLOWED_ADDRESSES;
  assert.equal(extra, `${own},https://piggy.other.example:8443`);
  const refused = await helmTemplate({
    values: { mutate: { allowedAddresses: ["http://piggy.other.example"] } },
  });
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /allowedAddresses/);
});

test("aws.roleArn becomes the IRSA annotation of the ServiceAccount", async () => {
  const sa = findObject(
    await renderChart({
      values: {
        aws: { roleArn: "arn:aws:iam::123456789012:role/piggy" },
        serviceAccount: { annotations: { "example.com/team": "platform" } },
      },
    }),
    "ServiceAccount",
  );
  assert.deepEqual(dig(sa, "metadata", "annotations"), {
    "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/piggy",
    "example.com/team": "platform",
  });
});

test("rbac.psp.enabled adds a policy-group use rule only where PodSecurityPolicy exists", async () => {
  const rules = (objects: K8sObject[]) =>
    findObject(objects, "ClusterRole").rules as { apiGroups: string[]; verbs: string[] }[];
  assert.equal(
    rules(await renderChart({ values: { rbac: { psp: { enabled: true } } } })).length,
    2,
  );
  const old = rules(
    await renderChart({
      values: { rbac: { psp: { enabled: true } } },
      kubeVersion: "1.24.0",
      apiVersions: ["policy/v1beta1/PodSecurityPolicy"],
    }),
  );
  assert.deepEqual(old[2], {
    apiGroups: ["policy"],
    resources: ["podsecuritypolicies"],
    verbs: ["use"],
  });
});

test("the Ingress is rendered as Go Piggy's, and NOTES warn that it exposes /secret", async () => {
  const values = {
    ingress: { enabled: true, className: "nginx", host: "piggy.example.com", pathType: "Prefix" },
  };
  const ingress = findObject(await renderChart({ values }), "Ingress");
  assert.equal(dig(ingress, "spec", "ingressClassName"), "nginx");
  assert.equal(dig(ingress, "spec", "rules", 0, "host"), "piggy.example.com");
  assert.equal(
    dig(ingress, "spec", "rules", 0, "http", "paths", 0, "backend", "service", "name"),
    "piggy-piggy-webhooks",
  );
  assert.match(
    await renderNotes({ values }),
    /WARNING: ingress.enabled exposes \/secret and \/mutate/,
  );
});

test("topologySpreadConstraints and affinity from values are used as given", async () => {
  const constraint = {
    maxSkew: 2,
    topologyKey: "kubernetes.io/hostname",
    whenUnsatisfiable: "DoNotSchedule",
    labelSelector: { matchLabels: { app: "x" } },
  };
  const affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: "k", operator: "Exists" }] }],
      },
    },
  };
  const pod = dig(
    findObject(
      await renderChart({ values: { topologySpreadConstraints: [constraint], affinity } }),
      "Deployment",
    ),
    "spec",
    "template",
    "spec",
  );
  assert.deepEqual(dig(pod, "topologySpreadConstraints"), [constraint]);
  assert.deepEqual(dig(pod, "affinity"), affinity);
});

// Go Piggy 0.7.5 values files

test("Go Piggy defaults render unchanged, with the fixed behaviours", async () => {
  const objects = await renderChart({ valuesFiles: [fixture("defaults")] });
  assert.equal(dig(findObject(objects, "Deployment"), "spec", "replicas"), 1);
  const hook = webhook(objects);
  assert.equal(hook.timeoutSeconds, 5); // Go's `false`: our default, not the API's 10 s
  assert.equal(hook.failurePolicy, "Fail");
  assert.equal((hook.matchConditions as { name: string }[])[0]?.name, "include-piggy-pods");
  assert.equal(findObject(objects, "Secret", TLS_SECRET).type, "kubernetes.io/tls");
  assert.equal(envOf(objects).PIGGY_ENV_IMAGE, "ghcr.io/kongz/piggy-env:0.7.5");
  const pod = dig(findObject(objects, "Deployment"), "spec", "template", "spec");
  assert.equal(dig(pod, "securityContext", "runAsUser"), 10001);
  assert.equal(
    dig(
      pod,
      "affinity",
      "podAntiAffinity",
      "preferredDuringSchedulingIgnoredDuringExecution",
      0,
      "weight",
    ),
    100,
  );
});

test("NOTES warn when a Go values file still points at Go Piggy's images", async () => {
  const notes = await renderNotes({ valuesFiles: [fixture("defaults")] });
  assert.match(notes, /WARNING: image.repository or mutate.image.repository points at Go Piggy's/);
  assert.match(notes, /WARNING: replicaCount is 1 with failurePolicy Fail/);
});

test("a Go Piggy production values file renders with its settings", async () => {
  const objects = await renderChart({ valuesFiles: [fixture("eks-production")] });
  const env = envOf(objects);
  assert.equal(env.AWS_REGION, "ap-southeast-1");
  assert.equal(env.PIGGY_ENFORCE_SERVICE_ACCOUNT, "true");
  assert.equal(env.PIGGY_NUMBER_OF_RETRY, "3");
  assert.equal(env.PIGGY_IGNORE_NO_ENV, "false");
  assert.equal(env.DEBUG, "true");
  assert.equal(
    dig(
      findObject(objects, "ServiceAccount", "piggy"),
      "metadata",
      "annotations",
      "eks.amazonaws.com/role-arn",
    ),
    "arn:aws:iam::123456789012:role/piggy-webhooks",
  );
  const hook = webhook(objects);
  assert.equal(hook.timeoutSeconds, 10);
  assert.equal(hook.failurePolicy, "Ignore");
  assert.equal(hook.name, `piggy.${NS}.svc`);
  assert.deepEqual(excluded(objects), [NS, "kube-system", "monitoring", "istio-system"]);
  assert.equal(dig(findObject(objects, "Deployment", "piggy"), "spec", "replicas"), 3);
  assert.match(
    await renderNotes({ valuesFiles: [fixture("eks-production")] }),
    /env.PIGGY_DELAY_SECOND is read by nothing/,
  );
});

test("Go Piggy's documented cert-manager switch renders the cert-manager objects", async () => {
  const objects = await renderChart({ valuesFiles: [fixture("cert-manager")] });
  assert.equal(objects.filter((o) => o.kind === "Issuer").length, 2);
  assert.equal(objects.filter((o) => o.kind === "Certificate").length, 2);
  const serving = findObject(objects, "Certificate", "piggy-piggy-webhooks-webhook-tls");
  assert.equal(dig(serving, "spec", "duration"), `${90 * 24}h`);
  assert.deepEqual(dig(serving, "spec", "privateKey"), { algorithm: "RSA", size: 2048 });
});

test("a Go Piggy values file with every optional part renders", async () => {
  const objects = await renderChart({ valuesFiles: [fixture("exposed")] });
  for (const kind of ["Ingress", "HorizontalPodAutoscaler"]) findObject(objects, kind);
  const hook = webhook(objects);
  assert.deepEqual(hook.objectSelector, { matchLabels: { "piggysec.com/inject": "true" } });
  assert.equal(hook.matchConditions, undefined);
  const pod = dig(findObject(objects, "Deployment"), "spec", "template", "spec");
  assert.deepEqual(
    (dig(pod, "volumes") as { name: string }[]).map((v) => v.name),
    ["certs", "seal", "tmp", "extra-ca"],
  );
  assert.match(
    await renderNotes({ valuesFiles: [fixture("exposed")] }),
    /rbac.psp.enabled is ignored/,
  );
});

test("NOTES state who can read what and the legacy cutoff, and warn about the policy any", async () => {
  const notes = await renderNotes();
  assert.match(notes, /Secret access policy "namespace"/);
  assert.match(notes, /Whoever can create pods in a namespace reads that namespace's secrets/);
  assert.match(notes, /not\s+kubectl exec, kubectl debug or ephemeral containers/);
  assert.match(
    notes,
    /audience "piggysec\.com" only to: https:\/\/piggy-piggy-webhooks\.piggy-system\.svc\.cluster\.local\n/,
  );
  assert.match(notes, /pods without a seal created before \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
  assert.doesNotMatch(notes, /WARNING/);

  assert.match(notes, /secrets named "<namespace>\/\.\.\." \(SSM "\/<namespace>\/\.\.\."\)/);
  const prefixed = await renderNotes({
    values: { env: { PIGGY_DEFAULT_SECRET_NAME_PREFIX: "k8s/" } },
  });
  assert.match(
    prefixed,
    /secrets named "k8s\/<namespace>\/\.\.\." \(SSM "\/k8s\/<namespace>\/\.\.\."\)/,
  );

  const any = await renderNotes({ values: { env: { PIGGY_SECRET_ACCESS_POLICY: "any" } } });
  assert.match(any, /Secret access policy "any"/);
  assert.match(any, /WARNING: env\.PIGGY_SECRET_ACCESS_POLICY is "any"/);

  const strict = await renderNotes({
    values: {
      env: { PIGGY_ENFORCE_SERVICE_ACCOUNT: true, PIGGY_TOKEN_AUDIENCES: "piggy.prod,other" },
      mutate: { allowedAddresses: ["https://piggy.example.com"] },
      legacyPods: { enabled: false },
    },
  });
  assert.match(strict, /Secret access policy "allowed-sa"/);
  assert.match(
    strict,
    /audience "piggy\.prod" only to: https:\/\/\S+,https:\/\/piggy\.example\.com\n/,
  );
  assert.doesNotMatch(strict, /legacyPods\.enabled|WARNING/);
});
