/**
 * The one table of Piggy settings: every `piggysec.com/` annotation of Go Piggy 0.7 plus ours, with
 * its type, default, webhook env fallback and which step reads it. `resolveConfig` resolves it
 * (annotation > webhook env > default), the docs are generated from it and the Helm chart maps its
 * env values to it.
 *
 * Where a setting lives:
 * - Pod annotation `piggysec.com/<key>` (the user), unless `envOnly`.
 * - Webhook env `<KEY>` (upper case, `-` → `_`): the operator's cluster-wide default.
 * - `envOnly` settings are the operator's alone. Their annotation is ignored (with a warning):
 *   `piggy-enforce-service-account` (as Go Piggy) and `piggy-ca-bundle` (user annotations must not
 *   change which CA the launcher trusts).
 *
 * Not in the table: `piggysec.com/piggy-uid` and `piggysec.com/piggy-seal` (written by `/mutate`,
 * read by `/secret`; see `PIGGY_UID_ANNOTATION` and `PIGGY_SEAL_ANNOTATION`) and the webhook's own process settings (`LOG_LEVEL`, `TLS_*`, ...).
 *
 * Differences from Go Piggy, on purpose:
 * - The launcher volume is a disk-backed emptyDir with a `sizeLimit` by default
 *   (`piggy-env-volume-medium: ""`, `piggy-env-volume-size-limit: 256Mi`); Go used a tmpfs
 *   (`medium: Memory`) without a limit. Our launcher is a `deno compile` binary of roughly
 *   100–150 MB, which would be charged to the pod's memory in tmpfs. `Memory` stays available.
 * - `aws-secret-version` is injected as `PIGGY_AWS_SECRET_VERSION` in standalone mode (Go never
 *   propagated it); it is read by `/secret` in proxy mode as before.
 * - `image-skip-verify-registry` defaults to `false` (Go: `true`); a pod's opt-in is refused when
 *   the webhook sets PIGGY_IMAGE_FORBID_SKIP_VERIFY, and ECR tokens are never sent without it.
 * - `piggy-skip-verify-tls` was documented but never read by Go; it is still not honoured: a
 *   warning points to `PIGGY_CA_BUNDLE` instead.
 *
 * @module
 */

import { ANNOTATION_PREFIX, ENV } from "../constants.ts";

