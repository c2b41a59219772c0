import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { ENV, PIGGY_SEAL_ANNOTATION, PIGGY_UID_ANNOTATION } from "../constants.ts";
import {
  checkSeal,
  MIN_SEAL_KEY_BYTES,
  randomSealKey,
  sealKeyFromText,
  sealMaterial,
  sealPod,
  withSeal,
} from "./seal.ts";

const KEY = sealKeyFromText("k".repeat(40));
const OTHER_KEY = sealKeyFromText("o".repeat(40));

function wrappedPod(): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "web-1",
      uid: "pod-uid",
      creationTimestamp: "2026-01-01T00:00:00Z",
      labels: { app: "web" },
      annotations: {
        "piggysec.com/aws-secret-name": "team-a/web",
        "piggysec.com/piggy-enforce-integrity": "true",
        [PIGGY_UID_ANNOTATION]: '{"u1":"sig1","u2":"sig2"}',
        "example.com/other": "x",
      },
    },
    spec: {
      serviceAccountName: "web",
      initContainers: [{
        name: "migrate",
        image: "migrate:1",
        command: ["/piggy/piggy-env"],
        args: ["--", "/migrate"],
        env: [{ name: ENV.UID, value: "u2" }],
      }],
      containers: [
        {
          name: "app",
          image: "app:1",
          command: ["/piggy/piggy-env"],
          args: ["--", "/app"],
          env: [{ name: ENV.UID, value: "u1" }],
        },
        { name: "sidecar", image: "proxy:1" },
      ],
    },
  };
}

test("sealMaterial() lists namespace, service account, piggysec.com/ annotations and wrapped containers", () => {
  const material = JSON.parse(sealMaterial(wrappedPod(), "team-a"));
  assert.deepEqual(material, [
    "piggy-seal-v1",
    "team-a",
    "web",
    [
      ["piggysec.com/aws-secret-name", "team-a/web"],
      ["piggysec.com/piggy-enforce-integrity", "true"],
      [PIGGY_UID_ANNOTATION, '{"u1":"sig1","u2":"sig2"}'],
    ],
    [["init", "migrate", "u2", "sig2", "migrate:1"], ["app", "app", "u1", "sig1", "app:1"]],
  ]);
});

test("sealMaterial() takes a known uid map only while the pod holds its text", () => {
  const pod = wrappedPod();
  const parsed = sealMaterial(pod, "team-a");
  const text = '{"u1":"sig1","u2":"sig2"}';
  const signatures = new Map([["u1", "sig1"], ["u2", "sig2"]]);
  assert.equal(sealMaterial(pod, "team-a", { knownUids: { text, signatures } }), parsed);
  // A map whose text the pod does not hold (changed since) is not used: the text is parsed.
  const stale = { text: '{"u1":"other"}', signatures: new Map([["u1", "other"]]) };
  assert.equal(sealMaterial(pod, "team-a", { knownUids: stale }), parsed);
  assert.equal(
    sealPod(pod, "team-a", [KEY], { knownUids: stale }),
    sealPod(pod, "team-a", [KEY]),
  );
  assert.deepEqual(
    withSeal(pod, "team-a", [KEY], { knownUids: stale }),
    withSeal(pod, "team-a", [KEY]),
  );
});

test("sealPod() is the base64url HMAC-SHA256 of the material under the first key", () => {
  const pod = wrappedPod();
  const expected = createHmac("sha256", KEY).update(sealMaterial(pod, "team-a")).digest(
    "base64url",
  );
  assert.equal(sealPod(pod, "team-a", [KEY, OTHER_KEY]), `v1.${expected}`);
  assert.equal(sealPod(pod, "team-a", [KEY]), sealPod(structuredClone(pod), "team-a", [KEY]));
  assert.throws(() => sealPod(pod, "team-a", []), RangeError);
});

test("sealPod() matches node:crypto's HMAC for keys shorter, as long as and longer than a block", () => {
  const pod = wrappedPod();
  // A non-ASCII annotation: the material is hashed as UTF-8.
  pod.metadata!.annotations!["piggysec.com/aws-secret-name"] = "team-a/wéb-ключ-🔑";
  for (const length of [32, 63, 64, 65, 100, 200]) {
    const key = new Uint8Array(length).map((_, index) => (index * 31 + length) % 256);
    const expected = createHmac("sha256", key).update(sealMaterial(pod, "team-a")).digest(
      "base64url",
    );
    assert.equal(sealPod(pod, "team-a", [key]), `v1.${expected}`, `key of ${length} bytes`);
    assert.equal(checkSeal(withSeal(pod, "team-a", [key]), "team-a", [key]).state, "valid");
  }
  // The same array with other bytes is another key.
  const key = new Uint8Array(40).fill(1);
  const sealed = withSeal(pod, "team-a", [key]);
  key.fill(2);
  assert.equal(checkSeal(sealed, "team-a", [key]).state, "mismatch");
  assert.equal(
    sealPod(pod, "team-a", [key]),
    `v1.${createHmac("sha256", key).update(sealMaterial(pod, "team-a")).digest("base64url")}`,
  );
});

