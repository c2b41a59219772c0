/**
 * The Pod mutation (Go Piggy §1.7–1.8, with its bugs fixed), as a pure async function of the pod,
 * the resolved settings, the facts looked up before it and a UID generator. No network, no env,
 * no clock; async only because signatures use Web Crypto.
 *
 * For each init container (as received) and app container that qualifies (see
 * `container_refs.ts`): env injection (upsert by name, §1.8.1 order), the `piggy-env` mount, the
 * command rewrite `["/piggy/piggy-env"]` + `["--", ...command, ...args]`, and an entry
 * `uid → signature` in the `piggysec.com/piggy-uid` annotation. Then the installer init container
 * (index 0) and the volume.
 *
 * Differences from Go Piggy:
 * - Idempotent: an already-wrapped container keeps its UID when its `PIGGY_UID` is in the current
 *   annotation map (or, without `PIGGY_UID`, e.g. in standalone mode, when an unclaimed map entry
 *   has the same signature); its signature is recomputed from the args after `--`. A second pass
 *   over the output changes nothing.
 * - Nothing at all (no installer, volume or annotation) when no container qualifies.
 * - Already-wrapped containers always qualify: they run the launcher, which needs its env.
 * - `metadata.annotations` is created when absent.
 * - Denials instead of broken pods: proxy mode without an address, an empty installer image, a
 *   container without `command` (until the registry lookup exists).
 * - The installer satisfies Pod Security `restricted` (non-root, no privilege escalation unless
 *   asked, all capabilities dropped, RuntimeDefault seccomp, read-only root filesystem).
 * - The volume is a disk-backed emptyDir with a sizeLimit by default (see `settings.ts`).
 * - `PIGGY_AWS_SECRET_VERSION` is injected in standalone mode when set; `PIGGY_CA_BUNDLE` in proxy
 *   mode when the operator configured one.
 * - Mirror pods and Windows pods are skipped with a warning; ephemeral containers are untouched.
 *
 * @module
 */

import type { Container, EnvVar, Pod, Volume } from "kubernetes-types/core/v1.d.ts";
import {
  ANNOTATION_PREFIX,
  COMMAND_SEPARATOR,
  ENV,
  INSTALL_DIR,
  INSTALLER_NAME,
  LAUNCHER_PATH,
  MOUNT_PATH,
  PIGGY_UID_ANNOTATION,
  VOLUME_NAME,
} from "../constants.ts";
import { parseQuantity } from "../config/parse.ts";
import type { PiggyConfig } from "../config/settings.ts";
import { isWrapped, type PodFacts, qualifies } from "./container_refs.ts";
import { commandSignature } from "./signature.ts";

/** Annotation the kubelet puts on mirror pods of static pods. */
export const MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror";

/** Why the pod is refused. */
export interface MutationDenial {
  /** HTTP-like status code for the AdmissionReview `status.code`. */
  code: number;
  /** Message shown to the user by kubectl. */
  message: string;
}

/** What {@link mutatePod} returns. */
export interface MutationResult {
  /** The mutated copy (an unchanged copy when nothing applies or on denial). */
  pod: Pod;
  /** True when `pod` differs from the input. */
  changed: boolean;
  /** `uid → signature` of every wrapped container: the `piggysec.com/piggy-uid` content. */
  signatures: Record<string, string>;
  /** Names of the wrapped containers, init containers first. */
  wrapped: string[];
  /** Why nothing was done (set when no container is wrapped). */
  skipReason?: string;
  /** Set when the pod must be refused; `pod` is then the unchanged copy. */
  denial?: MutationDenial;
  /** Non-fatal remarks for the AdmissionReview `warnings`. */
  warnings: string[];
}

/** Generates a per-container UID (32 lowercase hex chars in production). */
export type UidGenerator = () => string;

/** True when a setting that triggers the mutation is set (Go §1.7). */
export function isTriggered(config: PiggyConfig): boolean {
  return config.awsSecretName !== "" || config.awsSsmParameterPath !== "" ||
    config.piggyAddress !== "";
}

interface Target {
  container: Container;
  init: boolean;
  /** Original vector to sign, without launcher and `--`. */
  entry: string[];
  signature: string;
  uid?: string;
}

function jsonCopy(pod: Pod): Pod {
  return JSON.parse(JSON.stringify(pod)) as Pod;
}

