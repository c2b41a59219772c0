/**
 * Tests of the validation the chart tests rely on (tests/_chart.ts): it must catch schema errors,
 * typos the Kubernetes schemas let through, and broken cert-manager objects.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { helmPath, type K8sObject, parseManifests, validateObject } from "./_chart.ts";

function deployment(container: Record<string, unknown>): K8sObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "ns", labels: { app: "web" } },
    spec: {
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" }, annotations: { "any/key": "v" } },
        spec: { containers: [{ name: "web", image: "web:1", ...container }] },
      },
    },
  };
}

test("validateObject() accepts a valid object with free-form maps", () => {
  assert.deepEqual(
    validateObject(
      deployment({ resources: { limits: { cpu: "1", "example.com/gpu": "1" } } }),
      "ns",
    ),
    [],
  );
});

test("validateObject() reports a typo in a nested field", () => {
  assert.deepEqual(
    validateObject(deployment({ securityContext: { readOnlyRootFileSystem: true } }), "ns"),
    ["unknown field .spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem"],
  );
});

test("validateObject() reports a wrong type", () => {
  const problems = validateObject(deployment({ ports: [{ containerPort: "8443" }] }), "ns");
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? "", /^schema: .*containerPort must be integer/);
});

test("validateObject() reports a namespace other than the release's, and one on cluster objects", () => {
  assert.deepEqual(validateObject(deployment({}), "other"), [
    'metadata.namespace is "ns", not "other"',
  ]);
  const role: K8sObject = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: "r", namespace: "ns" },
    rules: [],
  };
  assert.deepEqual(validateObject(role, "ns"), ["cluster-scoped object has a namespace"]);
});

test("validateObject() reports a kind it has no schema for", () => {
  const object: K8sObject = {
    apiVersion: "v1",
    kind: "Widget",
    metadata: { name: "w", namespace: "ns" },
  };
  assert.deepEqual(validateObject(object, "ns"), ["no schema for v1 Widget"]);
});

test("validateObject() checks cert-manager Certificates by hand", () => {
  const certificate: K8sObject = {
    apiVersion: "cert-manager.io/v1",
    kind: "Certificate",
    metadata: { name: "c", namespace: "ns" },
    spec: {
      secretName: "s",
      duration: "10d",
      dnsName: ["a"],
      issuerRef: { name: "i", kind: "Issuers" },
      usages: ["server auth", "serverAuth"],
    },
  };
  assert.deepEqual(validateObject(certificate, "ns"), [
    "unknown field .spec.dnsName",
    '.spec.issuerRef.kind "Issuers" is not Issuer or ClusterIssuer',
    '.spec.duration "10d" is not a Go duration',
    '.spec.usages has unknown "serverAuth"',
  ]);
});

test("validateObject() requires exactly one issuer type on a cert-manager Issuer", () => {
  const issuer: K8sObject = {
    apiVersion: "cert-manager.io/v1",
    kind: "Issuer",
    metadata: { name: "i", namespace: "ns" },
    spec: { selfSigned: {}, ca: { secretName: "s" } },
  };
  assert.deepEqual(validateObject(issuer, "ns"), [
    ".spec needs exactly one issuer type, got selfSigned,ca",
  ]);
});

test("parseManifests() reads octal modes as Kubernetes does and skips empty documents", () => {
  const objects = parseManifests("---\n# only a comment\n---\nkind: X\nmode: 0644\n");
  assert.deepEqual(objects, [{ kind: "X", mode: 0o644 }]);
});

test("helmPath() fails with the fix when helm is missing", () => {
  const saved = process.env.HELM_BIN;
  process.env.HELM_BIN = "/nonexistent/helm";
  try {
    assert.throws(
      () => helmPath(),
      /Cannot find helm at "\/nonexistent\/helm": run "bash scripts\/fetch_helm.sh" first/,
    );
  } finally {
    if (saved === undefined) delete process.env.HELM_BIN;
    else process.env.HELM_BIN = saved;
  }
});