test("withSeal() returns a sealed copy and leaves the input alone", () => {
  const pod = wrappedPod();
  const sealed = withSeal(pod, "team-a", [KEY]);
  assert.equal(pod.metadata?.annotations?.[PIGGY_SEAL_ANNOTATION], undefined);
  assert.equal(
    sealed.metadata?.annotations?.[PIGGY_SEAL_ANNOTATION],
    sealPod(pod, "team-a", [KEY]),
  );
  // Resealing a sealed pod gives the same value: the seal does not cover itself.
  assert.deepEqual(withSeal(sealed, "team-a", [KEY]), sealed);
  const bare = withSeal({ spec: { containers: [] } }, "ns", [KEY]);
  assert.match(bare.metadata?.annotations?.[PIGGY_SEAL_ANNOTATION] ?? "", /^v1\.[\w-]{43}$/);
});

test("checkSeal() accepts a seal made with any of the keys and says which", () => {
  const pod = withSeal(wrappedPod(), "team-a", [OTHER_KEY]);
  assert.deepEqual(checkSeal(pod, "team-a", [KEY, OTHER_KEY]), { state: "valid", keyIndex: 1 });
  assert.deepEqual(checkSeal(pod, "team-a", [OTHER_KEY]), { state: "valid", keyIndex: 0 });
  assert.deepEqual(checkSeal(pod, "team-a", [KEY]), { state: "mismatch" });
  assert.deepEqual(checkSeal(wrappedPod(), "team-a", [KEY]), { state: "missing" });
});

test("checkSeal() ignores what admission cannot see or what is not part of the decision", () => {
  const pod = withSeal(wrappedPod(), "team-a", [KEY]);
  const live = structuredClone(pod);
  Object.assign(live.metadata!, {
    name: "web-7f9c",
    uid: "another",
    creationTimestamp: "2026-06-01T00:00:00Z",
  });
  live.metadata!.labels = { app: "changed" };
  live.metadata!.annotations!["example.com/other"] = "changed";
  live.spec!.containers[1]!.image = "proxy:2";
  live.spec!.nodeName = "node-1";
  assert.equal(checkSeal(live, "team-a", [KEY]).state, "valid");
});

const EDITS: Array<[string, (pod: Pod) => void]> = [
  ["a changed piggysec.com/ annotation", (pod) => {
    pod.metadata!.annotations!["piggysec.com/aws-secret-name"] = "team-b/web";
  }],
  ["an added piggysec.com/ annotation", (pod) => {
    pod.metadata!.annotations!["piggysec.com/aws-ssm-parameter-path"] = "/team-b";
  }],
  ["a removed piggysec.com/ annotation", (pod) => {
    delete pod.metadata!.annotations!["piggysec.com/piggy-enforce-integrity"];
  }],
  ["a rewritten uid map", (pod) => {
    pod.metadata!.annotations![PIGGY_UID_ANNOTATION] = '{"u1":"other","u2":"sig2"}';
  }],
  ["a removed uid map", (pod) => {
    delete pod.metadata!.annotations![PIGGY_UID_ANNOTATION];
  }],
  ["an app container's image", (pod) => {
    pod.spec!.containers[0]!.image = "app:evil";
  }],
  ["an init container's image", (pod) => {
    pod.spec!.initContainers![0]!.image = "migrate:evil";
  }],
  ["the service account", (pod) => {
    pod.spec!.serviceAccountName = "admin";
  }],
  ["a truncated seal", (pod) => {
    const value = pod.metadata!.annotations![PIGGY_SEAL_ANNOTATION]!;
    pod.metadata!.annotations![PIGGY_SEAL_ANNOTATION] = value.slice(0, -2);
  }],
  ["a seal of another version", (pod) => {
    const value = pod.metadata!.annotations![PIGGY_SEAL_ANNOTATION]!;
    pod.metadata!.annotations![PIGGY_SEAL_ANNOTATION] = value.replace(/^v1\./, "v2.");
  }],
];

for (const [what, edit] of EDITS) {
  test(`checkSeal() finds ${what} after admission`, () => {
    const pod = withSeal(wrappedPod(), "team-a", [KEY]);
    assert.equal(checkSeal(pod, "team-a", [KEY]).state, "valid");
    edit(pod);
    assert.deepEqual(checkSeal(pod, "team-a", [KEY]), { state: "mismatch" });
  });
}

test("checkSeal() binds the namespace", () => {
  const pod = withSeal(wrappedPod(), "team-a", [KEY]);
  assert.deepEqual(checkSeal(pod, "team-b", [KEY]), { state: "mismatch" });
});

test("the service account defaults to default, as the API server sets it", () => {
  const pod = wrappedPod();
  delete pod.spec!.serviceAccountName;
  const sealed = withSeal(pod, "team-a", [KEY]);
  sealed.spec!.serviceAccountName = "default";
  assert.equal(checkSeal(sealed, "team-a", [KEY]).state, "valid");
});

test("sealKeyFromText() trims the file and needs 32 bytes", () => {
  assert.deepEqual(
    sealKeyFromText(`  ${"a".repeat(32)}\n`),
    new TextEncoder().encode("a".repeat(32)),
  );
  assert.throws(() => sealKeyFromText(`${"a".repeat(31)}\n`), /31 bytes, at least 32/);
  assert.equal(randomSealKey().byteLength, MIN_SEAL_KEY_BYTES);
  assert.notDeepEqual(randomSealKey(), randomSealKey());
});
