/**
 * The registry side of gathering facts: for each container Piggy will wrap that has no `command`,
 * the Entrypoint and Cmd of its image, so the mutation can wrap and sign what the kubelet would
 * run.
 *
 * - Platforms: the override annotation (`image-platform`, e.g. `linux/arm64`), else the pod's
 *   `kubernetes.io/os` / `kubernetes.io/arch` nodeSelector, else the `In` values of those keys in
 *   required node affinity (when every term constrains them), else linux/amd64. When the pod may
 *   run on several platforms their Entrypoint/Cmd must agree.
 * - Credentials, in order: the pod's `imagePullSecrets`, the `image-pull-secret` setting (in
 *   `image-pull-secret-namespace`, which must be the pod's own namespace unless the webhook allows
 *   others), then the service account's `imagePullSecrets`; `dockerconfigjson` and `dockercfg`
 *   entries matching the image's registry; then, for ECR hosts only, an ECR token. Secrets that do
 *   not exist are skipped (as the kubelet does); other read failures fail the lookup.
 * - One deadline (the caller's signal) covers every Kubernetes read, ECR call and registry
 *   round trip of the admission.
 *
 * @module
 */

import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import type { KubeClient } from "../k8s/client.ts";
import { describeError } from "../log.ts";
import type { RegistryCredential } from "../registry/auth.ts";
import type { ImageCommand, LookupOptions, Platform } from "../registry/client.ts";
import {
  credentialsFor,
  type DockerConfigEntry,
  parsePullSecret,
} from "../registry/docker_config.ts";
import { type EcrCredentialSource, ecrRegistryOf } from "../registry/ecr.ts";
import { ImageLookupError } from "../registry/errors.ts";
import { type ImageReference, parseImageReference } from "../registry/reference.ts";

/** Reads image configurations (the registry client). */
export interface ImageConfigSource {
  lookup(image: string, options?: LookupOptions): Promise<ImageCommand>;
}

/** What {@link lookUpImageCommands} needs. */
export interface ImageLookupDeps {
  kube: KubeClient;
  registry: ImageConfigSource;
  /** ECR credentials with the webhook's AWS identity; absent: ECR hosts get only pull secrets. */
  ecr?: EcrCredentialSource;
  /** Pull secrets may be read from another namespace than the pod's. @default false */
  allowOtherNamespaces?: boolean;
}

/** Pod settings the lookup reads. */
export interface ImageLookupSettings {
  imagePullSecret: string;
  imagePullSecretNamespace: string;
  imageSkipVerifyRegistry: boolean;
  /** `os/arch[/variant]` list, comma-separated; empty: from the pod's scheduling constraints. */
  imagePlatform: string;
}

/** One container whose image could not be read. */
export interface ImageLookupFailure {
  container: string;
  image: string;
  reason: string;
}

/** Looked-up commands by container name, and the failures. */
export interface ImageLookupResult {
  images: Map<string, ImageCommand>;
  failures: ImageLookupFailure[];
}

const OS_LABEL = "kubernetes.io/os";
const ARCH_LABEL = "kubernetes.io/arch";

/**
 * Parses `os/arch[/variant]` entries, comma-separated.
 *
 * @throws {SyntaxError} naming the bad entry
 */
export function parsePlatforms(text: string): Platform[] {
  return text.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "").map(
    (entry) => {
      const parts = entry.split("/");
      if (
        parts.length < 2 || parts.length > 3 ||
        !parts.every((part) => /^[a-z0-9][a-z0-9._-]*$/.test(part))
      ) {
        throw new SyntaxError(`"${entry}" is not a platform such as linux/amd64 or linux/arm64/v8`);
      }
      const [os = "", architecture = "", variant] = parts;
      return variant === undefined ? { os, architecture } : { os, architecture, variant };
    },
  );
}

/** The values a label may take under required node affinity; `undefined` when unconstrained. */
function affinityValues(pod: Pod, label: string): string[] | undefined {
  const terms = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
    ?.nodeSelectorTerms ?? [];
  if (terms.length === 0) return undefined;
  const values = new Set<string>();
  for (const term of terms) {
    const expression = (term?.matchExpressions ?? []).find((e) =>
      e?.key === label && e.operator === "In"
    );
    if (!expression) return undefined; // this term lets the pod run anywhere for that label
    for (const value of expression.values ?? []) values.add(value);
  }
  return values.size > 0 ? [...values] : undefined;
}

/**
 * The platforms the pod may run on (see the module doc); linux/amd64 when nothing says otherwise.
 *
 * @throws {SyntaxError} when the override is not a platform list
 */
export function podPlatforms(pod: Pod, override: string): Platform[] {
  if (override.trim() !== "") return parsePlatforms(override);
  const selector = pod.spec?.nodeSelector ?? {};
  const oses = selector[OS_LABEL]
    ? [selector[OS_LABEL]]
    : affinityValues(pod, OS_LABEL) ?? ["linux"];
  const arches = selector[ARCH_LABEL]
    ? [selector[ARCH_LABEL]]
    : affinityValues(pod, ARCH_LABEL) ?? ["amd64"];
  return oses.flatMap((os) => arches.map((architecture) => ({ os, architecture })));
}

