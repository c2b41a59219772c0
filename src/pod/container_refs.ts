/**
 * Which containers Piggy wraps (Go Piggy's decision rule): a container qualifies when one
 * of its env values starts with `piggy:` — a literal `value`, a `valueFrom` ConfigMap/Secret key,
 * or any key of an `envFrom` ConfigMap/Secret — or when it already runs the launcher.
 *
 * @module
 */

import type { Container } from "kubernetes-types/core/v1.d.ts";
import { LAUNCHER_PATH, REFERENCE_PREFIX } from "../constants.ts";

/**
 * Per object name: each key whose value starts with `piggy:`, mapped to the secret key it refers
 * to; `null` when the object is NotFound.
 */
export type ReferenceKeys = ReadonlyMap<string, ReadonlyMap<string, string> | null>;

/**
 * The secret key a value refers to: the text after `piggy:` up to the first line break (a trailing
 * `\r` is dropped). Go Piggy left a value with two `piggy:` lines unresolved; the first line wins.
 *
 * @param value an environment value
 * @returns the key, or `undefined` when the value does not start with `piggy:` (case-sensitive)
 */
export function referenceKey(value: string): string | undefined {
  if (!value.startsWith(REFERENCE_PREFIX)) return undefined;
  const rest = value.slice(REFERENCE_PREFIX.length);
  const newline = rest.indexOf("\n");
  const line = newline === -1 ? rest : rest.slice(0, newline);
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/** An image's Entrypoint and Cmd, read from its registry. */
export interface ImageEntry {
  entrypoint: readonly string[];
  cmd: readonly string[];
}

/**
 * Facts looked up before the mutation: ConfigMaps and Secrets of the request's namespace, and the
 * image configs of wrapped containers without `command`.
 */
export interface PodFacts {
  /** ConfigMap name → keys holding `piggy:` references (`null`: NotFound). */
  configMaps: ReferenceKeys;
  /** Secret name → keys holding `piggy:` references (`null`: NotFound). */
  secrets: ReferenceKeys;
  /** Container name → its image's Entrypoint/Cmd (containers without `command`). */
  images?: ReadonlyMap<string, ImageEntry>;
  /** Containers left unwrapped because their image could not be read (warn-and-skip). */
  unwrapped?: ReadonlySet<string>;
}

/** Facts of a pod that references no ConfigMap or Secret. */
export const NO_FACTS: PodFacts = { configMaps: new Map(), secrets: new Map() };

/**
 * True when the container already starts through the launcher (wrapped by Go Piggy, by us, or by
 * hand as `["/piggy/piggy-env", "--", …]`): it is never wrapped twice.
 */
export function isWrapped(container: Container): boolean {
  return container.command?.[0] === LAUNCHER_PATH;
}

/** True when a literal env `value` starts with `piggy:`. */
export function hasLiteralReference(container: Container): boolean {
  return (container.env ?? []).some((entry) =>
    typeof entry?.value === "string" && entry.value.startsWith(REFERENCE_PREFIX)
  );
}

/** True when the container's qualification depends on ConfigMap/Secret contents. */
export function needsLookup(container: Container): boolean {
  return !isWrapped(container) && !hasLiteralReference(container);
}

/** The ConfigMaps and Secrets a container's `env` and `envFrom` refer to. */
export function referencedObjects(
  container: Container,
): { configMaps: string[]; secrets: string[] } {
  const configMaps: string[] = [];
  const secrets: string[] = [];
  for (const entry of container.env ?? []) {
    const configMap = entry?.valueFrom?.configMapKeyRef?.name;
    const secret = entry?.valueFrom?.secretKeyRef?.name;
    if (typeof configMap === "string" && configMap !== "") configMaps.push(configMap);
    if (typeof secret === "string" && secret !== "") secrets.push(secret);
  }
  for (const source of container.envFrom ?? []) {
    const configMap = source?.configMapRef?.name;
    const secret = source?.secretRef?.name;
    if (typeof configMap === "string" && configMap !== "") configMaps.push(configMap);
    if (typeof secret === "string" && secret !== "") secrets.push(secret);
  }
  return { configMaps, secrets };
}

function keyHolds(keys: ReferenceKeys, name: string | undefined, key: string | undefined): boolean {
  if (!name || key === undefined) return false;
  return keys.get(name)?.has(key) ?? false;
}

function anyKey(keys: ReferenceKeys, name: string | undefined): boolean {
  if (!name) return false;
  const found = keys.get(name);
  return found !== null && found !== undefined && found.size > 0;
}

/**
 * Decides whether Piggy wraps the container. NotFound objects (and objects never looked up)
 * count as holding no reference; `fieldRef`/`resourceFieldRef` never count.
 */
export function qualifies(container: Container, facts: PodFacts): boolean {
  if (!needsLookup(container)) return true;
  for (const entry of container.env ?? []) {
    const from = entry?.valueFrom;
    if (keyHolds(facts.configMaps, from?.configMapKeyRef?.name, from?.configMapKeyRef?.key)) {
      return true;
    }
    if (keyHolds(facts.secrets, from?.secretKeyRef?.name, from?.secretKeyRef?.key)) return true;
  }
  for (const source of container.envFrom ?? []) {
    if (anyKey(facts.configMaps, source?.configMapRef?.name)) return true;
    if (anyKey(facts.secrets, source?.secretRef?.name)) return true;
  }
  return false;
}

/**
 * Expands `$(NAME)` in an env value as the kubelet does: a name defined earlier is replaced, an
 * unknown one is kept as written, and `$$` stands for a literal `$`.
 */
export function expandKubeletReferences(
  value: string,
  defined: ReadonlyMap<string, string>,
): string {
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const char = value[i];
    const next = value[i + 1];
    if (char === "$" && next === "$") {
      out += "$";
      i++;
    } else if (char === "$" && next === "(") {
      const end = value.indexOf(")", i + 2);
      if (end === -1) {
        out += value.slice(i);
        break;
      }
      out += defined.get(value.slice(i + 2, end)) ?? value.slice(i, end + 1);
      i = end;
    } else {
      out += char;
    }
  }
  return out;
}

