/**
 * The Pod mutation (Go Piggy's, with its bugs fixed), as a pure function of the pod, the resolved
 * settings, the facts looked up before it and a UID generator. No network, no env, no clock.
 *
 * For each init container (as received) and app container that qualifies (see
 * `container_refs.ts`): env injection (upsert by name, in Go Piggy's order), the `piggy-env` mount, the
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
 *   container without `command` whose image was not looked up (the lookup runs before, in
 *   `gatherFacts`' sibling `image_lookup.ts`; its Entrypoint/Cmd arrive in `facts.images` and are
 *   combined with `args` by Kubernetes' rules, then wrapped and signed like an explicit command).
 * - The installer satisfies Pod Security `restricted` (non-root, no privilege escalation unless
 *   asked, all capabilities dropped, RuntimeDefault seccomp, read-only root filesystem).
 * - The volume is a disk-backed emptyDir with a sizeLimit by default (see `settings.ts`).
 * - Opt-in (`PIGGY_LAUNCHER_IMAGE_VOLUME`): no installer; the volume is an image volume of the
 *   piggy-env image, mounted read-only with `subPath` set to the image's launcher directory, so
 *   `/piggy/piggy-env` and its `/piggy/lib/` loader are the image's own files. Image volumes are
 *   not mounted `noexec` (KEP-4639 dropped that; runtimes never applied it).
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
  LAUNCHER_IMAGE_SUBPATH,
  LAUNCHER_MEMORY_MARGIN,
  LAUNCHER_PATH,
  LAUNCHER_PEAK_MEMORY,
  MOUNT_PATH,
  PIGGY_UID_ANNOTATION,
  VOLUME_NAME,
} from "../constants.ts";
import { parseQuantity } from "../config/parse.ts";
import type { PiggyConfig } from "../config/settings.ts";
import { type ImageEntry, isWrapped, type PodFacts, qualifies } from "../pod/container_refs.ts";
import { formatUidAnnotation, parseUidAnnotation } from "../pod/piggy_uid.ts";
import { commandSignature } from "../pod/signature.ts";
import { writableContainer, writablePod } from "../pod/pod_copy.ts";

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
  /**
   * The mutated copy (the input's content when nothing applies or on denial). It shares every part
   * the mutation did not touch with the input: treat both as read-only.
   */
  pod: Pod;
  /** True when `pod` differs from the input. */
  changed: boolean;
  /** `uid → signature` of every wrapped container: the `piggysec.com/piggy-uid` content. */
  signatures: ReadonlyMap<string, string>;
  /** The `piggysec.com/piggy-uid` text written from `signatures` (set when a container is wrapped). */
  uidAnnotation?: string;
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

/** Webhook-wide choices of {@link mutatePod} (webhook options, not per-pod settings). */
export interface MutationOptions {
  /**
   * Mount the launcher from an image volume of the piggy-env image instead of installing it with
   * an init container into an emptyDir (PIGGY_LAUNCHER_IMAGE_VOLUME). @default false
   */
  imageVolume?: boolean;
}

/**
 * An image volume source (`volumes[].image`, Kubernetes 1.31+ alpha, 1.33+ beta): the
 * kubernetes-types version in use predates the field.
 */
export interface ImageVolumeSource {
  /** The image reference, as a container's `image`. */
  reference: string;
  /** `Always`, `Never` or `IfNotPresent`. */
  pullPolicy?: string;
}

/** A Pod volume, image volumes included. */
export type PodVolume = Volume & { image?: ImageVolumeSource };

/** True when a setting that triggers the mutation is set (as in Go Piggy). */
export function isTriggered(config: PiggyConfig): boolean {
  return config.awsSecretName !== "" || config.awsSsmParameterPath !== "" ||
    config.piggyAddress !== "";
}

interface Target {
  container: Container;
  init: boolean;
  /**
   * What goes after `--` in the spec, and what is signed: the container's command and args as
   * written, with `$` of image-provided parts escaped.
   */
  entry: string[];
  /** The image's Entrypoint/Cmd, for a container without `command`. */
  image?: ImageEntry;
  signature: string;
  uid?: string;
}