/** Reads the pull secrets of the pod in order; NotFound ones are skipped. */
async function pullSecretEntries(
  pod: Pod,
  namespace: string,
  settings: ImageLookupSettings,
  deps: ImageLookupDeps,
  signal: AbortSignal,
): Promise<DockerConfigEntry[]> {
  const wanted: Array<{ namespace: string; name: string }> = [];
  for (const ref of pod.spec?.imagePullSecrets ?? []) {
    if (ref?.name) wanted.push({ namespace, name: ref.name });
  }
  if (settings.imagePullSecret !== "") {
    const secretNamespace = settings.imagePullSecretNamespace || namespace;
    if (secretNamespace !== namespace && !deps.allowOtherNamespaces) {
      throw new ImageLookupError(
        "unauthorized",
        `image-pull-secret-namespace "${secretNamespace}" is not the pod's namespace ` +
          `"${namespace}" (the webhook option PIGGY_IMAGE_PULL_SECRET_ANY_NAMESPACE allows it)`,
      );
    }
    wanted.push({ namespace: secretNamespace, name: settings.imagePullSecret });
  }
  const serviceAccountName = pod.spec?.serviceAccountName || "default";
  let serviceAccount;
  try {
    serviceAccount = await deps.kube.getServiceAccount(namespace, serviceAccountName, { signal });
  } catch (error) {
    throw new ImageLookupError(
      "registry_error",
      `cannot read service account "${serviceAccountName}": ${describeError(error)}`,
      { cause: error },
    );
  }
  for (const ref of serviceAccount?.imagePullSecrets ?? []) {
    if (ref?.name) wanted.push({ namespace, name: ref.name });
  }
  const unique = wanted.filter((item, index) =>
    wanted.findIndex((other) => other.namespace === item.namespace && other.name === item.name) ===
      index
  );
  const secrets = await Promise.all(unique.map(async ({ namespace: ns, name }) => {
    try {
      return await deps.kube.getSecret(ns, name, { signal });
    } catch (error) {
      throw new ImageLookupError(
        "registry_error",
        `cannot read pull secret "${name}" in namespace "${ns}": ${describeError(error)}`,
        { cause: error },
      );
    }
  }));
  return secrets.flatMap((secret) =>
    secret ? parsePullSecret(secret.type, secret.data as Record<string, string> | undefined) : []
  );
}

/** The containers the lookup is for: they will be wrapped and have no `command`. */
export function containersNeedingImage(containers: readonly Container[]): Container[] {
  return containers.filter((c) => !(c.command?.length) && typeof c.image === "string");
}

/**
 * Looks up the Entrypoint/Cmd of each container's image. Never throws for a lookup failure: each
 * is returned with the container, the image and the reason.
 *
 * @param pod the pod under admission
 * @param namespace the request namespace
 * @param containers containers to look up (wrapped, without `command`)
 * @param settings the pod's resolved image settings
 * @param deps Kubernetes, registry and ECR access
 * @param signal the admission's lookup deadline
 */
export async function lookUpImageCommands(
  pod: Pod,
  namespace: string,
  containers: readonly Container[],
  settings: ImageLookupSettings,
  deps: ImageLookupDeps,
  signal: AbortSignal,
): Promise<ImageLookupResult> {
  const result: ImageLookupResult = { images: new Map(), failures: [] };
  if (containers.length === 0) return result;
  const failAll = (reason: string) => {
    for (const c of containers) {
      result.failures.push({ container: c.name, image: c.image ?? "", reason });
    }
    return result;
  };
  let platforms: Platform[];
  try {
    platforms = podPlatforms(pod, settings.imagePlatform);
  } catch (error) {
    return failAll(`image-platform: ${(error as Error).message}`);
  }
  let entries: DockerConfigEntry[];
  try {
    entries = await pullSecretEntries(pod, namespace, settings, deps, signal);
  } catch (error) {
    return failAll(error instanceof Error ? error.message : String(error));
  }
  const pullAlwaysOf = (c: Container) => c.imagePullPolicy === "Always";
  await Promise.all(containers.map(async (container) => {
    const image = container.image ?? "";
    try {
      let reference: ImageReference;
      try {
        reference = parseImageReference(image);
      } catch (error) {
        throw new ImageLookupError("invalid_reference", (error as Error).message);
      }
      const credentials: RegistryCredential[] = credentialsFor(entries, reference);
      const ecr = ecrRegistryOf(reference.registry);
      if (ecr && deps.ecr && settings.imageSkipVerifyRegistry) {
        throw new ImageLookupError(
          "forbidden_host",
          "ECR credentials are never sent without TLS verification: remove " +
            "image-skip-verify-registry",
        );
      }
      if (ecr && deps.ecr) {
        credentials.push(await deps.ecr.credential(ecr.registryId, ecr.region, signal));
      }
      const command = await deps.registry.lookup(image, {
        platforms,
        credentials,
        skipVerify: settings.imageSkipVerifyRegistry,
        pullAlways: pullAlwaysOf(container),
        signal,
      });
      result.images.set(container.name, command);
    } catch (error) {
      result.failures.push({
        container: container.name,
        image,
        reason: error instanceof Error ? error.message : String(error),
      });
    }
  }));
  // Report in pod order.
  const order = new Map(containers.map((c, i) => [c.name, i]));
  result.failures.sort((a, b) => (order.get(a.container) ?? 0) - (order.get(b.container) ?? 0));
  return result;
}
