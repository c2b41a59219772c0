/**
 * The chart's ValidatingAdmissionPolicy that refuses pod updates touching `piggysec.com/`
 * annotations: rendered by the real helm and schema-validated (renderChart), and its CEL, exactly
 * as rendered, evaluated by a CEL implementation (@marcbachmann/cel-js) the way the API server
 * runs a policy: every match condition true, then the variables, then each validation.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { Environment } from "@marcbachmann/cel-js";
import {
  dig,
  findObject,
  helmTemplate,
  type K8sObject,
  renderChart,
  startFakeCluster,
} from "./_chart.ts";

const NAME = "piggy-piggy-webhooks-annotations-piggy-system";

type Annotations = Record<string, string> | undefined;

interface Named {
  name: string;
  expression: string;
}

/** The policy's expressions, as rendered. */
interface Policy {
  matchConditions: Named[];
  variables: Named[];
  validations: { expression: string; message: string }[];
}

function policyOf(objects: K8sObject[]): Policy {
  const spec = dig(findObject(objects, "ValidatingAdmissionPolicy", NAME), "spec") as Policy;
  return spec;
}

/** The part of a Pod the expressions may read, typed as the API server's schema types it. */
const POD_SCHEMA = {
  metadata: {
    name: "string",
    namespace: "string",
    annotations: "map<string, string>",
    labels: "map<string, string>",
  },
};

function celEnvironment(): Environment {
  return new Environment()
    .registerVariable({ name: "object", schema: POD_SCHEMA })
    .registerVariable({ name: "oldObject", schema: POD_SCHEMA })
    .registerVariable("variables", "map<string, list<string>>");
}

function pod(annotations: Annotations, labels?: Record<string, string>): unknown {
  const metadata: Record<string, unknown> = { name: "app", namespace: "team-a" };
  if (annotations !== undefined) metadata.annotations = annotations;
  if (labels !== undefined) metadata.labels = labels;
  return { metadata };
}

/** Decides an UPDATE from `before` to `after` as the API server would: true = admitted. */
function admits(policy: Policy, before: Annotations, after: Annotations): boolean {
  const env = celEnvironment();
  const context: Record<string, unknown> = { object: pod(after), oldObject: pod(before) };
  for (const condition of policy.matchConditions) {
    if (env.evaluate(condition.expression, context) !== true) return true;
  }
  const variables: Record<string, unknown> = {};
  context.variables = variables;
  for (const variable of policy.variables) {
    variables[variable.name] = env.evaluate(variable.expression, context);
  }
  return policy.validations.every((v) => env.evaluate(v.expression, context) === true);
}

/** What the policy must decide: the piggysec.com/ annotations are equal as maps. */
function sameGuarded(before: Annotations, after: Annotations): boolean {
  const guarded = (a: Annotations) =>
    Object.entries(a ?? {}).filter(([k]) => k.startsWith("piggysec.com/")).sort(([x], [y]) =>
      x < y ? -1 : x > y ? 1 : 0
    );
  return JSON.stringify(guarded(before)) === JSON.stringify(guarded(after));
}

test("the policy and its binding render on Kubernetes 1.30 and validate against the schema", async () => {
  const objects = await renderChart({ kubeVersion: "1.30.0" });
  const policy = findObject(objects, "ValidatingAdmissionPolicy", NAME);
  assert.equal(dig(policy, "spec", "failurePolicy"), "Fail");
  assert.deepEqual(dig(policy, "spec", "matchConstraints", "resourceRules"), [{
    apiGroups: [""],
    apiVersions: ["v1"],
    operations: ["UPDATE"],
    resources: ["pods", "pods/*"],
    scope: "Namespaced",
  }]);
  const binding = findObject(objects, "ValidatingAdmissionPolicyBinding", NAME);
  assert.equal(dig(binding, "spec", "policyName"), NAME);
  assert.deepEqual(dig(binding, "spec", "validationActions"), ["Deny"]);
  // No namespace selector: the policy covers every pod, also those the webhook never sees.
  assert.equal(dig(binding, "spec", "matchResources"), undefined);
});

test("the policy is not rendered before Kubernetes 1.30 or when disabled", async () => {
  const kinds = (objects: K8sObject[]) =>
    objects.filter((o) => o.kind.startsWith("ValidatingAdmissionPolicy")).length;
  assert.equal(kinds(await renderChart({ kubeVersion: "1.29.9" })), 0);
  assert.equal(kinds(await renderChart({ values: { annotationPolicy: { enabled: false } } })), 0);
  const warnOnly = await renderChart({
    values: { annotationPolicy: { validationActions: ["Warn", "Audit"] } },
  });
  assert.deepEqual(
    dig(findObject(warnOnly, "ValidatingAdmissionPolicyBinding"), "spec", "validationActions"),
    ["Warn", "Audit"],
  );
});

test("against an API server, the policy follows the server's version (1.29: none, 1.30: both)", async () => {
  for (const [minor, expected] of [[29, 0], [30, 2]] as const) {
    const cluster = await startFakeCluster({ minor });
    try {
      const objects = await renderChart({
        env: { KUBECONFIG: cluster.kubeconfig },
        args: ["--dry-run=server", "--disable-openapi-validation"],
      });
      const found = objects.filter((o) => o.kind.startsWith("ValidatingAdmissionPolicy"));
      assert.equal(found.length, expected, `1.${minor}`);
    } finally {
      await cluster.close();
    }
  }
});

