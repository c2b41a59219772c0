/**
 * Wire names shared with Go Piggy 0.7: annotation keys, injected environment variables, volume and
 * container names, and the `piggy:` reference prefix. Changing any of these breaks already-mutated
 * pods and existing manifests.
 *
 * @module
 */

/** Prefix of every Piggy pod annotation. */
export const ANNOTATION_PREFIX = "piggysec.com/";

/** Annotation written at admission: compact JSON map of container UID → command signature. */
export const PIGGY_UID_ANNOTATION = "piggysec.com/piggy-uid";

/**
 * Annotation written at admission: the HMAC of what `/secret` authorizes (see `src/pod/seal.ts`),
 * made with a key only the webhook holds.
 */
export const PIGGY_SEAL_ANNOTATION = "piggysec.com/piggy-seal";

/** Prefix of an environment value that Piggy resolves from the secret (case-sensitive). */
export const REFERENCE_PREFIX = "piggy:";

/** Name of the shared volume that holds the launcher binary. */
export const VOLUME_NAME = "piggy-env";

/** Mount path of the shared volume in every wrapped container (trailing slash as Go Piggy). */
export const MOUNT_PATH = "/piggy/";

/** Name of the init container that copies the launcher into the shared volume. */
export const INSTALLER_NAME = "install-piggy-env";

/** Directory the installer copies the launcher into. */
export const INSTALL_DIR = "/piggy";

/**
 * The launcher directory inside the piggy-env image (the Dockerfile's `/usr/local/lib/piggy-env/`),
 * relative to the image root: the `subPath` of the image-volume mount at {@link MOUNT_PATH}. Its
 * binary's ELF interpreter is `/piggy/lib/<loader>`, so it must appear at `/piggy` in the container.
 */
export const LAUNCHER_IMAGE_SUBPATH = "usr/local/lib/piggy-env";

/**
 * The launcher's peak resident memory before it execs the app, per mode, in bytes (measured with
 * scripts/bench/launcher.ts `--cold`, i.e. without a V8 code cache as a compiled launcher starts
 * in a new container, rounded up; docs/migration.md shows the same figures).
 */
export const LAUNCHER_PEAK_MEMORY: Readonly<Record<"proxy" | "standalone", number>> = {
  proxy: 70 * 1024 * 1024,
  // The light AWS client's; the SDK, loaded only when the environment needs it (see
  // docs/how-it-works.md), peaks at ~90 MiB.
  standalone: 72 * 1024 * 1024,
};

/**
 * Margin over {@link LAUNCHER_PEAK_MEMORY}: admission warns when a wrapped container's memory limit
 * is below the peak of its mode plus this.
 */
export const LAUNCHER_MEMORY_MARGIN = 32 * 1024 * 1024;

/** Absolute path of the launcher inside a wrapped container. */
export const LAUNCHER_PATH = "/piggy/piggy-env";

/** Separator between the launcher's own arguments and the wrapped command. */
export const COMMAND_SEPARATOR = "--";

/** Default audience of the projected token the mutation mounts for the launcher. */
export const DEFAULT_TOKEN_AUDIENCE = "piggysec.com";

/** Name of the projected volume holding the launcher's audience-bound token. */
export const TOKEN_VOLUME_NAME = "piggy-token";

/** Where wrapped containers mount {@link TOKEN_VOLUME_NAME} (read-only). */
export const TOKEN_MOUNT_PATH = "/var/run/secrets/piggysec.com/serviceaccount";

/** File of the token inside {@link TOKEN_MOUNT_PATH}. */
export const TOKEN_FILE_NAME = "token";

/** Service-account token read by the launcher in proxy mode unless `PIGGY_TOKEN_FILE` is set. */
export const DEFAULT_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** Default Secrets Manager version stage. */
export const DEFAULT_VERSION_STAGE = "AWSCURRENT";

/** Path of the secret proxy endpoint. */
export const SECRET_PATH = "/secret";

/** Path of the mutating admission endpoint. */
export const MUTATE_PATH = "/mutate";

/** Header carrying the pod's raw service-account token on `/secret`. */
export const TOKEN_HEADER = "X-Token";