/** Resolved settings. Field names are the camelCase of the setting keys. */
export interface PiggyConfig {
  /** `aws-secret-name`: Secrets Manager secret name or ARN; a mutation trigger. */
  awsSecretName: string;
  /** `aws-ssm-parameter-path`: SSM path read instead of Secrets Manager; a mutation trigger. */
  awsSsmParameterPath: string;
  /** `aws-region`: AWS region; empty means the SDK default chain. */
  awsRegion: string;
  /** `aws-secret-version`: Secrets Manager version stage or id; empty means `AWSCURRENT`. */
  awsSecretVersion: string;
  /** `piggy-address`: base URL of the webhook's `/secret` proxy; a mutation trigger. */
  piggyAddress: string;
  /** `standalone`: piggy-env reads AWS with the pod's own identity instead of the proxy. */
  standalone: boolean;
  /** `piggy-env-image`: image of the installer init container. */
  piggyEnvImage: string;
  /** `piggy-env-image-pull-policy`: pull policy of the installer. */
  piggyEnvImagePullPolicy: string;
  /** `piggy-env-resource-cpu-request`: installer CPU request (quantity). */
  piggyEnvResourceCpuRequest: string;
  /** `piggy-env-resource-memory-request`: installer memory request (quantity). */
  piggyEnvResourceMemoryRequest: string;
  /** `piggy-env-resource-cpu-limit`: installer CPU limit (quantity). */
  piggyEnvResourceCpuLimit: string;
  /** `piggy-env-resource-memory-limit`: installer memory limit (quantity). */
  piggyEnvResourceMemoryLimit: string;
  /** `piggy-env-volume-medium`: `""` (node disk) or `Memory` (tmpfs) for the launcher volume. */
  piggyEnvVolumeMedium: string;
  /** `piggy-env-volume-size-limit`: `sizeLimit` of the launcher volume (quantity). */
  piggyEnvVolumeSizeLimit: string;
  /** `piggy-psp-allow-privilege-escalation`: installer `allowPrivilegeEscalation`. */
  piggyPspAllowPrivilegeEscalation: boolean;
  /** `piggy-ignore-no-env`: start the app even when references stay unresolved. */
  piggyIgnoreNoEnv: boolean;
  /** `piggy-enforce-integrity`: `/secret` checks the command signature. */
  piggyEnforceIntegrity: boolean;
  /** `debug`: debug logging in piggy-env. */
  debug: boolean;
  /** `image-pull-secret`: extra pull secret for the image registry lookup. */
  imagePullSecret: string;
  /** `image-pull-secret-namespace`: namespace of pull secrets; empty means the pod's. */
  imagePullSecretNamespace: string;
  /** `image-skip-verify-registry`: skip TLS verification of the image lookup's registry. */
  imageSkipVerifyRegistry: boolean;
  /** `image-platform`: platforms of the image lookup (`linux/arm64`); empty: from the pod. */
  imagePlatform: string;
  /** `piggy-dns-resolver`: Go launcher DNS resolver network, passed through. */
  piggyDnsResolver: string;
  /** `piggy-initial-delay`: Go duration text before the first fetch; `""` when unset. */
  piggyInitialDelay: string;
  /** `piggy-number-of-retry`: total fetch attempts; 0 means the launcher default. */
  piggyNumberOfRetry: number;
  /** `piggy-default-secret-name-prefix`: prefix of the default secret name. */
  piggyDefaultSecretNamePrefix: string;
  /** `piggy-default-secret-name-suffix`: suffix of the default secret name. */
  piggyDefaultSecretNameSuffix: string;
  /** `piggy-enforce-service-account`: refuse secrets without `PIGGY_ALLOWED_SA` (env only). */
  piggyEnforceServiceAccount: boolean;
  /** `piggy-skip-verify-tls`: documented by Go Piggy, never honoured (always `false`). */
  piggySkipVerifyTls: boolean;
  /** `piggy-ca-bundle`: PEM bundle injected for verifying the webhook (env only). */
  piggyCaBundle: string;
}

/** How a setting's text is parsed. */
export type SettingType =
  | "string"
  | "bool"
  | "int"
  | "duration"
  | "quantity"
  | "pullPolicy"
  | "medium";

/** Which step reads a setting: `/mutate`, `/secret` or piggy-env (through injected env). */
export type SettingReader = "mutate" | "secret" | "launcher";

/** One row of {@link SETTINGS}. */
export interface SettingDefinition {
  /** Key without the `piggysec.com/` prefix, e.g. `aws-secret-name`. */
  readonly key: string;
  /** Full annotation name, e.g. `piggysec.com/aws-secret-name`. */
  readonly annotation: string;
  /** Webhook env fallback: the key upper-cased with `-` → `_`, e.g. `AWS_SECRET_NAME`. */
  readonly env: string;
  /** Field of {@link PiggyConfig}: the camelCase of the key. */
  readonly field: keyof PiggyConfig;
  /** Parser. */
  readonly type: SettingType;
  /** Value when neither the annotation nor the env sets it. */
  readonly default: string | boolean | number;
  /** One line for the docs. */
  readonly doc: string;
  /** Steps that read it (empty: recognised but not honoured). */
  readonly readBy: readonly SettingReader[];
  /** Only the webhook env sets it; a pod annotation is ignored with a warning. */
  readonly envOnly?: boolean;
  /** Env var injected into wrapped containers, when any. */
  readonly injectedAs?: string;
  /**
   * A bad value denies the pod instead of falling back, because the fallback would weaken
   * security or silently change which identity reads the secret.
   */
  readonly denyOnBadValue?: boolean;
  /**
   * Accepted and validated, but no code reads the value yet: why. The docs say so; remove it when
   * a feature starts reading the setting.
   */
  readonly unused?: string;
}

/** Derives the webhook env name of a key: upper case, `-` → `_`. */
export function envNameOf(key: string): string {
  return key.toUpperCase().replaceAll("-", "_");
}