/**
 * The secret keys a container refers to: its literal `piggy:` values (after the kubelet's
 * `$(NAME)` expansion, as the launcher sees them), and the references held by the ConfigMap/Secret
 * keys of its `valueFrom` and `envFrom` (looked up in `facts`). `/secret` answers only these keys.
 */
export function referencedSecretKeys(container: Container, facts: PodFacts): Set<string> {
  const keys = new Set<string>();
  const add = (key: string | undefined) => {
    if (key !== undefined) keys.add(key);
  };
  const defined = new Map<string, string>();
  for (const entry of container.env ?? []) {
    if (typeof entry?.value === "string") {
      const value = expandKubeletReferences(entry.value, defined);
      defined.set(entry.name, value);
      add(referenceKey(value));
    } else if (entry?.name) {
      // Its value (valueFrom) is unknown here: later $(NAME) references stay unexpanded.
      defined.delete(entry.name);
    }
    const from = entry?.valueFrom;
    const configMap = from?.configMapKeyRef;
    const secret = from?.secretKeyRef;
    if (configMap?.name) add(facts.configMaps.get(configMap.name)?.get(configMap.key));
    if (secret?.name) add(facts.secrets.get(secret.name)?.get(secret.key));
  }
  for (const source of container.envFrom ?? []) {
    const objects = [
      source?.configMapRef?.name ? facts.configMaps.get(source.configMapRef.name) : undefined,
      source?.secretRef?.name ? facts.secrets.get(source.secretRef.name) : undefined,
    ];
    for (const object of objects) object?.forEach((key) => keys.add(key));
  }
  return keys;
}