/** Environment variables the webhook injects into wrapped containers and piggy-env reads. */
export const ENV = {
  /** Secrets Manager secret name (may be empty: the webhook then uses the default name). */
  AWS_SECRET_NAME: "PIGGY_AWS_SECRET_NAME",
  /** AWS region for both secret sources. */
  AWS_REGION: "PIGGY_AWS_REGION",
  /** SSM Parameter Store path; when non-empty SSM is used instead of Secrets Manager. */
  AWS_SSM_PARAMETER_PATH: "PIGGY_AWS_SSM_PARAMETER_PATH",
  /** Secrets Manager VersionId or VersionStage (standalone mode). */
  AWS_SECRET_VERSION: "PIGGY_AWS_SECRET_VERSION",
  /** `true` turns on debug logging in piggy-env. */
  DEBUG: "PIGGY_DEBUG",
  /** `true` makes piggy-env read AWS directly. */
  STANDALONE: "PIGGY_STANDALONE",
  /** Base URL of the webhook's secret proxy. */
  ADDRESS: "PIGGY_ADDRESS",
  /** Pod name, injected through the downward API. */
  POD_NAME: "PIGGY_POD_NAME",
  /** Per-container UID generated at admission. */
  UID: "PIGGY_UID",
  /** `true` lets the app start even when references stay unresolved. */
  IGNORE_NO_ENV: "PIGGY_IGNORE_NO_ENV",
  /** Go Piggy DNS resolver network; accepted and ignored by this launcher. */
  DNS_RESOLVER: "PIGGY_DNS_RESOLVER",
  /** Delay before the first fetch attempt (Go duration). */
  INITIAL_DELAY: "PIGGY_INITIAL_DELAY",
  /** Total number of fetch attempts. */
  NUMBER_OF_RETRY: "PIGGY_NUMBER_OF_RETRY",
  /** `true` disables TLS verification of the webhook (explicit opt-out). */
  SKIP_VERIFY_TLS: "PIGGY_SKIP_VERIFY_TLS",
  /** Path of a PEM CA bundle that verifies the webhook. */
  CA_FILE: "PIGGY_CA_FILE",
  /** PEM CA bundle text that verifies the webhook. */
  CA_BUNDLE: "PIGGY_CA_BUNDLE",
  /** Path of the service-account token sent to the webhook. */
  TOKEN_FILE: "PIGGY_TOKEN_FILE",
  /**
   * The command as admitted (before the kubelet expands `$(VAR)`) and the variables piggy-env may
   * expand in it, JSON (see `src/pod/command_template.ts`).
   */
  COMMAND_TEMPLATE: "PIGGY_COMMAND_TEMPLATE",
  /** Per-attempt timeout of a proxy request (Go duration). */
  REQUEST_TIMEOUT: "PIGGY_REQUEST_TIMEOUT",
  /** Largest AWS answer body the launcher's light AWS client reads (standalone mode), in bytes. */
  AWS_MAX_ANSWER_BYTES: "PIGGY_AWS_MAX_ANSWER_BYTES",
  /** Secret key listing the `namespace:serviceaccount` pairs allowed to read the secret. */
  ALLOWED_SA: "PIGGY_ALLOWED_SA",
  /** Webhook env: refuse secrets without `PIGGY_ALLOWED_SA`. */
  ENFORCE_SERVICE_ACCOUNT: "PIGGY_ENFORCE_SERVICE_ACCOUNT",
  /**
   * Webhook env: `true` makes `/secret` answer every key of the secret, as Go Piggy did, instead of
   * only the keys the calling container refers to (for `piggy:` values set by image `ENV`).
   */
  ANSWER_ALL_KEYS: "PIGGY_ANSWER_ALL_KEYS",
  /** Webhook env: prefix of the default secret name. */
  DEFAULT_SECRET_NAME_PREFIX: "PIGGY_DEFAULT_SECRET_NAME_PREFIX",
  /** Webhook env: suffix of the default secret name. */
  DEFAULT_SECRET_NAME_SUFFIX: "PIGGY_DEFAULT_SECRET_NAME_SUFFIX",
  /**
   * Webhook env: comma-separated audiences `/secret` passes to TokenReview and requires in
   * `status.audiences`; the first is the audience of the projected token the mutation mounts.
   */
  TOKEN_AUDIENCES: "PIGGY_TOKEN_AUDIENCES",
} as const;