/** Derives the {@link PiggyConfig} field of a key: camelCase. */
export function fieldNameOf(key: string): string {
  return key.replace(/-([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
}

type Extra = Pick<SettingDefinition, "envOnly" | "injectedAs" | "denyOnBadValue" | "unused">;

function setting(
  key: string,
  type: SettingType,
  defaultValue: string | boolean | number,
  readBy: readonly SettingReader[],
  doc: string,
  extra: Extra = {},
): SettingDefinition {
  return {
    key,
    annotation: `${ANNOTATION_PREFIX}${key}`,
    env: envNameOf(key),
    field: fieldNameOf(key) as keyof PiggyConfig,
    type,
    default: defaultValue,
    doc,
    readBy,
    ...extra,
  };
}

/** Every setting, in documentation order. */
export const SETTINGS: readonly SettingDefinition[] = [
  setting(
    "aws-secret-name",
    "string",
    "",
    ["mutate", "secret", "launcher"],
    "Secrets Manager secret name or ARN; triggers the mutation. /secret defaults it to " +
      "<prefix><namespace>/<service account><suffix>",
    { injectedAs: ENV.AWS_SECRET_NAME },
  ),
  setting(
    "aws-ssm-parameter-path",
    "string",
    "",
    ["mutate", "secret", "launcher"],
    "SSM Parameter Store path read instead of Secrets Manager when set; triggers the mutation",
    { injectedAs: ENV.AWS_SSM_PARAMETER_PATH },
  ),
  setting(
    "aws-region",
    "string",
    "",
    ["mutate", "secret", "launcher"],
    "AWS region of the secret; empty uses the AWS SDK default chain",
    { injectedAs: ENV.AWS_REGION },
  ),
  setting(
    "aws-secret-version",
    "string",
    "",
    ["mutate", "secret", "launcher"],
    "Secrets Manager version stage or version id; empty means AWSCURRENT. Injected in " +
      "standalone mode only",
    { injectedAs: ENV.AWS_SECRET_VERSION },
  ),
  setting(
    "piggy-address",
    "string",
    "",
    ["mutate", "launcher"],
    "Base URL of the webhook's /secret proxy; triggers the mutation; required unless standalone",
    { injectedAs: ENV.ADDRESS },
  ),
  setting(
    "standalone",
    "bool",
    false,
    ["mutate", "launcher"],
    "piggy-env reads AWS with the pod's own identity instead of calling the webhook",
    { injectedAs: ENV.STANDALONE, denyOnBadValue: true },
  ),
  setting(
    "piggy-env-image",
    "string",
    "",
    ["mutate"],
    "Image of the install-piggy-env init container (the chart sets it); required",
  ),
  setting(
    "piggy-env-image-pull-policy",
    "pullPolicy",
    "Always",
    ["mutate"],
    "Pull policy of the install-piggy-env init container (the chart sets IfNotPresent)",
  ),
  setting(
    "piggy-env-resource-cpu-request",
    "quantity",
    "50m",
    ["mutate"],
    "CPU request of the install-piggy-env init container; above the CPU limit it is lowered to " +
      "the limit, with a warning",
  ),
  setting(
    "piggy-env-resource-memory-request",
    "quantity",
    "128Mi",
    ["mutate"],
    "Memory request of the install-piggy-env init container (Go Piggy: 64Mi; the Deno launcher " +
      "needs about 90 MB to run); above the memory limit it is lowered to the limit, with a warning",
  ),
  setting(
    "piggy-env-resource-cpu-limit",
    "quantity",
    "200m",
    ["mutate"],
    "CPU limit of the install-piggy-env init container",
  ),
  setting(
    "piggy-env-resource-memory-limit",
    "quantity",
    "256Mi",
    ["mutate"],
    "Memory limit of the install-piggy-env init container (Go Piggy: 64Mi, which the Deno " +
      "launcher exceeds)",
  ),
  setting(
    "piggy-env-volume-medium",
    "medium",
    "",
    ["mutate"],
    'Medium of the piggy-env emptyDir: "" (node disk, default) or "Memory" (tmpfs, counted ' +
      "against the installer's memory limit; Go Piggy's choice)",
  ),
  setting(
    "piggy-env-volume-size-limit",
    "quantity",
    "256Mi",
    ["mutate"],
    "sizeLimit of the piggy-env emptyDir; must hold the launcher binary (about 100-150 MB)",
  ),
  setting(
    "piggy-psp-allow-privilege-escalation",
    "bool",
    false,
    ["mutate"],
    "allowPrivilegeEscalation of the install-piggy-env init container",
  ),
  setting(
    "piggy-ignore-no-env",
    "bool",
    false,
    ["mutate", "launcher"],
    "Start the application even when some piggy: references stay unresolved",
    { injectedAs: ENV.IGNORE_NO_ENV },
  ),
  setting(
    "piggy-enforce-integrity",
    "bool",
    true,
    ["secret"],
    "/secret answers only the command signed at admission (SHA-256 of the container command)",
    { denyOnBadValue: true },
  ),
  setting(
    "debug",
    "bool",
    false,
    ["mutate", "launcher"],
    "Debug logging in piggy-env (the webhook env DEBUG also switches the webhook's own debug log)",
    { injectedAs: ENV.DEBUG },
  ),
  setting(
    "image-pull-secret",
    "string",
    "",
    ["mutate"],
    "Extra image pull secret for the image lookup of containers without `command`, tried after " +
      "the pod's imagePullSecrets and before the service account's",
  ),
  setting(
    "image-pull-secret-namespace",
    "string",
    "",
    ["mutate"],
    "Namespace of `image-pull-secret`; empty means the pod's. Another namespace is refused " +
      "unless the webhook sets PIGGY_IMAGE_PULL_SECRET_ANY_NAMESPACE",
  ),
  setting(
    "image-skip-verify-registry",
    "bool",
    false,
    ["mutate"],
    "Skip TLS verification of the registry during the image lookup (Go defaulted to true). " +
      "Pull-secret credentials then travel unverified and ECR images fail; the webhook option " +
      "PIGGY_IMAGE_FORBID_SKIP_VERIFY refuses it. Prefer PIGGY_REGISTRY_CA_BUNDLE_FILE",
    { denyOnBadValue: true },
  ),
  setting(
    "image-platform",
    "string",
    "",
    ["mutate"],
    "Platforms (`os/arch[/variant]`, comma-separated) whose image config the lookup reads; " +
      "empty: the pod's kubernetes.io/os and kubernetes.io/arch nodeSelector or required node " +
      "affinity, else linux/amd64",
  ),
  setting(
    "piggy-dns-resolver",
    "string",
    "",
    ["mutate", "launcher"],
    "DNS resolver network of the Go launcher; passed through",
    { injectedAs: ENV.DNS_RESOLVER },
  ),
  setting(
    "piggy-initial-delay",
    "duration",
    "",
    ["mutate", "launcher"],
    "Delay before piggy-env's first fetch, as a Go duration (e.g. 5s)",
    { injectedAs: ENV.INITIAL_DELAY },
  ),
  setting(
    "piggy-number-of-retry",
    "int",
    0,
    ["mutate", "launcher"],
    "Number of fetch attempts of piggy-env; 0 keeps the launcher default",
    { injectedAs: ENV.NUMBER_OF_RETRY },
  ),
  setting(
    "piggy-default-secret-name-prefix",
    "string",
    "",
    ["secret"],
    "Prefix of the default secret name",
  ),
  setting(
    "piggy-default-secret-name-suffix",
    "string",
    "",
    ["secret"],
    "Suffix of the default secret name",
  ),
  setting(
    "piggy-enforce-service-account",
    "bool",
    false,
    ["secret"],
    "Refuse secrets without a PIGGY_ALLOWED_SA entry (operator only): an alias of " +
      "PIGGY_SECRET_ACCESS_POLICY=allowed-sa",
    { envOnly: true, denyOnBadValue: true },
  ),
  setting(
    "piggy-skip-verify-tls",
    "bool",
    false,
    [],
    "Documented by Go Piggy but never honoured; not supported: set PIGGY_CA_BUNDLE on the webhook",
  ),
  setting(
    "piggy-ca-bundle",
    "string",
    "",
    ["mutate", "launcher"],
    "PEM CA bundle injected into wrapped containers in proxy mode to verify the webhook " +
      "(operator only)",
    { envOnly: true, injectedAs: ENV.CA_BUNDLE },
  ),
];

/** {@link SETTINGS} by key (without prefix). */
export const SETTINGS_BY_KEY: ReadonlyMap<string, SettingDefinition> = new Map(
  SETTINGS.map((entry) => [entry.key, entry]),
);