function skipped(pod: Pod, reason: string, warnings: string[] = []): MutationResult {
  return { pod, changed: false, signatures: new Map(), wrapped: [], skipReason: reason, warnings };
}

function denied(pod: Pod, message: string, warnings: string[]): MutationResult {
  return {
    pod,
    changed: false,
    signatures: new Map(),
    wrapped: [],
    denial: { code: 400, message },
    warnings,
  };
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
    resources: installerResources(config).resources,
  };
}

/** True when quantity `a` is above `b` (beyond float rounding: "1100m" is not above "1.1"). */
function quantityAbove(a: string, b: string): boolean {
  try {
    const [x, y] = [parseQuantity(a), parseQuantity(b)];
    return x > y && x - y > Math.abs(y) * 1e-12;
  } catch {
    // resolveConfig already validated both quantities.
    return false;
  }
}

/**
 * The installer's resources: a request above its limit (e.g. a Go-era memory limit of 64Mi with
 * the 128Mi default request) is lowered to the limit, with a warning that says so, since the API
 * server refuses a container whose request exceeds its limit.
 */
export function installerResources(
  config: PiggyConfig,
): { resources: NonNullable<Container["resources"]>; warnings: string[] } {
  const warnings: string[] = [];
  const fit = (resource: "cpu" | "memory", request: string, limit: string): string => {
    if (!quantityAbove(request, limit)) return request;
    warnings.push(
      `Installer ${resource} request "${request}" is above its limit "${limit}" ` +
        `(${ANNOTATION_PREFIX}piggy-env-resource-${resource}-request and -limit): the request ` +
        `is lowered to "${limit}"`,
    );
    return limit;
  };
  const cpu = fit("cpu", config.piggyEnvResourceCpuRequest, config.piggyEnvResourceCpuLimit);
  const memory = fit(
    "memory",
    config.piggyEnvResourceMemoryRequest,
    config.piggyEnvResourceMemoryLimit,
  );
  return {
    resources: {
      limits: { cpu: config.piggyEnvResourceCpuLimit, memory: config.piggyEnvResourceMemoryLimit },
      requests: { cpu, memory },
    },
    warnings,
  };
}

function launcherVolume(config: PiggyConfig, options: MutationOptions): PodVolume {
  if (options.imageVolume) {
    return {
      name: VOLUME_NAME,
      image: { reference: config.piggyEnvImage, pullPolicy: config.piggyEnvImagePullPolicy },
    };
  }
  return {
    name: VOLUME_NAME,
    emptyDir: config.piggyEnvVolumeMedium === ""
      ? { sizeLimit: config.piggyEnvVolumeSizeLimit }
      : { medium: config.piggyEnvVolumeMedium, sizeLimit: config.piggyEnvVolumeSizeLimit },
  };
}

/** `$` → `$$`: the kubelet turns it back into `$` and expands no `$(VAR)` in image text. */
function escapeKubelet(text: string): string {
  return text.replaceAll("$", "$$$$");
}

/**
 * The command after `--` in the wrapped spec, which is also what admission signs: the container's
 * own `command` + `args`, or for a container without `command` the image's Entrypoint followed by
 * the container's `args` when set, else the image's Cmd (Kubernetes' rules). Image-provided parts
 * are escaped (`$` → `$$`), as the kubelet never expands `$(VAR)` in them; the launcher proves its
 * argv is this command expanded (`command_templates.ts`). Signing the spec form, not the argv the
 * kubelet will run, makes a second admission of the wrapped pod, which only sees the spec form,
 * compute the same signature.
 */
