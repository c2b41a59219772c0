/**
 * What the kubelet gives a container: its environment built from the pod spec and the stored
 * Secrets and ConfigMaps (the demo starts wrapped containers with it).
 *
 * @module
 */

import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import { type KubeObject, secretValues } from "./demo_data.ts";

/** Secrets and ConfigMaps by {@link objectKey}, as stored in the cluster. */
export type Objects = Map<string, KubeObject>;

/** The key of an object in {@link Objects}. */
export function objectKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

function lookupData(
  objects: Objects,
  kind: "Secret" | "ConfigMap",
  namespace: string,
  name: string,
): Record<string, string> | undefined {
  const found = objects.get(objectKey(kind, namespace, name));
  if (!found) return undefined;
  return kind === "Secret" ? secretValues(found) : (found.data as Record<string, string>) ?? {};
}

/**
 * Expands `$(NAME)` and `$$` as the kubelet does (its own implementation, independent of the one in
 * `src/pod/command_template.ts`): `$$` → `$`, `$(NAME)` → the value, or as written when undefined.
 */
export function kubeletExpand(text: string, env: ReadonlyMap<string, string>): string {
  return text.replace(/\$(\$|\(([^)]*)\))/g, (match, token: string, name?: string) => {
    if (token === "$") return "$";
    return name !== undefined && env.has(name) ? env.get(name)! : match;
  });
}

/** The argv the kubelet starts: `command` and `args`, each expanded with the container's env. */
export function kubeletArgv(container: Container, env: ReadonlyMap<string, string>): string[] {
  return [...(container.command ?? []), ...(container.args ?? [])].map((arg) =>
    kubeletExpand(arg, env)
  );
}

/**
 * The container's environment as the kubelet builds it: `envFrom` first, then `env` (literal
 * values expanded with the variables before them, the downward API, Secret and ConfigMap keys); a
 * later name replaces an earlier one.
 *
 * @throws {Error} when a non-optional Secret, ConfigMap or key is missing (the kubelet would
 *   refuse to start the container)
 */
export function kubeletEnv(container: Container, pod: Pod, objects: Objects): Map<string, string> {
  const namespace = pod.metadata?.namespace ?? "default";
  const env = new Map<string, string>();
  const missing = (what: string) => {
    throw new Error(`Cannot start container "${container.name}": ${what} not found`);
  };
  for (const source of container.envFrom ?? []) {
    const ref = source.secretRef ?? source.configMapRef;
    const kind = source.secretRef ? "Secret" : "ConfigMap";
    if (!ref?.name) continue;
    const data = lookupData(objects, kind, namespace, ref.name);
    if (!data) {
      if (!ref.optional) missing(`${kind} "${ref.name}"`);
      continue;
    }
    for (const [key, value] of Object.entries(data)) env.set(`${source.prefix ?? ""}${key}`, value);
  }
  const fields: Record<string, string> = {
    "metadata.name": pod.metadata?.name ?? "",
    "metadata.namespace": namespace,
    "metadata.uid": pod.metadata?.uid ?? "",
    "spec.serviceAccountName": pod.spec?.serviceAccountName ?? "",
  };
  for (const entry of container.env ?? []) {
    const from = entry.valueFrom;
    if (entry.value !== undefined || !from) {
      // Literal values are expanded with the variables defined before them.
      env.set(entry.name, kubeletExpand(entry.value ?? "", env));
    } else if (from.fieldRef) {
      env.set(entry.name, fields[from.fieldRef.fieldPath] ?? "");
    } else if (from.secretKeyRef || from.configMapKeyRef) {
      const ref = (from.secretKeyRef ?? from.configMapKeyRef)!;
      const kind = from.secretKeyRef ? "Secret" : "ConfigMap";
      const value = lookupData(objects, kind, namespace, ref.name ?? "")?.[ref.key];
      if (value !== undefined) env.set(entry.name, value);
      else if (!ref.optional) missing(`key "${ref.key}" of ${kind} "${ref.name}"`);
    }
  }
  return env;
}
