import { test } from "node:test";
import assert from "node:assert/strict";
import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import { storedSecret } from "./demo_data.ts";
import { kubeletArgv, kubeletEnv, kubeletExpand, objectKey, type Objects } from "./kubelet_env.ts";

const POD: Pod = {
  metadata: { name: "web", namespace: "team", uid: "u-1" },
  spec: { serviceAccountName: "runner", containers: [] },
};

function objects(): Objects {
  const secret = storedSecret({
    kind: "Secret",
    metadata: { name: "creds", namespace: "team" },
    stringData: { TOKEN: "piggy:token", SHARED: "from-secret" },
  });
  const config = {
    kind: "ConfigMap",
    metadata: { name: "settings", namespace: "team" },
    data: { MODE: "fast" },
  };
  return new Map([
    [objectKey("Secret", "team", "creds"), secret],
    [objectKey("ConfigMap", "team", "settings"), config],
  ]);
}

test("kubeletEnv() applies envFrom, then env: literals, downward API and key references", () => {
  const container: Container = {
    name: "app",
    envFrom: [{ secretRef: { name: "creds" }, prefix: "S_" }, {
      configMapRef: { name: "settings" },
    }],
    env: [
      { name: "S_SHARED", value: "literal wins" },
      { name: "POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      { name: "SA", valueFrom: { fieldRef: { fieldPath: "spec.serviceAccountName" } } },
      { name: "KEY", valueFrom: { secretKeyRef: { name: "creds", key: "TOKEN" } } },
      { name: "CM", valueFrom: { configMapKeyRef: { name: "settings", key: "MODE" } } },
      { name: "GONE", valueFrom: { secretKeyRef: { name: "creds", key: "NO", optional: true } } },
    ],
  };
  assert.deepEqual(
    Object.fromEntries(kubeletEnv(container, POD, objects())),
    {
      S_TOKEN: "piggy:token",
      S_SHARED: "literal wins",
      MODE: "fast",
      POD: "web",
      SA: "runner",
      KEY: "piggy:token",
      CM: "fast",
    },
  );
});

test("kubeletEnv() refuses a missing non-optional Secret or key, like the kubelet", () => {
  const missingSecret: Container = { name: "a", envFrom: [{ secretRef: { name: "nope" } }] };
  assert.throws(() => kubeletEnv(missingSecret, POD, objects()), /Secret "nope" not found/);
  const missingKey: Container = {
    name: "b",
    env: [{ name: "X", valueFrom: { secretKeyRef: { name: "creds", key: "NO" } } }],
  };
  assert.throws(() => kubeletEnv(missingKey, POD, objects()), /key "NO" of Secret "creds"/);
  const optional: Container = {
    name: "c",
    envFrom: [{ secretRef: { name: "nope", optional: true } }],
  };
  assert.deepEqual(kubeletEnv(optional, POD, objects()).size, 0);
});

test("kubeletExpand() and kubeletArgv() follow the kubelet's $(VAR) rules", () => {
  const env = new Map([["PORT", "8080"], ["EMPTY", ""]]);
  assert.equal(kubeletExpand("--port=$(PORT)$(EMPTY)", env), "--port=8080");
  assert.equal(kubeletExpand("$$(PORT) $$ $x $( $(UNSET) $", env), "$(PORT) $ $x $( $(UNSET) $");
  assert.deepEqual(kubeletArgv({ name: "c", command: ["/app"], args: ["$(PORT)"] }, env), [
    "/app",
    "8080",
  ]);
  const pod = { metadata: { name: "p", namespace: "ns" } };
  const container = {
    name: "c",
    env: [{ name: "A", value: "x" }, { name: "B", value: "$(A)-$(C)" }, { name: "C", value: "z" }],
  };
  // A literal value sees only the variables before it.
  assert.equal(kubeletEnv(container, pod, new Map()).get("B"), "x-$(C)");
});
