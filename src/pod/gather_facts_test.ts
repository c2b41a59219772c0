import { test } from "node:test";
import assert from "node:assert/strict";
import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import { KubeApiError, KubeUnavailableError, LimitExceededError, toStatus } from "../errors.ts";
import { FakeKubeClient } from "../k8s/fake.ts";
import { qualifies } from "./container_refs.ts";
import { factsWithoutReads, gatherFacts, GatherFactsError } from "./gather_facts.ts";

function b64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

function kube(): FakeKubeClient {
  return new FakeKubeClient()
    .put("configmaps", {
      metadata: { name: "test-cm", namespace: "default" },
      data: { key1: "piggy:secret1", key2: "normal-value" },
    })
    .put("secrets", {
      metadata: { name: "test-secret", namespace: "default" },
      data: { skey1: b64("piggy:secret2"), skey2: b64("plain"), bad: "%%%" },
    });
}

function podOf(container: Partial<Container>, init: Partial<Container>[] = []): Pod {
  return {
    metadata: { name: "test-pod" },
    spec: {
      initContainers: init.map((c, i) => ({ name: `init-${i}`, ...c })),
      containers: [{ name: "app", command: ["/app"], ...container }],
    },
  };
}

async function decide(container: Partial<Container>, client = kube()): Promise<boolean> {
  const pod = podOf(container);
  const facts = await gatherFacts(pod, "default", client);
  return qualifies(pod.spec!.containers[0]!, facts);
}

test("gatherFacts() finds a piggy: value behind a ConfigMap valueFrom", async () => {
  assert.equal(
    await decide({
      env: [{ name: "VAR1", valueFrom: { configMapKeyRef: { name: "test-cm", key: "key1" } } }],
    }),
    true,
  );
});

test("gatherFacts() ignores a plain ConfigMap value", async () => {
  assert.equal(
    await decide({
      env: [{ name: "VAR2", valueFrom: { configMapKeyRef: { name: "test-cm", key: "key2" } } }],
    }),
    false,
  );
});

test("gatherFacts() decodes Secret data to find piggy: values", async () => {
  assert.equal(
    await decide({
      env: [{ name: "VAR3", valueFrom: { secretKeyRef: { name: "test-secret", key: "skey1" } } }],
    }),
    true,
  );
  assert.equal(
    await decide({
      env: [{ name: "VAR4", valueFrom: { secretKeyRef: { name: "test-secret", key: "skey2" } } }],
    }),
    false,
  );
});

test("gatherFacts() keeps only the keys holding references and the secret keys they name", async () => {
  const facts = await gatherFacts(
    podOf({
      envFrom: [{ configMapRef: { name: "test-cm" } }, { secretRef: { name: "test-secret" } }],
    }),
    "default",
    kube(),
  );
  assert.deepEqual([...(facts.configMaps.get("test-cm") ?? [])], [["key1", "secret1"]]);
  assert.deepEqual([...(facts.secrets.get("test-secret") ?? [])], [["skey1", "secret2"]]);
  // Values that are not references (key2: "normal-value") are never kept.
  assert.ok(!JSON.stringify([...facts.configMaps]).includes("normal-value"));
});

test("gatherFacts() qualifies envFrom ConfigMap and Secret sources", async () => {
  assert.equal(await decide({ envFrom: [{ configMapRef: { name: "test-cm" } }] }), true);
  assert.equal(await decide({ envFrom: [{ secretRef: { name: "test-secret" } }] }), true);
});

test("gatherFacts() skips missing ConfigMaps and Secrets, optional or not", async () => {
  const pod = podOf({
    env: [
      { name: "A", valueFrom: { configMapKeyRef: { name: "missing-cm", key: "k" } } },
      { name: "B", valueFrom: { secretKeyRef: { name: "missing-secret", key: "k" } } },
    ],
    envFrom: [
      { configMapRef: { name: "missing-optional", optional: true } },
      { configMapRef: { name: "missing-required" } },
    ],
  });
  const facts = await gatherFacts(pod, "default", kube());
  assert.equal(facts.configMaps.get("missing-cm"), null);
  assert.equal(facts.configMaps.get("missing-required"), null);
  assert.equal(facts.secrets.get("missing-secret"), null);
  assert.equal(qualifies(pod.spec!.containers[0]!, facts), false);
});

test("gatherFacts() turns a ConfigMap API error into a GatherFactsError naming it", async () => {
  const client = kube().fail("configmaps", new KubeApiError("k8s error", 403));
  const pod = podOf({ envFrom: [{ configMapRef: { name: "test-cm" } }] });
  await assert.rejects(gatherFacts(pod, "default", client), (error: unknown) => {
    assert.ok(error instanceof GatherFactsError);
    assert.match(
      error.message,
      /Cannot read ConfigMap "test-cm" in namespace "default": k8s error/,
    );
    assert.equal(toStatus(error.cause), 502);
    return true;
  });
});

test("gatherFacts() turns an unreachable API into a GatherFactsError for a Secret", async () => {
  const client = kube().fail("secrets", new KubeUnavailableError("connection refused"));
  const pod = podOf({
    env: [{ name: "X", valueFrom: { secretKeyRef: { name: "test-secret", key: "skey1" } } }],
  });
  await assert.rejects(gatherFacts(pod, "default", client), (error: unknown) => {
    assert.ok(error instanceof GatherFactsError);
    assert.equal(error.kind, "Secret");
    assert.equal(toStatus(error.cause), 503);
    return true;
  });
});