for (
  const [what, actions] of [
    ["Deny with Warn", ["Deny", "Warn"]],
    ["an unknown action", ["Block"]],
    ["no action", []],
  ] as const
) {
  test(`values.schema.json rejects annotationPolicy.validationActions with ${what}`, async () => {
    const result = await helmTemplate({
      values: { annotationPolicy: { validationActions: actions } },
    });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /validationActions/);
  });
}

test("every rendered CEL expression type-checks against the Pod's metadata types", async () => {
  const policy = policyOf(await renderChart());
  const env = celEnvironment();
  const expressions = [
    ...policy.matchConditions.map((c) => c.expression),
    ...policy.variables.map((v) => v.expression),
    ...policy.validations.map((v) => v.expression),
  ];
  assert.equal(expressions.length, 4);
  for (const expression of expressions) {
    const checked = env.check(expression);
    assert.equal(checked.valid, true, `${expression}: ${checked.error}`);
  }
  assert.equal(env.check("object.metadata.annotationz").valid, false);
  assert.deepEqual(policy.variables.map((v) => env.check(v.expression).type), [
    "list<string>",
    "list<string>",
  ]);
});

const SEAL = "piggysec.com/piggy-seal";
const BASE = {
  "piggysec.com/aws-secret-name": "team-a/app",
  "piggysec.com/piggy-uid": '{"app":"abc"}',
  [SEAL]: "v1.k1.Zm9v",
  "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z",
};

const CASES: [string, Annotations, Annotations, boolean][] = [
  ["nothing changed", BASE, { ...BASE }, true],
  ["another annotation changed", BASE, { ...BASE, "kubectl.kubernetes.io/restartedAt": "x" }, true],
  ["another annotation added", BASE, { ...BASE, "example.com/owner": "team-a" }, true],
  [
    "same annotations in another order",
    BASE,
    Object.fromEntries(Object.entries(BASE).reverse()),
    true,
  ],
  ["a pod without annotations gains a foreign one", undefined, { "example.com/a": "b" }, true],
  ["a look-alike prefix is added", BASE, { ...BASE, "piggysec.company/x": "y" }, true],
  ["a piggysec.com/ annotation added", BASE, {
    ...BASE,
    "piggysec.com/piggy-enforce-integrity": "false",
  }, false],
  [
    "the secret name changed",
    BASE,
    { ...BASE, "piggysec.com/aws-secret-name": "team-b/app" },
    false,
  ],
  ["the uid map changed", BASE, { ...BASE, "piggysec.com/piggy-uid": '{"app":"evil"}' }, false],
  ["the seal changed", BASE, { ...BASE, [SEAL]: "v1.k1.YmFy" }, false],
  [
    "the seal removed",
    BASE,
    Object.fromEntries(Object.entries(BASE).filter(([k]) => k !== SEAL)),
    false,
  ],
  ["every annotation removed", BASE, undefined, false],
  ["an empty annotations map", BASE, {}, false],
  ["a pod Piggy never saw gains one", { "example.com/a": "b" }, {
    "example.com/a": "b",
    "piggysec.com/aws-secret-name": "team-b/app",
  }, false],
  ["a pod without annotations gains one", undefined, { "piggysec.com/piggy-address": "x" }, false],
  ["two values swapped", { "piggysec.com/a": "1", "piggysec.com/b": "2" }, {
    "piggysec.com/a": "2",
    "piggysec.com/b": "1",
  }, false],
  ["a value moved across the '=' joint", { "piggysec.com/a": "b=c" }, {
    "piggysec.com/a=b": "c",
  }, false],
  ["a value emptied", { "piggysec.com/a": "x" }, { "piggysec.com/a": "" }, false],
];

for (const [what, before, after, expected] of CASES) {
  test(`the policy's CEL ${expected ? "admits" : "refuses"} an update: ${what}`, async () => {
    const policy = await renderedPolicy();
    assert.equal(admits(policy, before, after), expected);
    assert.equal(sameGuarded(before, after), expected, "the case itself is wrong");
  });
}

test("the policy's CEL agrees with a plain comparison on 2000 random before/after pairs", async () => {
  const policy = await renderedPolicy();
  let seed = 0x5eed;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const keys = [
    "piggysec.com/aws-secret-name",
    "piggysec.com/aws-region",
    "piggysec.com/piggy-seal",
    "piggysec.com/a",
    "piggysec.company/a",
    "example.com/piggysec.com",
    "app",
  ];
  const values = ["", "1", "2", "a=b", "team-b/app"];
  const randomMap = (): Annotations => {
    if (random(6) === 0) return undefined;
    const map: Record<string, string> = {};
    for (const key of keys) if (random(2) === 0) map[key] = values[random(values.length)] ?? "";
    return map;
  };
  let refused = 0;
  for (let i = 0; i < 2000; i++) {
    const before = randomMap();
    // Half the time, edit `before` a little instead of drawing a new map.
    let after = randomMap();
    if (random(2) === 0) {
      const copy: Record<string, string> = { ...(before ?? {}) };
      const key = keys[random(keys.length)] ?? "app";
      if (random(2) === 0) delete copy[key];
      else copy[key] = values[random(values.length)] ?? "";
      after = copy;
    }
    const expected = sameGuarded(before, after);
    if (!expected) refused++;
    assert.equal(
      admits(policy, before, after),
      expected,
      `${JSON.stringify(before)} -> ${JSON.stringify(after)}`,
    );
  }
  // Both outcomes were exercised.
  assert.ok(refused > 200 && refused < 1800, `refused ${refused}`);
});

let cached: Policy | undefined;
async function renderedPolicy(): Promise<Policy> {
  cached ??= policyOf(await renderChart());
  return cached;
}
