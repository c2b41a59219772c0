/**
 * The I/O before the mutation: reads the ConfigMaps and Secrets that the pod's containers refer to
 * (request namespace, each object once) and keeps only which keys hold `piggy:` references and the
 * secret keys they name. Values are never kept or logged.
 *
 * @module
 */

import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import type { KubeCallOptions, KubeClient } from "../k8s/client.ts";
import { LIMIT_ENV } from "../constants.ts";
import { LimitExceededError } from "../errors.ts";
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

/** Default of `maxObjects`: distinct ConfigMaps and Secrets one lookup may read. */
export const DEFAULT_MAX_REFERENCED_OBJECTS = 100;

/** Default of `concurrency`: GETs in flight at once. */
export const DEFAULT_LOOKUP_CONCURRENCY = 8;

/** Options of {@link gatherFacts}. */
export interface GatherFactsOptions {
  /** Aborts the Kubernetes calls (e.g. the admission deadline); no call starts once aborted. */
  signal?: AbortSignal;
  /**
   * Look up every object these containers refer to (for `/secret`), instead of only those the
   * wrapping decision of the pod's containers depends on.
   */
  containers?: readonly Container[];
  /**
   * Most distinct objects (ConfigMaps plus Secrets) read; more is refused before any call.
   * @default DEFAULT_MAX_REFERENCED_OBJECTS
   */
  maxObjects?: number;
  /** Most GETs in flight at once. @default DEFAULT_LOOKUP_CONCURRENCY */
  concurrency?: number;
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

/** One object to read. */
interface Lookup {
  kind: "ConfigMap" | "Secret";
  name: string;
}

/** The distinct objects the containers refer to (each (kind, name) once, in reference order). */
function lookupsOf(pod: Pod, options: GatherFactsOptions): Lookup[] {
  const configMapNames = new Set<string>();
  const secretNames = new Set<string>();
  for (const container of options.containers ?? containersOf(pod)) {
    if (!options.containers && !needsLookup(container)) continue;
    const refs = referencedObjects(container);
    refs.configMaps.forEach((name) => configMapNames.add(name));
    refs.secrets.forEach((name) => secretNames.add(name));
  }
  return [
    ...[...configMapNames].map((name) => ({ kind: "ConfigMap" as const, name })),
    ...[...secretNames].map((name) => ({ kind: "Secret" as const, name })),
  ];
}

/**
 * The facts of a pod whose containers refer to no ConfigMap or Secret (most pods: literal
 * `piggy:` values only): no read, nothing to wait for. `undefined` when something must be read
 * (then {@link gatherFacts}).
 */
export function factsWithoutReads(
  pod: Pod,
  options: Pick<GatherFactsOptions, "containers"> = {},
): PodFacts | undefined {
  return lookupsOf(pod, options).length === 0
    ? { configMaps: new Map(), secrets: new Map() }
    : undefined;
}

/** The first few names of a list, for messages. */
function firstNames(lookups: readonly Lookup[], count = 3): string {
  const shown = lookups.slice(0, count).map(({ kind, name }) => `${kind} "${name}"`).join(", ");
  return lookups.length > count ? `${shown}, …` : shown;
}

/**
 * Looks up every ConfigMap and Secret referenced by `env[].valueFrom` or `envFrom` of the init and
 * app containers whose decision depends on them (ephemeral containers are ignored; containers
 * already wrapped or holding a literal `piggy:` value need no lookup). Each (kind, name) is read
 * once, at most `concurrency` at a time; more than `maxObjects` distinct objects are refused
 * before any call.
 *
 * @param pod the pod under admission
 * @param namespace the request's namespace (never the object's)
 * @param kube Kubernetes API access
 * @param options abort signal, limits
 * @returns which keys of each object hold references (and to which secret key); NotFound objects
 *   map to `null`
 * @throws {LimitExceededError} when more than `maxObjects` distinct objects are referenced (the
 *   message names the count and PIGGY_MAX_REFERENCED_OBJECTS)
 * @throws {GatherFactsError} when the API fails with anything but NotFound, or the signal aborts
 *   before every object was read (`cause` keeps the client error: `KubeApiError` or
 *   `KubeUnavailableError`, or the abort reason)
 */
export async function gatherFacts(
  pod: Pod,
  namespace: string,
  kube: KubeClient,
  options: GatherFactsOptions = {},
): Promise<PodFacts> {
  const lookups = lookupsOf(pod, options);
  const maxObjects = options.maxObjects ?? DEFAULT_MAX_REFERENCED_OBJECTS;
  if (lookups.length > maxObjects) {
    throw new LimitExceededError(
      `Cannot look up ${lookups.length} distinct ConfigMaps and Secrets (${
        firstNames(lookups)
      }): more than ${LIMIT_ENV.MAX_REFERENCED_OBJECTS} (${maxObjects})`,
      LIMIT_ENV.MAX_REFERENCED_OBJECTS,
    );
  }
  const { signal } = options;
  const call: KubeCallOptions = signal ? { signal } : {};
  // undefined: not read (yet); null: NotFound.
  const results: (Map<string, string> | null | undefined)[] = lookups.map(() => undefined);
  let next = 0;
  const failures: { index: number; error: GatherFactsError }[] = [];
  const worker = async () => {
    while (next < lookups.length && failures.length === 0 && !signal?.aborted) {
      const index = next++;
      const { kind, name } = lookups[index]!;
      try {
        const found = kind === "ConfigMap"
          ? await kube.getConfigMap(namespace, name, call)
          : await kube.getSecret(namespace, name, call);
        results[index] = found ? referenceKeysOf(found.data, kind === "Secret") : null;
      } catch (error) {
        failures.push({ index, error: new GatherFactsError(kind, namespace, name, error) });
      }
    }
  };
  const workers = Math.max(
    1,
    Math.min(options.concurrency ?? DEFAULT_LOOKUP_CONCURRENCY, lookups.length),
  );
  await Promise.all(Array.from({ length: workers }, worker));
  // Report the first failure in reference order, so the denial is deterministic.
  const first = failures.sort((a, b) => a.index - b.index)[0];
  if (first) throw first.error;
  const configMaps = new Map<string, Map<string, string> | null>();
  const secrets = new Map<string, Map<string, string> | null>();
  for (const [index, { kind, name }] of lookups.entries()) {
    const keys = results[index];
    if (keys === undefined) {
      throw new GatherFactsError(kind, namespace, name, signal?.reason ?? new Error("aborted"));
    }
    (kind === "ConfigMap" ? configMaps : secrets).set(name, keys);
  }
  return { configMaps, secrets };
}
