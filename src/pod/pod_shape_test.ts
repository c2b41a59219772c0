import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidObjectError, toStatus } from "../errors.ts";
import { checkPodShape } from "./pod_shape.ts";

function app(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: "app", image: "app:1", command: ["/app"], ...fields };
}

const MALFORMED: [string, Record<string, unknown>][] = [
  ["spec is an array, expecting an object", { spec: [] }],
  ["spec.containers is a string, expecting an array", { spec: { containers: "app" } }],
  ["spec.initContainers is an object, expecting an array", { spec: { initContainers: {} } }],
  ["spec.containers[1] is a number, expecting an object", { spec: { containers: [app(), 7] } }],
  [
    "spec.containers[0].command is a string, expecting an array",
    { spec: { containers: [app({ command: "/app --x" })] } },
  ],
  [
    "spec.containers[0].args[1] is a number, expecting a string",
    { spec: { containers: [app({ args: ["--port", 8080] })] } },
  ],
  [
    "spec.containers[0].env is a string, expecting an array",
    { spec: { containers: [app({ env: "A=1" })] } },
  ],
  [
    "spec.containers[0].env[0].value is a boolean, expecting a string",
    { spec: { containers: [app({ env: [{ name: "A", value: true }] })] } },
  ],
  [
    "spec.containers[0].env[0].valueFrom.configMapKeyRef.name is a number, expecting a string",
    {
      spec: {
        containers: [app({ env: [{ name: "A", valueFrom: { configMapKeyRef: { name: 5 } } }] })],
      },
    },
  ],
  [
    "spec.containers[0].envFrom[0].secretRef is a string, expecting an object",
    { spec: { containers: [app({ envFrom: [{ secretRef: "s" }] })] } },
  ],
  [
    "spec.containers[0].resources.limits.memory is an object, expecting a quantity (string or number)",
    { spec: { containers: [app({ resources: { limits: { memory: {} } } })] } },
  ],
  [
    'metadata.annotations["piggysec.com/aws-secret-name"] is a number, expecting a string',
    { metadata: { annotations: { "piggysec.com/aws-secret-name": 5 } } },
  ],
  ["metadata.name is an array, expecting a string", { metadata: { name: ["a"] } }],
  [
    "spec.securityContext.runAsUser is a string, expecting a number",
    { spec: { securityContext: { runAsUser: "0" } } },
  ],
];

for (const [message, pod] of MALFORMED) {
  test(`checkPodShape() refuses a pod whose ${message.split(" is ")[0]} has the wrong type`, () => {
    assert.throws(() => checkPodShape(pod), (error: unknown) => {
      assert.ok(error instanceof InvalidObjectError);
      assert.equal(toStatus(error), 422);
      assert.equal(error.message, `Cannot admit the pod: ${message}`);
      return true;
    });
  });
}

test("checkPodShape() accepts a real pod, nulls and fields it does not read", () => {
  checkPodShape({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", annotations: { a: "b" }, labels: null, ownerReferences: null },
    spec: {
      containers: [app({
        env: [
          { name: "A", value: "x" },
          { name: "B", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
          { name: "C", valueFrom: { configMapKeyRef: { name: "cm", key: "k", optional: true } } },
        ],
        envFrom: [{ prefix: "P_", configMapRef: { name: "cm" } }, { secretRef: null }],
        resources: { limits: { memory: "128Mi", cpu: 1 }, requests: null },
        ports: [{ containerPort: 80 }],
      })],
      initContainers: null,
      volumes: [{ name: "v", emptyDir: {} }],
      securityContext: { runAsUser: 1000 },
      nodeSelector: { "kubernetes.io/os": "linux" },
    },
  });
  checkPodShape({});
});

test("checkPodShape() cuts a long annotation key in its message", () => {
  const key = `piggysec.com/${"x".repeat(300)}`;
  assert.throws(() => checkPodShape({ metadata: { annotations: { [key]: 1 } } }), {
    message: `Cannot admit the pod: metadata.annotations["${key.slice(0, 64)}…"] is a number, ` +
      "expecting a string",
  });
});
