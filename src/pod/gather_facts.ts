/**
 * The I/O before the mutation: reads the ConfigMaps and Secrets that the pod's containers refer to
 * (request namespace, each object once) and keeps only which keys hold `piggy:` references and the
 * secret keys they name. Values are never kept or logged.
 *
 * @module
 */

import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import type { KubeCallOptions, KubeClient } from "../k8s/client.ts";
import { describeError } from "../log.ts";
import { needsLookup, type PodFacts, referencedObjects, referenceKey } from "./container_refs.ts";

/** A ConfigMap or Secret could not be read for a reason other than NotFound. */
export class GatherFactsError extends Error {
  /** `ConfigMap` or `Secret`. */
  readonly kind: "ConfigMap" | "Secret";
  /** Object name. */
  readonly objectName: string;

  constructor(kind: "ConfigMap" | "Secret", namespace: string, name: string, cause: unknown) {
    super(
      `Cannot read ${kind} "${name}" in namespace "${namespace}": ${describeError(cause)}`,
      { cause },
    );
    this.name = "GatherFactsError";
    this.kind = kind;
    this.objectName = name;
  }
}

/** Options of {@link gatherFacts}. */
export interface GatherFactsOptions {
  /** Aborts the Kubernetes calls (e.g. the admission deadline). */
  signal?: AbortSignal;
  /**
   * Look up every object these containers refer to (for `/secret`), instead of only those the
   * wrapping decision of the pod's containers depends on.
   */
  containers?: readonly Container[];
}

function containersOf(pod: Pod): Container[] {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
}

function referenceKeysOf(
  data: Record<string, string> | undefined,
  base64: boolean,
): Map<string, string> {
  const keys = new Map<string, string>();
  for (const [key, raw] of Object.entries(data ?? {})) {
    if (typeof raw !== "string") continue;
    const value = base64 ? decodeBase64(raw) : raw;
    const reference = value === undefined ? undefined : referenceKey(value);
    if (reference !== undefined) keys.set(key, reference);
  }
  return keys;
}

function decodeBase64(text: string): string | undefined {
  try {
    const binary = atob(text);
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Looks up every ConfigMap and Secret referenced by `env[].valueFrom` or `envFrom` of the init and
 * app containers whose decision depends on them (ephemeral containers are ignored; containers
 * already wrapped or holding a literal `piggy:` value need no lookup).
 *
 * @param pod the pod under admission
 * @param namespace the request's namespace (never the object's)
 * @param kube Kubernetes API access
 * @param options abort signal
 * @returns which keys of each object hold references (and to which secret key); NotFound objects
 *   map to `null`
 * @throws {GatherFactsError} when the API fails with anything but NotFound (`cause` keeps the
 *   client error: `KubeApiError` or `KubeUnavailableError`)
 */
export async function gatherFacts(
  pod: Pod,
  namespace: string,
  kube: KubeClient,
  options: GatherFactsOptions = {},
): Promise<PodFacts> {
  const configMapNames = new Set<string>();
  const secretNames = new Set<string>();
  for (const container of options.containers ?? containersOf(pod)) {
    if (!options.containers && !needsLookup(container)) continue;
    const refs = referencedObjects(container);
    refs.configMaps.forEach((name) => configMapNames.add(name));
    refs.secrets.forEach((name) => secretNames.add(name));
  }
  const call: KubeCallOptions = options.signal ? { signal: options.signal } : {};
  const lookups = [
    ...[...configMapNames].map(async (name) => {
      try {
        const found = await kube.getConfigMap(namespace, name, call);
        return {
          kind: "ConfigMap" as const,
          name,
          keys: found ? referenceKeysOf(found.data, false) : null,
        };
      } catch (error) {
        throw new GatherFactsError("ConfigMap", namespace, name, error);
      }
    }),
    ...[...secretNames].map(async (name) => {
      try {
        const found = await kube.getSecret(namespace, name, call);
        return {
          kind: "Secret" as const,
          name,
          keys: found ? referenceKeysOf(found.data, true) : null,
        };
      } catch (error) {
        throw new GatherFactsError("Secret", namespace, name, error);
      }
    }),
  ];
  const settled = await Promise.allSettled(lookups);
  const configMaps = new Map<string, Map<string, string> | null>();
  const secrets = new Map<string, Map<string, string> | null>();
  for (const outcome of settled) {
    // Report the first failure in reference order, so the denial is deterministic.
    if (outcome.status === "rejected") throw outcome.reason;
    const { kind, name, keys } = outcome.value;
    (kind === "ConfigMap" ? configMaps : secrets).set(name, keys);
  }
  return { configMaps, secrets };
}