test("gatherFacts() reads each object once, in the given namespace, for init and app containers", async () => {
  const client = kube();
  const ref = { name: "V", valueFrom: { configMapKeyRef: { name: "test-cm", key: "key1" } } };
  const pod = podOf({ env: [ref], envFrom: [{ configMapRef: { name: "test-cm" } }] }, [
    { command: ["/init"], env: [ref] },
    { command: ["/sidecar"], restartPolicy: "Always", envFrom: [{ secretRef: { name: "s2" } }] },
  ]);
  await gatherFacts(pod, "team-a", client);
  assert.deepEqual(client.calls.sort(), ["configmaps team-a/test-cm", "secrets team-a/s2"]);
});

test("gatherFacts() skips lookups for wrapped containers and literal piggy: values", async () => {
  const client = kube().fail("configmaps", new KubeApiError("must not be called", 500));
  const pod = podOf(
    { env: [{ name: "L", value: "piggy:x" }], envFrom: [{ configMapRef: { name: "test-cm" } }] },
    [{
      command: ["/piggy/piggy-env"],
      args: ["--", "/x"],
      envFrom: [{ configMapRef: { name: "a" } }],
    }],
  );
  await gatherFacts(pod, "default", client);
  assert.deepEqual(client.calls, []);
});

test("gatherFacts() ignores ephemeral containers", async () => {
  const client = kube();
  const pod = podOf({});
  pod.spec!.ephemeralContainers = [{
    name: "debug",
    envFrom: [{ configMapRef: { name: "test-cm" } }],
  }];
  await gatherFacts(pod, "default", client);
  assert.deepEqual(client.calls, []);
});

/** ConfigMap references `name(0)`, …, `name(count - 1)` from one container. */
function podReferring(count: number, name: (i: number) => string): Pod {
  return podOf({
    env: Array.from({ length: count }, (_, i) => ({
      name: `V${i}`,
      valueFrom: { configMapKeyRef: { name: name(i), key: "k" } },
    })),
  });
}

/** A fake whose ConfigMap reads take `ms`, recording the most in flight at once. */
function slowKube(ms: number): { client: FakeKubeClient; peak: () => number } {
  const client = kube();
  let inFlight = 0;
  let peak = 0;
  const read = client.getConfigMap.bind(client);
  client.getConfigMap = async (namespace, name, options) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return await read(namespace, name, options);
    } finally {
      inFlight--;
    }
  };
  return { client, peak: () => peak };
}

test("gatherFacts() reads each (kind, name) once", async () => {
  const client = kube();
  const pod = podReferring(500, (i) => `cm-${i % 7}`);
  pod.spec!.containers[0]!.envFrom = [
    { configMapRef: { name: "cm-1" } },
    { secretRef: { name: "cm-1" } },
  ];
  await gatherFacts(pod, "default", client);
  assert.equal(client.calls.length, 8);
  assert.equal(new Set(client.calls).size, 8);
});

test("gatherFacts() refuses more distinct objects than maxObjects before any read", async () => {
  const client = kube();
  await assert.rejects(
    gatherFacts(podReferring(101, (i) => `cm-${i}`), "default", client),
    (error: unknown) => {
      assert.ok(error instanceof LimitExceededError);
      assert.equal(error.setting, "PIGGY_MAX_REFERENCED_OBJECTS");
      assert.equal(toStatus(error), 400);
      assert.match(
        error.message,
        /^Cannot look up 101 distinct ConfigMaps and Secrets \(ConfigMap "cm-0", ConfigMap "cm-1", ConfigMap "cm-2", …\): more than PIGGY_MAX_REFERENCED_OBJECTS \(100\)$/,
      );
      return true;
    },
  );
  assert.deepEqual(client.calls, []);
  await gatherFacts(podReferring(5, (i) => `cm-${i}`), "default", client, { maxObjects: 5 });
  assert.equal(client.calls.length, 5);
});

test("gatherFacts() keeps at most `concurrency` reads in flight", async () => {
  for (const concurrency of [1, 3, 8]) {
    const { client, peak } = slowKube(5);
    await gatherFacts(podReferring(30, (i) => `cm-${i}`), "default", client, { concurrency });
    assert.equal(client.calls.length, 30);
    assert.equal(peak(), concurrency);
  }
});

test("gatherFacts() starts no read once the signal aborts and names an unread object", async () => {
  const { client } = slowKube(20);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("deadline")), 30);
  await assert.rejects(
    gatherFacts(podReferring(40, (i) => `cm-${i}`), "default", client, {
      signal: controller.signal,
      concurrency: 2,
    }),
    (error: unknown) => {
      assert.ok(error instanceof GatherFactsError);
      assert.match(
        error.message,
        /^Cannot read ConfigMap "cm-\d+" in namespace "default": deadline/,
      );
      return true;
    },
  );
  assert.ok(client.calls.length <= 6, `${client.calls.length} reads started`);
});

test("factsWithoutReads() answers as gatherFacts() for a pod that refers to nothing, else nothing", async () => {
  const literal = podOf({ env: [{ name: "A", value: "piggy:a" }, { name: "B", value: "b" }] });
  const client = kube();
  assert.deepEqual(factsWithoutReads(literal), await gatherFacts(literal, "default", client));
  assert.deepEqual(client.calls, []);
  const referring = podOf({
    env: [{ name: "VAR1", valueFrom: { configMapKeyRef: { name: "test-cm", key: "key1" } } }],
  });
  assert.equal(factsWithoutReads(referring), undefined);
  const init = podOf({}, [{ envFrom: [{ secretRef: { name: "test-secret" } }] }]);
  assert.equal(factsWithoutReads(init), undefined);
  assert.ok((await gatherFacts(init, "default", client)).secrets.has("test-secret"));
});
