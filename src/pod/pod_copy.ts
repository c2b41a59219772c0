/**
 * Copy-on-write for the admission steps (mutation, projected token, command templates, seal):
 * each step copies only the objects it writes and shares the rest with its input, which it never
 * changes. The JSON Patch diff then skips every shared subtree, and no step pays for a deep copy.
 *
 * @module
 */

import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";

/**
 * A copy of the pod whose own objects reach down to every list and map a step may change:
 * metadata, annotations, spec, and its init container, container and volume lists. The entries of
 * those lists (containers, volumes) are still shared: replace one with {@link writableContainer}
 * before changing it.
 */
export function writablePod(pod: Pod): Pod {
  const copy: Pod = { ...pod };
  if (pod.metadata) {
    copy.metadata = { ...pod.metadata };
    if (pod.metadata.annotations) copy.metadata.annotations = { ...pod.metadata.annotations };
  }
  if (pod.spec) {
    copy.spec = { ...pod.spec };
    if (Array.isArray(pod.spec.containers)) copy.spec.containers = [...pod.spec.containers];
    if (Array.isArray(pod.spec.initContainers)) {
      copy.spec.initContainers = [...pod.spec.initContainers];
    }
    if (Array.isArray(pod.spec.volumes)) copy.spec.volumes = [...pod.spec.volumes];
  }
  return copy;
}

/**
 * A container of its own for a step to change: a new object with its own `env` and
 * `volumeMounts` lists (their entries are replaced, never changed in place).
 */
export function writableContainer(container: Container): Container {
  const copy: Container = { ...container };
  if (Array.isArray(container.env)) copy.env = [...container.env];
  if (Array.isArray(container.volumeMounts)) copy.volumeMounts = [...container.volumeMounts];
  return copy;
}

/**
 * Replaces each container of the (writable) lists for which `change` is wanted by a
 * {@link writableContainer} copy and calls `change` on it; init containers first, in pod order.
 *
 * @param spec the spec of a {@link writablePod} copy
 * @param wanted which containers to change (called with the shared original)
 * @param change writes into the container's copy (`own`); `original` is the shared one
 */
export function changeContainers(
  spec: NonNullable<Pod["spec"]>,
  wanted: (container: Container) => boolean,
  change: (own: Container, original: Container) => void,
): void {
  for (const list of [spec.initContainers, spec.containers]) {
    if (!Array.isArray(list)) continue;
    list.forEach((container, index) => {
      if (!container || !wanted(container)) return;
      const own = writableContainer(container);
      list[index] = own;
      change(own, container);
    });
  }
}