function skipped(pod: Pod, reason: string, warnings: string[] = []): MutationResult {
  return { pod, changed: false, signatures: {}, wrapped: [], skipReason: reason, warnings };
}

function denied(pod: Pod, message: string, warnings: string[]): MutationResult {
  return {
    pod,
    changed: false,
    signatures: {},
    wrapped: [],
    denial: { code: 400, message },
    warnings,
  };
}

/** Parses the current `piggy-uid` map; anything malformed counts as empty (it is rewritten). */
function parseUidMap(text: string | undefined): Map<string, string> {
  const map = new Map<string, string>();
  if (!text) return map;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      for (const [uid, signature] of Object.entries(parsed)) {
        if (typeof signature === "string") map.set(uid, signature);
      }
    }
  } catch {
    // Malformed: rewritten below.
  }
  return map;
}

/** Go `json.Marshal` of a string map: keys sorted, no spaces. */
function formatUidMap(signatures: Record<string, string>): string {
  const sorted: Record<string, string> = {};
  for (const uid of Object.keys(signatures).sort()) sorted[uid] = signatures[uid] ?? "";
  return JSON.stringify(sorted);
}

/** Structural equality of JSON values; key order and `undefined` members do not matter. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, i) => sameJson(item, b[i]));
  }
  if (!a || !b || typeof a !== "object" || typeof b !== "object" || Array.isArray(b)) return false;
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left).filter((key) => left[key] !== undefined);
  if (keys.length !== Object.keys(right).filter((key) => right[key] !== undefined).length) {
    return false;
  }
  return keys.every((key) => Object.hasOwn(right, key) && sameJson(left[key], right[key]));
}

function upsertEnv(container: Container, wanted: EnvVar[]): void {
  const env = container.env ?? [];
  for (const entry of wanted) {
    const index = env.findIndex((existing) => existing?.name === entry.name);
    if (index === -1) env.push(entry);
    else if (!sameJson(env[index], entry)) env[index] = entry;
  }
  container.env = env;
}

function injectedEnv(config: PiggyConfig, uid: string): EnvVar[] {
  const env: EnvVar[] = [
    { name: ENV.AWS_SECRET_NAME, value: config.awsSecretName },
    { name: ENV.AWS_REGION, value: config.awsRegion },
    { name: ENV.AWS_SSM_PARAMETER_PATH, value: config.awsSsmParameterPath },
  ];
  if (config.debug) env.push({ name: ENV.DEBUG, value: "true" });
  if (config.standalone) {
    env.push({ name: ENV.STANDALONE, value: "true" });
    if (config.awsSecretVersion !== "") {
      env.push({ name: ENV.AWS_SECRET_VERSION, value: config.awsSecretVersion });
    }
  } else {
    env.push({ name: ENV.ADDRESS, value: config.piggyAddress });
    // apiVersion as the API server defaults it, so a re-invocation finds the stored form unchanged.
    env.push({
      name: ENV.POD_NAME,
      valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } },
    });
    env.push({ name: ENV.UID, value: uid });
    if (config.piggyCaBundle !== "") env.push({ name: ENV.CA_BUNDLE, value: config.piggyCaBundle });
  }
  if (config.piggyIgnoreNoEnv) env.push({ name: ENV.IGNORE_NO_ENV, value: "true" });
  if (config.piggyDnsResolver !== "") {
    env.push({ name: ENV.DNS_RESOLVER, value: config.piggyDnsResolver });
  }
  if (config.piggyInitialDelay !== "") {
    env.push({ name: ENV.INITIAL_DELAY, value: config.piggyInitialDelay });
  }
  if (config.piggyNumberOfRetry > 0) {
    env.push({ name: ENV.NUMBER_OF_RETRY, value: String(config.piggyNumberOfRetry) });
  }
  return env;
}

function installerContainer(pod: Pod, config: PiggyConfig): Container {
  const runAsUser = pod.spec?.securityContext?.runAsUser;
  const securityContext: NonNullable<Container["securityContext"]> = {
    allowPrivilegeEscalation: config.piggyPspAllowPrivilegeEscalation,
    capabilities: { drop: ["ALL"] },
    readOnlyRootFilesystem: true,
    seccompProfile: { type: "RuntimeDefault" },
  };
  // A pod that runs as root (runAsUser 0) would make runAsNonRoot fail the installer.
  if (runAsUser !== 0) securityContext.runAsNonRoot = true;
  if (typeof runAsUser === "number") securityContext.runAsUser = runAsUser;
  return {
    name: INSTALLER_NAME,
    image: config.piggyEnvImage,
    imagePullPolicy: config.piggyEnvImagePullPolicy,
    args: ["install", INSTALL_DIR],
    volumeMounts: [{ name: VOLUME_NAME, mountPath: MOUNT_PATH }],
    securityContext,
    resources: {
      limits: { cpu: config.piggyEnvResourceCpuLimit, memory: config.piggyEnvResourceMemoryLimit },
      requests: {
        cpu: config.piggyEnvResourceCpuRequest,
        memory: config.piggyEnvResourceMemoryRequest,
      },
    },
  };
}

function launcherVolume(config: PiggyConfig): Volume {
  return {
    name: VOLUME_NAME,
    emptyDir: config.piggyEnvVolumeMedium === ""
      ? { sizeLimit: config.piggyEnvVolumeSizeLimit }
      : { medium: config.piggyEnvVolumeMedium, sizeLimit: config.piggyEnvVolumeSizeLimit },
  };
}

function originalEntry(container: Container): string[] {
  const args = container.args ?? [];
  if (!isWrapped(container)) return [...(container.command ?? []), ...args];
  // What the launcher signs: its argv after the first `--` (launcher flags may come before it).
  // Without a `--`, Go Piggy signed the args as they are.
  const argv = [...(container.command ?? []).slice(1), ...args];
  const separator = argv.indexOf(COMMAND_SEPARATOR);
  return separator === -1 ? [...args] : argv.slice(separator + 1);
}

function configWarnings(config: PiggyConfig): string[] {
  const warnings: string[] = [];
  if (config.piggyEnvVolumeMedium === "Memory") {
    try {
      if (
        parseQuantity(config.piggyEnvResourceMemoryLimit) <=
          parseQuantity(config.piggyEnvVolumeSizeLimit)
      ) {
        warnings.push(
          "Volume medium Memory: the launcher copy counts against the installer memory limit " +
            `"${config.piggyEnvResourceMemoryLimit}"; raise ${ANNOTATION_PREFIX}` +
            "piggy-env-resource-memory-limit",
        );
      }
    } catch {
      // resolveConfig already validated both quantities.
    }
  }
  return warnings;
}

/**
 * Mutates a copy of the pod so that every qualifying container starts through piggy-env.
 *
 * @param pod the pod under admission (not modified)
 * @param config settings resolved for this pod
 * @param facts ConfigMap/Secret reference keys from `gatherFacts`
 * @param ids per-container UID generator, called once per newly wrapped container
 * @returns the mutated copy, whether it changed, the signatures, and a denial or warnings
 */
