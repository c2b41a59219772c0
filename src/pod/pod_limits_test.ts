import { test } from "node:test";
import assert from "node:assert/strict";
import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import { LimitExceededError } from "../errors.ts";
import { checkPodSize } from "./pod_limits.ts";

const LIMITS = { maxContainers: 4, maxEnvPerContainer: 3 };

function containers(count: number, env = 0, envFrom = 0): Container[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `c${i}`,
    env: Array.from({ length: env }, (_, j) => ({ name: `V${j}`, value: "x" })),
    envFrom: Array.from({ length: envFrom }, () => ({ configMapRef: { name: "cm" } })),
  }));
}

function refusal(pod: Pod): LimitExceededError {
  try {
    checkPodSize(pod, LIMITS);
  } catch (error) {
    if (error instanceof LimitExceededError) return error;
    throw error;
  }
  assert.fail("the pod was not refused");
}

test("checkPodSize() accepts a pod at every cap", () => {
  checkPodSize({
    spec: { initContainers: containers(1, 2, 1), containers: containers(3, 3) },
  }, LIMITS);
  checkPodSize({}, LIMITS);
});

test("checkPodSize() counts init, app and ephemeral containers together", () => {
  const error = refusal({
    spec: {
      initContainers: containers(2),
      containers: containers(2),
      ephemeralContainers: containers(1),
    },
  });
  assert.equal(error.setting, "PIGGY_MAX_CONTAINERS");
  assert.equal(
    error.message,
    "Cannot admit a pod with 5 containers (init, app and ephemeral): more than " +
      "PIGGY_MAX_CONTAINERS (4)",
  );
});

test("checkPodSize() counts env and envFrom entries of each container", () => {
  const error = refusal({ spec: { containers: [...containers(1), ...containers(1, 2, 2)] } });
  assert.equal(error.setting, "PIGGY_MAX_ENV_PER_CONTAINER");
  assert.equal(
    error.message,
    'Cannot admit container "c0" with 4 env and envFrom entries: more than ' +
      "PIGGY_MAX_ENV_PER_CONTAINER (3)",
  );
  const init = refusal({ spec: { containers: [], initContainers: containers(1, 4) } });
  assert.equal(init.setting, "PIGGY_MAX_ENV_PER_CONTAINER");
});

test("checkPodSize() counts fields of the wrong type as empty", () => {
  const pod = { spec: { containers: "x", initContainers: [null, { env: "y" }] } };
  checkPodSize(pod as unknown as Pod, LIMITS);
});