/**
 * Default of `PIGGY_AWS_MAX_ANSWER_BYTES` (1 MiB): far above the largest Secrets Manager answer (a
 * secret holds at most 64 KiB, a binary one base64-encoded) and an SSM page (10 parameters of at
 * most 8 KiB each).
 */
export const DEFAULT_AWS_MAX_ANSWER_BYTES = 1024 * 1024;

/** Largest accepted `PIGGY_AWS_MAX_ANSWER_BYTES` (1 GiB). */
export const MAX_AWS_MAX_ANSWER_BYTES = 1024 * 1024 * 1024;

/**
 * Keys that never leave the webhook in a `/secret` answer and never reach the application's
 * environment (Go Piggy's reserved list plus `PIGGY_AWS_SECRET_VERSION`).
 */
export const RESERVED_KEYS: ReadonlySet<string> = new Set([
  ENV.AWS_SECRET_NAME,
  ENV.AWS_SSM_PARAMETER_PATH,
  ENV.AWS_REGION,
  ENV.AWS_SECRET_VERSION,
  ENV.POD_NAME,
  ENV.DEBUG,
  ENV.STANDALONE,
  ENV.ADDRESS,
  ENV.ALLOWED_SA,
  ENV.SKIP_VERIFY_TLS,
  ENV.IGNORE_NO_ENV,
  ENV.DEFAULT_SECRET_NAME_PREFIX,
  ENV.DEFAULT_SECRET_NAME_SUFFIX,
  ENV.DNS_RESOLVER,
  ENV.INITIAL_DELAY,
  ENV.NUMBER_OF_RETRY,
]);

/**
 * Launcher configuration removed from the application's environment on top of
 * {@link RESERVED_KEYS} (Go Piggy leaked `PIGGY_UID` to the app).
 */
export const LAUNCHER_ONLY_KEYS: ReadonlySet<string> = new Set([
  ENV.UID,
  ENV.CA_FILE,
  ENV.CA_BUNDLE,
  ENV.TOKEN_FILE,
  ENV.REQUEST_TIMEOUT,
  ENV.AWS_MAX_ANSWER_BYTES,
  ENV.COMMAND_TEMPLATE,
]);

/**
 * Webhook env: the limits of one request (each a row of the webhook options table). Messages of
 * a request that hits one name it.
 */
export const LIMIT_ENV = {
  /** Distinct ConfigMaps and Secrets one pod (or one container, for `/secret`) may refer to. */
  MAX_REFERENCED_OBJECTS: "PIGGY_MAX_REFERENCED_OBJECTS",
  /** Kubernetes GETs of one request in flight at once. */
  KUBE_LOOKUP_CONCURRENCY: "PIGGY_KUBE_LOOKUP_CONCURRENCY",
  /** Deadline of one admission. */
  ADMISSION_TIMEOUT: "PIGGY_ADMISSION_TIMEOUT",
  /** Containers, init containers and ephemeral containers of one pod. */
  MAX_CONTAINERS: "PIGGY_MAX_CONTAINERS",
  /** `env` plus `envFrom` entries of one container. */
  MAX_ENV_PER_CONTAINER: "PIGGY_MAX_ENV_PER_CONTAINER",
  /** Deadline of one `/secret` request: below the launcher's per-attempt timeout. */
  SECRET_TIMEOUT: "PIGGY_SECRET_TIMEOUT",
  /** Timeout of one HTTP attempt to AWS: below PIGGY_SECRET_TIMEOUT. */
  AWS_ATTEMPT_TIMEOUT: "PIGGY_AWS_ATTEMPT_TIMEOUT",
  /** Timeout of one Kubernetes API call: below PIGGY_SECRET_TIMEOUT. */
  KUBE_CALL_TIMEOUT: "PIGGY_KUBE_CALL_TIMEOUT",
} as const;

/**
 * Shape of an IAM role ARN (any partition, 12-digit account, optional path, role name), as
 * `PIGGY_AWS_SESSION_ROLE_ARN` must be written.
 */
export const IAM_ROLE_ARN_PATTERN: RegExp =
  /^arn:aws(?:-[a-z]+)*:iam::\d{12}:role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;
