import { test } from "node:test";
import assert from "node:assert/strict";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { parsePlatforms, podPlatforms } from "./image_lookup.ts";

function podWith(spec: Partial<NonNullable<Pod["spec"]>>): Pod {
  return { spec: { containers: [], ...spec } };
}

const arch = (values: string[], key = "kubernetes.io/arch") => ({
  matchExpressions: [{ key, operator: "In", values }],
});

test("podPlatforms(): override, nodeSelector, required affinity, default linux/amd64", () => {
  assert.deepEqual(podPlatforms(podWith({}), ""), [{ os: "linux", architecture: "amd64" }]);
  assert.deepEqual(podPlatforms(podWith({}), "linux/arm64/v8, linux/amd64"), [
    { os: "linux", architecture: "arm64", variant: "v8" },
    { os: "linux", architecture: "amd64" },
  ]);
  assert.deepEqual(
    podPlatforms(podWith({ nodeSelector: { "kubernetes.io/arch": "arm64" } }), ""),
    [{ os: "linux", architecture: "arm64" }],
  );
  const affinity = (terms: ReturnType<typeof arch>[]) => ({
    nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
  });
  assert.deepEqual(
    podPlatforms(podWith({ affinity: affinity([arch(["amd64"]), arch(["arm64"])]) }), ""),
    [{ os: "linux", architecture: "amd64" }, { os: "linux", architecture: "arm64" }],
  );
  // A term without an arch constraint lets the pod land anywhere: the default applies.
  assert.deepEqual(
    podPlatforms(podWith({ affinity: affinity([arch(["arm64"]), arch(["x"], "zone")]) }), ""),
    [{ os: "linux", architecture: "amd64" }],
  );
});

test("parsePlatforms() refuses what is not os/arch[/variant]", () => {
  for (const bad of ["linux", "linux/", "Linux/AMD64", "a/b/c/d", "linux/amd64;rm"]) {
    assert.throws(() => parsePlatforms(bad), SyntaxError, bad);
  }
});