function originalEntry(container: Container, image: ImageEntry | undefined): string[] {
  const args = container.args ?? [];
  if (!isWrapped(container)) {
    if (!(container.command?.length) && image) {
      return [
        ...image.entrypoint.map(escapeKubelet),
        ...(args.length > 0 ? args : image.cmd.map(escapeKubelet)),
      ];
    }
    return [...(container.command ?? []), ...args];
  }
  // What the launcher signs: its argv after the first `--` (launcher flags may come before it).
  // Without a `--`, Go Piggy signed the args as they are.
  const argv = [...(container.command ?? []).slice(1), ...args];
  const separator = argv.indexOf(COMMAND_SEPARATOR);
  return separator === -1 ? [...args] : argv.slice(separator + 1);
}

function configWarnings(config: PiggyConfig, options: MutationOptions): string[] {
  // The installer settings do not apply to an image volume.
  if (options.imageVolume) return [];
  const warnings: string[] = [...installerResources(config).warnings];
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
 * Warns about wrapped containers whose memory limit is below the launcher's peak in the pod's mode
 * plus a margin: the launcher runs in the container's cgroup before it execs the app.
 */
function memoryWarnings(targets: readonly Target[], config: PiggyConfig): string[] {
  const mode = config.standalone ? "standalone" : "proxy";
  const needed = LAUNCHER_PEAK_MEMORY[mode] + LAUNCHER_MEMORY_MARGIN;
  const mebibytes = (bytes: number) => `${Math.ceil(bytes / (1024 * 1024))}Mi`;
  const warnings: string[] = [];
  for (const { container } of targets) {
    const limit = container.resources?.limits?.memory;
    if (limit === undefined) continue;
    let bytes: number;
    try {
      bytes = parseQuantity(String(limit));
    } catch {
      continue; // the API server validates quantities
    }
    if (bytes < needed) {
      warnings.push(
        `Container "${container.name}": memory limit "${limit}" is below ${mebibytes(needed)}, ` +
          `piggy-env's peak in ${mode} mode (${mebibytes(LAUNCHER_PEAK_MEMORY[mode])}) plus a ` +
          `margin of ${mebibytes(LAUNCHER_MEMORY_MARGIN)}: the container may be OOM-killed ` +
          "before the application starts",
      );
    }
  }
  return warnings;
}

/** Why the pod is left alone before its containers are looked at, with the warnings to give. */
function podSkip(
  pod: Pod,
  config: PiggyConfig,
): { reason: string; warnings: string[] } | undefined {
  if (!isTriggered(config)) {
    return {
      reason: "no aws-secret-name, aws-ssm-parameter-path or piggy-address is set",
      warnings: [],
    };
  }
  if (pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined) {
    return {
      reason: "mirror pod",
      warnings: ["Piggy does not mutate mirror pods of static pods: secrets are not injected"],
    };
  }
  if (pod.spec?.os?.name === "windows") {
    return {
      reason: "windows pod",
      warnings: ["Piggy does not support Windows pods: secrets are not injected"],
    };
  }
  return undefined;
}

/**
 * The qualifying containers, init containers first, in pod order. Each is replaced in its (copied)
 * list by a container of its own ({@link writableContainer}), which the target holds.
 */
function selectTargets(initContainers: Container[], containers: Container[], facts: PodFacts) {
  const targets: Target[] = [];
  for (const [init, list] of [[true, initContainers], [false, containers]] as const) {
    list.forEach((container, index) => {
      if (!container || !qualifies(container, facts)) return;
      if (facts.unwrapped?.has(container.name) && !isWrapped(container)) return;
      const image = container.command?.length ? undefined : facts.images?.get(container.name);
      const own = writableContainer(container);
      list[index] = own;
      targets.push({
        container: own,
        init,
        entry: [],
        signature: "",
        ...(image ? { image } : {}),
      });
    });
  }
  return targets;
}

/** What stops the mutation: no address in proxy mode, no installer image, no command. */
function mutationProblems(
  config: PiggyConfig,
  initContainers: readonly Container[],
  targets: readonly Target[],
  options: MutationOptions,
): string[] {
  const problems: string[] = [];
  if (!config.standalone && config.piggyAddress === "") {
    problems.push(
      `Annotation "${ANNOTATION_PREFIX}piggy-address" (or the webhook env PIGGY_ADDRESS) must be ` +
        `set in proxy mode, or set "${ANNOTATION_PREFIX}standalone" to "true"`,
    );
  }
  // An image volume always names the image; an installer already in the pod brings its own.
  const hasInstaller = !options.imageVolume &&
    initContainers.some((container) => container?.name === INSTALLER_NAME);
  if (!hasInstaller && config.piggyEnvImage === "") {
    problems.push(
      `Annotation "${ANNOTATION_PREFIX}piggy-env-image" (or the webhook env PIGGY_ENV_IMAGE) ` +
        "must name the piggy-env image",
    );
  }
  const noCommand = targets
    .filter(({ container, image }) =>
      !isWrapped(container) && !(container.command?.length) && !image
    )
    .map(({ container }) => `"${container.name}"`);
  const emptyImage = targets
    .filter(({ container, image }) =>
      !isWrapped(container) && image && image.entrypoint.length === 0 &&
      image.cmd.length === 0 && !(container.args?.length)
    )
    .map(({ container }) => `"${container.name}" (image "${container.image ?? ""}")`);
  if (emptyImage.length > 0) {
    problems.push(
      `Container ${emptyImage.join(", ")} has no "command" and its image sets neither ` +
        'Entrypoint nor Cmd: set "command" to the program to start',
    );
  }
  if (noCommand.length > 0) {
    problems.push(
      `Container ${noCommand.join(", ")} has no "command": set "command" (and "args") to the ` +
        "program to start, so Piggy can start it through piggy-env",
    );
  }
  return problems;
}

/**
 * Signs each target's command as the wrapped spec holds it; `$(VAR)` and `$$` in it are handled by
 * the command template (`command_templates.ts`).
 */
function signTargets(targets: Target[]): void {
  for (const target of targets) {
    target.entry = originalEntry(target.container, target.image);
    target.signature = commandSignature(target.entry);
  }
}

/**
 * Keeps the UIDs of already-wrapped containers that are still in the annotation map: by their
 * `PIGGY_UID`, or else (standalone mode has none) by an unclaimed entry with the same signature.
 */
function keepUids(targets: Target[], current: ReadonlyMap<string, string>): void {
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
}

/** Injects env, mounts the launcher and rewrites the command of each target (in the copy). */
function wrapTargets(
  targets: readonly Target[],
  config: PiggyConfig,
  ids: UidGenerator,
  options: MutationOptions,
): Map<string, string> {
  // A map, not an object keyed by the random UIDs: each new key set would cost V8 hidden classes.
  const signatures = new Map<string, string>();
  for (const target of targets) {
    const uid = target.uid ?? ids();
    const { container } = target;
    upsertEnv(container, injectedEnv(config, uid));
    // Read-only: only the installer writes the launcher volume. A mount that is already there (a
    // pod wrapped by Go Piggy or by hand) is kept as it is, so such pods stay unchanged.
    const mounts = container.volumeMounts ?? [];
    if (!mounts.some((mount) => mount?.name === VOLUME_NAME)) {
      mounts.push(
        options.imageVolume
          ? {
            name: VOLUME_NAME,
            mountPath: MOUNT_PATH,
            readOnly: true,
            subPath: LAUNCHER_IMAGE_SUBPATH,
          }
          : { name: VOLUME_NAME, mountPath: MOUNT_PATH, readOnly: true },
      );
    }
    container.volumeMounts = mounts;
    if (!isWrapped(container)) {
      container.command = [LAUNCHER_PATH];
      container.args = [COMMAND_SEPARATOR, ...target.entry];
    }
    signatures.set(uid, target.signature);
  }
  return signatures;
}

/**
 * Puts the installer first, so that wrapped init containers (native sidecars included) find the
 * launcher; an existing installer moves only when a wrapped init container runs before it.
 */
function placeInstaller(
  initContainers: Container[],
  targets: readonly Target[],
  pod: Pod,
  config: PiggyConfig,
): void {
  const installerIndex = initContainers.findIndex((container) =>
    container?.name === INSTALLER_NAME
  );
  if (installerIndex === -1) {
    initContainers.unshift(installerContainer(pod, config));
  } else if (installerIndex > 0) {
    const firstWrapped = initContainers.findIndex((container) =>
      targets.some((target) => target.container === container)
    );
    if (firstWrapped !== -1 && firstWrapped < installerIndex) {
      const [installer] = initContainers.splice(installerIndex, 1);
      if (installer) initContainers.unshift(installer);
    }
  }
}

/** Adds the launcher volume and writes the `piggy-uid` annotation (when it differs); its text. */
function addVolumeAndAnnotation(
  copy: Pod,
  spec: NonNullable<Pod["spec"]>,
  config: PiggyConfig,
  signatures: ReadonlyMap<string, string>,
  options: MutationOptions,
): string {
  const volumes: PodVolume[] = spec.volumes ?? [];
  if (!volumes.some((volume) => volume?.name === VOLUME_NAME)) {
    volumes.push(launcherVolume(config, options));
  }
  spec.volumes = volumes;
  copy.spec = spec;
  const metadata = copy.metadata ?? {};
  const annotations = metadata.annotations ?? {};
  const formatted = formatUidAnnotation(signatures);
  if (annotations[PIGGY_UID_ANNOTATION] !== formatted) {
    annotations[PIGGY_UID_ANNOTATION] = formatted;
  }
  metadata.annotations = annotations;
  copy.metadata = metadata;
  return formatted;
}

/**
 * Mutates a copy of the pod so that every qualifying container starts through piggy-env.
 *
 * @param pod the pod under admission (not modified)
 * @param config settings resolved for this pod
 * @param facts ConfigMap/Secret reference keys from `gatherFacts`
 * @param ids per-container UID generator, called once per newly wrapped container
 * @param options webhook-wide choices (the image volume)
 * @returns the mutated copy, whether it changed, the signatures, and a denial or warnings
 */
export function mutatePod(
  pod: Pod,
  config: PiggyConfig,
  facts: PodFacts,
  ids: UidGenerator,
  options: MutationOptions = {},
): MutationResult {
  const copy = writablePod(pod);
  const skip = podSkip(copy, config);
  if (skip) return skipped(copy, skip.reason, skip.warnings);

  const spec = copy.spec ?? { containers: [] };
  const initContainers = spec.initContainers ?? [];
  const targets = selectTargets(initContainers, spec.containers ?? [], facts);
  if (targets.length === 0) {
    return skipped(copy, "no container references a piggy: value");
  }

  const warnings = configWarnings(config, options);
  const problems = mutationProblems(config, initContainers, targets, options);
  if (problems.length > 0) {
    const podLabel = copy.metadata?.name || copy.metadata?.generateName || "";
    return denied(
      writablePod(pod),
      `Cannot inject secrets into pod "${podLabel}": ${problems.join("; ")}`,
      warnings,
    );
  }

  signTargets(targets);
  warnings.push(...memoryWarnings(targets, config));
  // An unusable annotation counts as empty: it is rewritten below.
  keepUids(
    targets,
    parseUidAnnotation(copy.metadata?.annotations?.[PIGGY_UID_ANNOTATION]).signatures,
  );
  const signatures = wrapTargets(targets, config, ids, options);
  if (!options.imageVolume) placeInstaller(initContainers, targets, copy, config);
  // No empty list where the pod had none (the image volume adds no init container).
  if (initContainers.length > 0 || spec.initContainers) spec.initContainers = initContainers;
  const uidAnnotation = addVolumeAndAnnotation(copy, spec, config, signatures, options);

  return {
    pod: copy,
    changed: !sameJson(copy, pod),
    signatures,
    uidAnnotation,
    wrapped: targets.map((target) => target.container.name),
    warnings,
  };
}