export async function mutatePod(
  pod: Pod,
  config: PiggyConfig,
  facts: PodFacts,
  ids: UidGenerator,
): Promise<MutationResult> {
  // A JSON copy: no shared arrays between containers, whatever the caller built.
  const copy = jsonCopy(pod);
  if (!isTriggered(config)) {
    return skipped(copy, "no aws-secret-name, aws-ssm-parameter-path or piggy-address is set");
  }
  const podLabel = copy.metadata?.name || copy.metadata?.generateName || "";
  if (copy.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined) {
    return skipped(copy, "mirror pod", [
      "Piggy does not mutate mirror pods of static pods: secrets are not injected",
    ]);
  }
  if (copy.spec?.os?.name === "windows") {
    return skipped(copy, "windows pod", [
      "Piggy does not support Windows pods: secrets are not injected",
    ]);
  }

  const spec = copy.spec ?? { containers: [] };
  const initContainers = spec.initContainers ?? [];
  const targets: Target[] = [];
  for (const [init, list] of [[true, initContainers], [false, spec.containers ?? []]] as const) {
    for (const container of list) {
      if (!container || !qualifies(container, facts)) continue;
      targets.push({ container, init, entry: [], signature: "" });
    }
  }
  if (targets.length === 0) {
    return skipped(copy, "no container references a piggy: value");
  }

  const warnings = configWarnings(config);
  const problems: string[] = [];
  if (!config.standalone && config.piggyAddress === "") {
    problems.push(
      `Annotation "${ANNOTATION_PREFIX}piggy-address" (or the webhook env PIGGY_ADDRESS) must be ` +
        `set in proxy mode, or set "${ANNOTATION_PREFIX}standalone" to "true"`,
    );
  }
  const hasInstaller = initContainers.some((container) => container?.name === INSTALLER_NAME);
  if (!hasInstaller && config.piggyEnvImage === "") {
    problems.push(
      `Annotation "${ANNOTATION_PREFIX}piggy-env-image" (or the webhook env PIGGY_ENV_IMAGE) ` +
        "must name the piggy-env image",
    );
  }
  const noCommand = targets
    .filter(({ container }) => !isWrapped(container) && !(container.command?.length))
    .map(({ container }) => `"${container.name}"`);
  if (noCommand.length > 0) {
    problems.push(
      `Container ${noCommand.join(", ")} has no "command": set "command" (and "args") to the ` +
        "program to start, so Piggy can start it through piggy-env",
    );
  }
  if (problems.length > 0) {
    return denied(
      jsonCopy(pod),
      `Cannot inject secrets into pod "${podLabel}": ${problems.join("; ")}`,
      warnings,
    );
  }

  for (const target of targets) {
    target.entry = originalEntry(target.container);
    target.signature = await commandSignature(target.entry);
    if (
      config.piggyEnforceIntegrity &&
      target.entry.some((arg) => /(^|[^$])\$\([A-Za-z_][A-Za-z0-9_]*\)/.test(arg))
    ) {
      warnings.push(
        `Container "${target.container.name}": $(VAR) in command or args is expanded by the ` +
          "kubelet, so the signature check will fail",
      );
    }
  }

  // UIDs: keep those of already-wrapped containers that are still in the annotation map.
  const current = parseUidMap(copy.metadata?.annotations?.[PIGGY_UID_ANNOTATION]);
  const claimed = new Set<string>();
  for (const target of targets) {
    if (!isWrapped(target.container)) continue;
    const envUid = target.container.env?.find((entry) => entry?.name === ENV.UID)?.value;
    if (envUid && current.has(envUid) && !claimed.has(envUid)) {
      target.uid = envUid;
      claimed.add(envUid);
    }
  }
  for (const target of targets) {
    if (target.uid !== undefined || !isWrapped(target.container)) continue;
    for (const [uid, signature] of current) {
      if (!claimed.has(uid) && signature === target.signature) {
        target.uid = uid;
        claimed.add(uid);
        break;
      }
    }
  }

  const signatures: Record<string, string> = {};
  for (const target of targets) {
    const uid = target.uid ?? ids();
    const { container } = target;
    upsertEnv(container, injectedEnv(config, uid));
    const mounts = container.volumeMounts ?? [];
    if (!mounts.some((mount) => mount?.name === VOLUME_NAME)) {
      mounts.push({ name: VOLUME_NAME, mountPath: MOUNT_PATH });
    }
    container.volumeMounts = mounts;
    if (!isWrapped(container)) {
      container.command = [LAUNCHER_PATH];
      container.args = [COMMAND_SEPARATOR, ...target.entry];
    }
    signatures[uid] = target.signature;
  }

  // Installer first, so that wrapped init containers (native sidecars included) find the launcher.
  const installerIndex = initContainers.findIndex((container) =>
    container?.name === INSTALLER_NAME
  );
  if (installerIndex === -1) {
    initContainers.unshift(installerContainer(copy, config));
  } else if (installerIndex > 0) {
    const firstWrapped = initContainers.findIndex((container) =>
      targets.some((target) => target.container === container)
    );
    if (firstWrapped !== -1 && firstWrapped < installerIndex) {
      const [installer] = initContainers.splice(installerIndex, 1);
      if (installer) initContainers.unshift(installer);
    }
  }
  spec.initContainers = initContainers;

  const volumes = spec.volumes ?? [];
  if (!volumes.some((volume) => volume?.name === VOLUME_NAME)) volumes.push(launcherVolume(config));
  spec.volumes = volumes;
  copy.spec = spec;

  const metadata = copy.metadata ?? {};
  const annotations = metadata.annotations ?? {};
  const formatted = formatUidMap(signatures);
  if (annotations[PIGGY_UID_ANNOTATION] !== formatted) {
    annotations[PIGGY_UID_ANNOTATION] = formatted;
  }
  metadata.annotations = annotations;
  copy.metadata = metadata;

  return {
    pod: copy,
    changed: !sameJson(copy, pod),
    signatures,
    wrapped: targets.map((target) => target.container.name),
    warnings,
  };
}
