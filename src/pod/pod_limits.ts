/**
 * The cost caps of one pod, checked on the decoded object before any work: containers per pod and
 * `env` plus `envFrom` entries per container. Sized far above real pods; a pod over one is refused
 * with a message that names the count and the setting.
 *
 * @module
 */

import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { LIMIT_ENV } from "../constants.ts";
import { LimitExceededError } from "../errors.ts";

/** Default of `maxContainers`. */
export const DEFAULT_MAX_CONTAINERS = 200;

/** Default of `maxEnvPerContainer`. */
export const DEFAULT_MAX_ENV_PER_CONTAINER = 1_000;

/** The caps of {@link checkPodSize}. */
export interface PodSizeLimits {
  /** Most containers, init containers and ephemeral containers together. */
  maxContainers: number;
  /** Most `env` plus `envFrom` entries of one container. */
  maxEnvPerContainer: number;
}

function lengthOf(value: unknown): number {
  return Array.isArray(value) ? value.length : 0;
}

/**
 * Refuses a pod over a cap. Counts only what is there (fields of the wrong type count as empty:
 * their shape is checked elsewhere).
 *
 * @param pod the decoded pod
 * @param limits the caps
 * @throws {LimitExceededError} naming the count and PIGGY_MAX_CONTAINERS or
 *   PIGGY_MAX_ENV_PER_CONTAINER
 */
export function checkPodSize(pod: Pod, limits: PodSizeLimits): void {
  const spec: Record<string, unknown> = typeof pod.spec === "object" && pod.spec !== null
    ? pod.spec as unknown as Record<string, unknown>
    : {};
  const lists = [spec.initContainers, spec.containers, spec.ephemeralContainers];
  const total = lists.reduce((sum: number, list) => sum + lengthOf(list), 0);
  if (total > limits.maxContainers) {
    throw new LimitExceededError(
      `Cannot admit a pod with ${total} containers (init, app and ephemeral): more than ` +
        `${LIMIT_ENV.MAX_CONTAINERS} (${limits.maxContainers})`,
      LIMIT_ENV.MAX_CONTAINERS,
    );
  }
  for (const list of lists) {
    if (!Array.isArray(list)) continue;
    for (const container of list as unknown[]) {
      if (typeof container !== "object" || container === null) continue;
      const { name, env, envFrom } = container as Record<string, unknown>;
      const entries = lengthOf(env) + lengthOf(envFrom);
      if (entries > limits.maxEnvPerContainer) {
        const shown = typeof name === "string" ? JSON.stringify(name.slice(0, 253)) : "(unnamed)";
        throw new LimitExceededError(
          `Cannot admit container ${shown} with ${entries} env and envFrom entries: more than ` +
            `${LIMIT_ENV.MAX_ENV_PER_CONTAINER} (${limits.maxEnvPerContainer})`,
          LIMIT_ENV.MAX_ENV_PER_CONTAINER,
        );
      }
    }
  }
}
