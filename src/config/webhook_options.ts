/**
 * The webhook process's own options: one table of environment variables (name, parser, default,
 * one-line doc, and where the Helm chart sets it), parsed and validated once at start-up by
 * {@link parseWebhookOptions}. The env fallbacks of the pod settings (`src/config/settings.ts`) are
 * validated by the same call, so a bad cluster-wide default stops the process instead of being
 * reported (or denied) on every request. The docs (`docs/annotations.md`) and the chart's
 * `values.schema.json` are generated from this table by `scripts/gen_docs.ts`.
 *
 * Adding an option is one entry of {@link WEBHOOK_OPTIONS}: its field appears in
 * {@link WebhookOptions}, its row in the docs and, with `chart`, its rule in the chart schema.
 * Durations, counts and booleans are built by `durationOption`, `countOption` and `boolOption`
 * (type, default text, range check, range in the doc, chart schema); other types spell the row out.
 *
 * Discovery variables (the AWS SDK's, the Kubernetes client's) are read by the libraries that use
 * them; {@link DISCOVERY_VARIABLES} documents them.
 *
 * @module
 */

import { DEFAULT_TOKEN_AUDIENCE, ENV, IAM_ROLE_ARN_PATTERN, LIMIT_ENV } from "../constants.ts";
import { DEFAULT_LOOKUP_CONCURRENCY, DEFAULT_MAX_REFERENCED_OBJECTS } from "../pod/gather_facts.ts";
import { DEFAULT_MAX_CONTAINERS, DEFAULT_MAX_ENV_PER_CONTAINER } from "../pod/pod_limits.ts";
import { type LogLevel, parseLogLevel } from "../log.ts";
import { parseGoDuration } from "./duration.ts";
import { type ListenAddress, parseListenAddress } from "./listen_address.ts";
import { parseGoBool, parseGoInt, PULL_POLICIES } from "./parse.ts";
import { parseSettingValue, quoteValue, SETTING_REASONS } from "./resolve_config.ts";
import { SETTINGS, type SettingType } from "./settings.ts";
import { ALLOWED_ADDRESSES_OPTION, parseAllowedAddresses } from "./allowed_addresses.ts";
import {
  ACCESS_POLICY_OPTION,
  type AccessGuard,
  GUARD_PREFIX_OPTION,
  parseAccessPolicy,
  parseGuardPrefix,
  SECRET_ACCESS_POLICIES,
  type SecretAccessPolicy,
} from "../secrets/access_policy.ts";

/** A JSON Schema fragment (as the chart's values.schema.json holds it). */
export type JsonSchema = { readonly [key: string]: unknown };

/** One row of {@link WEBHOOK_OPTIONS}: an environment variable of the webhook process. */
export interface WebhookOption<T> {
  /** Variable name, e.g. `PIGGY_SHUTDOWN_DELAY`. */
  readonly env: string;
  /** Type as the docs name it, e.g. `Go duration`. */
  readonly type: string;
  /** Value when the variable is unset or empty. */
  readonly default: T;
  /** The default as the docs show it. */
  readonly defaultText: string;
  /** One line for the docs. */
  readonly doc: string;
  /**
   * Parses the (non-empty) text.
   *
   * @throws {SyntaxError|RangeError} with the reason, when the text is not valid
   */
  readonly parse: (text: string) => T;
  /**
   * Where the Helm chart sets it: the values path (e.g. `env.PIGGY_SHUTDOWN_DELAY`) and the JSON
   * Schema of that value, which refuses what `parse` refuses (so `helm upgrade` fails before the
   * rollout). A path outside `env.` is already validated by the chart's own schema.
   */
  readonly chart?: { readonly value: string; readonly schema?: JsonSchema };
}

function option<T>(row: WebhookOption<T>): WebhookOption<T> {
  return row;
}

/** Smallest certificate poll interval: polling is a file read. */
export const MIN_CERT_POLL_MS = 100;

const GO_BOOL_WORDS = [
  "1",
  "t",
  "T",
  "TRUE",
  "true",
  "True",
  "0",
  "f",
  "F",
  "FALSE",
  "false",
  "False",
];

/** JSON Schema of each value type, as the chart passes it (`toString` of a string, number or bool). */
const SCHEMAS = {
  // Helm's validator counts "1" and 1 as duplicates in one enum: numbers get their own branch.
  bool: {
    anyOf: [{ type: "boolean" }, { enum: GO_BOOL_WORDS }, { type: "integer", enum: [0, 1] }],
  },
  duration: {
    anyOf: [
      {
        type: "string",
        maxLength: 64,
        pattern: "^\\+?(0|((\\d+(\\.\\d*)?|\\.\\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)$",
      },
      { const: 0 },
    ],
  },
  int: {
    anyOf: [{ type: "string", pattern: "^(\\+?\\d+|-0+)$" }, { type: "integer", minimum: 0 }],
  },
  quantity: {
    anyOf: [
      {
        type: "string",
        pattern:
          "^\\+?(\\d+(\\.\\d*)?|\\.\\d+)([eE][+-]?\\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$",
      },
      { type: "number", minimum: 0 },
    ],
  },
  pullPolicy: { enum: [...PULL_POLICIES] },
  medium: { enum: ["", "Memory"] },
  logLevel: {
    type: "string",
    pattern: "^\\s*([Dd][Ee][Bb][Uu][Gg]|[Tt][Rr][Aa][Cc][Ee]|[Ii][Nn][Ff][Oo]|[Ww][Aa][Rr][Nn]" +
      "([Ii][Nn][Gg])?|[Ee][Rr][Rr][Oo][Rr]|[Ff][Aa][Tt][Aa][Ll]|[Pp][Aa][Nn][Ii][Cc])?\\s*$",
  },
} as const satisfies Record<string, JsonSchema>;

function parseBool(text: string): boolean {
  try {
    return parseGoBool(text);
  } catch {
    throw new SyntaxError(SETTING_REASONS.bool);
  }
}

function parseDuration(text: string): number {
  try {
    return parseGoDuration(text);
  } catch {
    throw new SyntaxError(SETTING_REASONS.duration);
  }
}

function parseLevel(text: string): LogLevel {
  const level = parseLogLevel(text);
  if (level === undefined) throw new SyntaxError("not one of debug, info, warn, error");
  return level;
}

/** JSON Schema of a bounded count (a number is range-checked; a string only by the webhook). */
function intSchema(minimum: number, maximum: number): JsonSchema {
  return {
    anyOf: [{ type: "string", pattern: "^\\+?\\d+$" }, { type: "integer", minimum, maximum }],
  };
}

/** The doc's range suffix and the parse error of a value outside `[min, max]` (texts as shown). */
function rangeTexts(min: string | undefined, max: string | undefined): [string, string] {
  if (min !== undefined && max !== undefined) {
    return [` (${min}..${max})`, `outside ${min}..${max}`];
  }
  if (min !== undefined) return [` (at least ${min})`, `below ${min}`];
  if (max !== undefined) return [` (at most ${max})`, `above ${max}`];
  return ["", ""];
}

/** What a {@link durationOption} row says; the builder derives the rest. */
interface DurationRow {
  readonly env: string;
  /** Go duration text, e.g. `5s`. */
  readonly default: string;
  /** One line for the docs; the builder appends the range. */
  readonly doc: string;
  /** Smallest value, as a Go duration. @default no bound */
  readonly min?: string;
  /** Largest value, as a Go duration. @default no bound */
  readonly max?: string;
  /** The default as the docs show it. @default the default in backquotes */
  readonly defaultText?: string;
  /** Values path in the chart, when the chart derives the value. @default `env.<env>` */
  readonly chartValue?: string;
}

/** A Go duration option in milliseconds, set through the chart's `env`, range-checked. */
function durationOption(row: DurationRow): WebhookOption<number> {
  const min = row.min === undefined ? 0 : parseGoDuration(row.min);
  const max = row.max === undefined ? Infinity : parseGoDuration(row.max);
  const [docRange, outside] = rangeTexts(row.min, row.max);
  return {
    env: row.env,
    type: "Go duration",
    default: parseGoDuration(row.default),
    defaultText: row.defaultText ?? `\`${row.default}\``,
    doc: row.doc + docRange,
    parse: (text) => {
      const ms = parseDuration(text);
      if (ms < min || ms > max) throw new RangeError(outside);
      return ms;
    },
    chart: row.chartValue === undefined
      ? { value: `env.${row.env}`, schema: SCHEMAS.duration }
      : { value: row.chartValue },
  };
}

/** What a {@link countOption} row says; the builder derives the rest. */
interface CountRow {
  readonly env: string;
  readonly default: number;
  /** One line for the docs; the builder appends the range. */
  readonly doc: string;
  readonly min: number;
  readonly max: number;
}

/** A whole-number option within `[min, max]`, set through the chart's `env`. */
function countOption(row: CountRow): WebhookOption<number> {
  const { min, max } = row;
  const [docRange, outside] = rangeTexts(String(min), String(max));
  return {
    env: row.env,
    type: "int",
    default: row.default,
    defaultText: `\`${row.default}\``,
    doc: row.doc + docRange,
    parse: (text) => {
      let value: number;
      try {
        value = parseGoInt(text);
      } catch {
        throw new SyntaxError(SETTING_REASONS.int);
      }
      if (value < min || value > max) throw new RangeError(outside);
      return value;
    },
    chart: { value: `env.${row.env}`, schema: intSchema(min, max) },
  };
}

/** What a {@link boolOption} row says; the builder derives the rest. */
interface BoolRow {
  readonly env: string;
  readonly default: boolean;
  readonly doc: string;
  /** Values path in the chart. @default `env.<env>` */
  readonly chartValue?: string;
}

/** A Go boolean option, set through the chart's `env` unless `chartValue` says otherwise. */
function boolOption(row: BoolRow): WebhookOption<boolean> {
  return {
    env: row.env,
    type: "bool",
    default: row.default,
    defaultText: `\`${row.default}\``,
    doc: row.doc,
    parse: parseBool,
    chart: row.chartValue === undefined
      ? { value: `env.${row.env}`, schema: SCHEMAS.bool }
      : { value: row.chartValue },
  };
}

/** Bounds of the listener's deadlines. */
const LISTENER_DEADLINE = { min: "100ms", max: "10m" } as const;

/** Comma-separated, entries trimmed, empty entries dropped. */
function parseList(text: string): readonly string[] {
  return text.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "");
}

/** Values of PIGGY_IMAGE_LOOKUP. */
export const IMAGE_LOOKUP_MODES = ["deny", "warn", "off"] as const;

/** What the webhook does about wrapped containers without `command`. */
export type ImageLookupMode = (typeof IMAGE_LOOKUP_MODES)[number];

function parseImageLookupMode(text: string): ImageLookupMode {
  const mode = IMAGE_LOOKUP_MODES.find((m) => m === text.trim().toLowerCase());
  if (!mode) throw new SyntaxError(`not one of ${IMAGE_LOOKUP_MODES.join(", ")}`);
  return mode;
}

/** Most sealing key files: the signing key and the one being rotated out. */
export const MAX_SEAL_KEY_FILES = 2;

function parseSealKeyFiles(text: string): readonly string[] {
  const files = parseList(text);
  if (files.length > MAX_SEAL_KEY_FILES) {
    throw new RangeError(`at most ${MAX_SEAL_KEY_FILES} files (the signing key, then the old one)`);
  }
  return files;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/;

/** An RFC 3339 time (`2026-01-31T12:00:00Z`) as epoch milliseconds. */
export function parseRfc3339(text: string): number {
  const match = RFC3339.exec(text);
  const [year, month, day, hour, minute, second] = (match?.slice(1, 7) ?? []).map(Number);
  const offsetHour = Number(match?.[9] ?? 0);
  const offsetMinute = Number(match?.[10] ?? 0);
  const valid = match !== null && year !== undefined && month !== undefined &&
    day !== undefined && hour !== undefined && minute !== undefined && second !== undefined &&
    month >= 1 && month <= 12 && day >= 1 &&
    day <= new Date(Date.UTC(year, month, 0)).getUTCDate() && hour < 24 && minute < 60 &&
    second < 60 && offsetHour < 24 && offsetMinute < 60;
  const ms = valid ? Date.parse(text.toUpperCase()) : NaN;
  if (Number.isNaN(ms)) throw new SyntaxError("not an RFC 3339 time like 2026-01-31T12:00:00Z");
  return ms;
}

function parseRoleArn(text: string): string {
  const arn = text.trim();
  if (arn.length > 2048 || !IAM_ROLE_ARN_PATTERN.test(arn)) {
    throw new SyntaxError("not an IAM role ARN like arn:aws:iam::123456789012:role/name");
  }
  return arn;
}

/** The webhook's own options, in documentation order. */
export const WEBHOOK_OPTIONS = {
  listen: option<ListenAddress>({
    env: "LISTEN_ADDRESS",
    type: "host:port",
    default: parseListenAddress(":8443"),
    defaultText: "`:8443`",
    doc: "Address to listen on (`host:port`, `:port`). Without a host: every IPv6 and IPv4 " +
      "interface (`::`), or IPv4 only (`0.0.0.0`) where IPv6 is unavailable",
    parse: parseListenAddress,
    chart: { value: "port" },
  }),
  tlsCertFile: option<string>({
    env: "TLS_CERT_FILE",
    type: "path",
    default: "",
    defaultText: "empty",
    doc: "Serving certificate (PEM). Set with TLS_PRIVATE_KEY_FILE or not at all: plain HTTP " +
      "(with a warning) when neither is set. The webhook polls both files and serves a changed " +
      "pair to new connections without a restart (open connections finish with the old one); a " +
      "key that does not match its certificate yet is logged and retried at the next poll",
    parse: (text) => text,
    chart: { value: "tls" },
  }),
  tlsPrivateKeyFile: option<string>({
    env: "TLS_PRIVATE_KEY_FILE",
    type: "path",
    default: "",
    defaultText: "empty",
    doc: "Serving private key (PEM) of TLS_CERT_FILE",
    parse: (text) => text,
    chart: { value: "tls" },
  }),
  certPollMs: durationOption({
    env: "PIGGY_CERT_POLL_INTERVAL",
    default: "10s",
    doc: "Time between two reads of TLS_CERT_FILE and TLS_PRIVATE_KEY_FILE",
    min: `${MIN_CERT_POLL_MS}ms`,
  }),
  shutdownDelayMs: durationOption({
    env: "PIGGY_SHUTDOWN_DELAY",
    default: "5s",
    doc: "On SIGTERM/SIGINT, `/readyz` fails at once and the listener " +
      "closes only after this delay, so the Service stops routing to the pod first; in-flight " +
      "requests then get up to 25 s",
  }),
  handshakeTimeoutMs: durationOption({
    env: "PIGGY_TLS_HANDSHAKE_TIMEOUT",
    default: "5s",
    doc: "A connection whose TLS handshake is not done by then is closed, also one that never " +
      "sends a byte",
    ...LISTENER_DEADLINE,
  }),
  headerTimeoutMs: durationOption({
    env: "PIGGY_HEADER_TIMEOUT",
    default: "10s",
    doc: "A request line and its headers must arrive within this (the first request from the " +
      "end of the handshake, later ones from their first byte), else 408 and close",
    ...LISTENER_DEADLINE,
  }),
  idleTimeoutMs: durationOption({
    env: "PIGGY_IDLE_TIMEOUT",
    default: "30s",
    doc: "A keep-alive connection without a next request, or a request body that stalls, for " +
      "this long is closed; no deadline runs while a request waits for its answer",
    ...LISTENER_DEADLINE,
  }),
  maxConnections: countOption({
    env: "PIGGY_MAX_CONNECTIONS",
    default: 500,
    doc: "Connections open at once; more are closed on accept, with a warning that names this " +
      "variable",
    min: 1,
    max: 100_000,
  }),
  maxHeaderBytes: countOption({
    env: "PIGGY_MAX_HEADER_BYTES",
    default: 65_536,
    doc: "Largest request line + header block in bytes; larger is answered 431",
    min: 1_024,
    max: 1_048_576,
  }),
  admissionTimeoutMs: durationOption({
    env: LIMIT_ENV.ADMISSION_TIMEOUT,
    default: "4s",
    doc:
      "Deadline of one admission (its ConfigMap and Secret reads included): past it the pod is " +
      "denied (code 504) with a message naming this variable. The chart sets it 1 s below " +
      "`mutate.timeoutSeconds`, so the API server always gets Piggy's answer",
    min: "100ms",
    max: "30s",
    chartValue: "mutate.timeoutSeconds",
  }),
  maxReferencedObjects: countOption({
    env: LIMIT_ENV.MAX_REFERENCED_OBJECTS,
    default: DEFAULT_MAX_REFERENCED_OBJECTS,
    doc: "Distinct ConfigMaps plus Secrets that the `valueFrom`/`envFrom` of one pod (one " +
      "container for `/secret`) may name; each is read once. More is refused before any read, " +
      "with the count and this variable",
    min: 1,
    max: 10_000,
  }),
  kubeLookupConcurrency: countOption({
    env: LIMIT_ENV.KUBE_LOOKUP_CONCURRENCY,
    default: DEFAULT_LOOKUP_CONCURRENCY,
    doc: "ConfigMap/Secret reads of one request in flight at once",
    min: 1,
    max: 64,
  }),
  maxContainers: countOption({
    env: LIMIT_ENV.MAX_CONTAINERS,
    default: DEFAULT_MAX_CONTAINERS,
    doc: "Containers (init, app and ephemeral together) of a pod Piggy mutates; more is denied " +
      "before any work, with the count and this variable",
    min: 1,
    max: 10_000,
  }),
  maxEnvPerContainer: countOption({
    env: LIMIT_ENV.MAX_ENV_PER_CONTAINER,
    default: DEFAULT_MAX_ENV_PER_CONTAINER,
    doc: "`env` plus `envFrom` entries of one container of a pod Piggy mutates; more is denied " +
      "before any work, with the container, the count and this variable",
    min: 1,
    max: 100_000,
  }),
  secretTimeoutMs: durationOption({
    env: LIMIT_ENV.SECRET_TIMEOUT,
    default: "7s",
    doc: "Deadline of one `/secret` request: past it the calls still running are aborted and the " +
      "answer is 504 naming the step that did not finish. Keep it below the launcher's " +
      "per-attempt timeout (PIGGY_REQUEST_TIMEOUT, 10 s) and above PIGGY_AWS_ATTEMPT_TIMEOUT and " +
      "PIGGY_KUBE_CALL_TIMEOUT (checked at start-up)",
    min: "100ms",
    max: "10m",
  }),
  awsAttemptTimeoutMs: durationOption({
    env: LIMIT_ENV.AWS_ATTEMPT_TIMEOUT,
    default: "3s",
    doc: "Timeout of one HTTP attempt to Secrets Manager, SSM or STS (up to 3 attempts per read, " +
      "all within PIGGY_SECRET_TIMEOUT)",
    min: "100ms",
    max: "10m",
  }),
  kubeCallTimeoutMs: durationOption({
    env: LIMIT_ENV.KUBE_CALL_TIMEOUT,
    default: "3s",
    doc: "Timeout of one Kubernetes API call (TokenReview, pod, ConfigMap and Secret reads), " +
      "within PIGGY_SECRET_TIMEOUT and PIGGY_ADMISSION_TIMEOUT",
    min: "100ms",
    max: "10m",
  }),
  answerAllKeys: boolOption({
    env: ENV.ANSWER_ALL_KEYS,
    default: false,
    doc: "`true` makes `/secret` answer every key of the secret, as Go Piggy did. Off, it " +
      "answers only the keys the calling container refers to (literal `piggy:` values after " +
      "`$(NAME)` expansion, and its valueFrom/envFrom references): set it if apps rely on " +
      "`piggy:` values from image `ENV`",
  }),
  allowInstanceMetadata: boolOption({
    env: "PIGGY_AWS_ALLOW_INSTANCE_METADATA",
    default: false,
    doc: "`true` lets `/secret` fall back to the node's EC2 instance role when no IRSA, EKS Pod " +
      "Identity, environment keys or shared profile is found. Off, a missing identity is an error",
  }),
  awsSessionRoleArn: option<string>({
    env: "PIGGY_AWS_SESSION_ROLE_ARN",
    type: "IAM role ARN",
    default: "",
    defaultText: "empty (off)",
    doc: "Opt-in: `/secret` reads AWS through `sts:AssumeRole` of this role, one session per " +
      "pod namespace and service account, tagged `kubernetes-namespace` and " +
      "`kubernetes-service-account` (not transitive), so IAM policies can scope by " +
      "`aws:PrincipalTag` ([iam.md](iam.md)); the webhook's own identity only assumes the role. " +
      "A refused AssumeRole answers `AwsSessionUnavailable`, the reason goes to the log",
    parse: parseRoleArn,
    chart: { value: "aws.sessionRoleArn" },
  }),
  awsSessionDurationMs: durationOption({
    env: "PIGGY_AWS_SESSION_DURATION",
    default: "15m",
    doc: "`DurationSeconds` of each PIGGY_AWS_SESSION_ROLE_ARN session (whole seconds; the " +
      "role's maximum session duration must allow it). Credentials are renewed a minute " +
      "before they expire",
    min: "15m",
    max: "12h",
  }),
  awsSessionCacheSize: countOption({
    env: "PIGGY_AWS_SESSION_CACHE_SIZE",
    default: 256,
    doc: "Most pod identities (namespace and service account) whose PIGGY_AWS_SESSION_ROLE_ARN " +
      "credentials and AWS clients are kept (about 40 KiB of heap each, " +
      "`scripts/bench/aws_sessions.ts`); the least recently used is dropped first (its next " +
      "read starts a new session)",
    min: 1,
    max: 10_000,
  }),
  caBundleFile: option<string>({
    env: "PIGGY_CA_BUNDLE_FILE",
    type: "path",
    default: "",
    defaultText: "empty",
    doc: "PEM file read at start-up and injected as `PIGGY_CA_BUNDLE` into wrapped containers " +
      "in proxy mode, so that piggy-env verifies the webhook (the chart sets `/certs/ca.crt`); " +
      "it replaces the webhook env PIGGY_CA_BUNDLE",
    parse: (text) => text,
    chart: { value: "tls" },
  }),
  secretCacheTtlMs: durationOption({
    env: "PIGGY_SECRET_CACHE_TTL",
    default: "30s",
    doc: "`/secret` keeps fetched values this long (per secret or SSM path, region, version and " +
      "the AWS identity read with), so a rotated secret reaches new pods within this time; `0` " +
      "turns the cache off. Every request is authorized before the cache is consulted, and " +
      "concurrent identical reads always share one AWS call",
  }),
  secretCacheSize: countOption({
    env: "PIGGY_SECRET_CACHE_SIZE",
    default: 1024,
    doc: "Most secrets (or SSM paths) PIGGY_SECRET_CACHE_TTL keeps; the least recently used is " +
      "dropped first",
    min: 1,
    max: 100_000,
  }),
  tokenReviewCacheTtlMs: durationOption({
    env: "PIGGY_TOKEN_REVIEW_CACHE_TTL",
    default: "10s",
    doc: "`/secret` reuses an authenticated TokenReview of the same token and audiences this " +
      "long, never past the token's `exp`; failures are never kept. A token the API server " +
      "stops accepting stays accepted here at most this long (the live pod is still read on " +
      "each request). `0` turns it off",
    max: "10s",
  }),
  podCacheTtlMs: durationOption({
    env: "PIGGY_POD_CACHE_TTL",
    default: "2s",
    doc:
      "`/secret` reuses its read of the caller's pod this long, only for a token bound to that " +
      "pod's UID; a missing pod is never kept. A pod deleted, being deleted or changed is seen " +
      "at most this late (a pod replaced under the same name at once). `0` reads it on every " +
      "request",
    max: "5s",
  }),
  tokenReviewCacheSize: countOption({
    env: "PIGGY_TOKEN_REVIEW_CACHE_SIZE",
    default: 4096,
    doc: "Most TokenReview answers PIGGY_TOKEN_REVIEW_CACHE_TTL keeps (one per launcher token), " +
      "and most pods PIGGY_POD_CACHE_TTL keeps; the least recently used is dropped first",
    min: 1,
    max: 1_000_000,
  }),
  maxTokenReviews: countOption({
    env: "PIGGY_MAX_TOKEN_REVIEWS",
    default: 64,
    doc: "Most TokenReview calls `/secret` makes to the Kubernetes API at once; a request that " +
      "needs one more is answered 503 (naming this setting) and the launcher retries. Cached " +
      "reviews and requests sharing an identical review do not count: it bounds what a flood " +
      "of made-up tokens, each an uncached review, costs the API server",
    min: 1,
    max: 10_000,
  }),
  imageLookup: option<ImageLookupMode>({
    env: "PIGGY_IMAGE_LOOKUP",
    type: "mode",
    default: "deny",
    defaultText: "`deny`",
    doc: "What happens to a wrapped container without `command`: `deny` reads its image's " +
      "Entrypoint/Cmd from the registry and denies the pod when that fails (naming container, " +
      "image and reason); `warn` admits the pod with that container unwrapped (its `piggy:` " +
      "values stay literal) and a warning; `off` reads no registry and denies such pods",
    parse: parseImageLookupMode,
    chart: { value: "env.PIGGY_IMAGE_LOOKUP", schema: { enum: [...IMAGE_LOOKUP_MODES] } },
  }),
  imageLookupTimeoutMs: durationOption({
    env: "PIGGY_IMAGE_LOOKUP_TIMEOUT",
    default: "3s",
    doc: "One deadline for every registry, pull-secret and ECR call of one admission; " +
      "PIGGY_ADMISSION_TIMEOUT, started when the request arrived, ends them too",
    min: "100ms",
    max: "25s",
  }),
  imageCacheEntries: countOption({
    env: "PIGGY_IMAGE_CACHE_SIZE",
    default: 1000,
    doc: "Image lookups kept (least recently used dropped); by digest until dropped, by tag for " +
      "PIGGY_IMAGE_CACHE_TTL, never `latest` or `imagePullPolicy: Always`. 0 turns the cache off " +
      "(simultaneous lookups of one image still share one round trip)",
    min: 0,
    max: 100_000,
  }),
  imageCacheTtlMs: durationOption({
    env: "PIGGY_IMAGE_CACHE_TTL",
    default: "5m",
    doc: "How long a lookup by tag is reused",
    max: "24h",
  }),
  registryCaBundleFile: option<string>({
    env: "PIGGY_REGISTRY_CA_BUNDLE_FILE",
    type: "path",
    default: "",
    defaultText: "empty",
    doc: "PEM file of extra CAs trusted for image registries and token services (private " +
      "registries), on top of the system roots; read at start-up",
    parse: (text) => text,
  }),
  registryAllowList: option<readonly string[]>({
    env: "PIGGY_REGISTRY_ALLOW_LIST",
    type: "list",
    default: [],
    defaultText: "empty (any)",
    doc: "Comma-separated registries (as written in image names: `ghcr.io`, " +
      "`registry.example.com:5000`, `docker.io`) the lookup may contact; others are denied",
    parse: parseList,
  }),
  imagePullSecretAnyNamespace: boolOption({
    env: "PIGGY_IMAGE_PULL_SECRET_ANY_NAMESPACE",
    default: false,
    doc: "`true` lets `image-pull-secret-namespace` name another namespace than the pod's (the " +
      "ClusterRole can read Secrets everywhere; off, the webhook reads only the pod's)",
  }),
  imageForbidSkipVerify: boolOption({
    env: "PIGGY_IMAGE_FORBID_SKIP_VERIFY",
    default: false,
    doc: "`true` denies pods that set `image-skip-verify-registry` and need a lookup, so every " +
      "registry certificate is verified cluster-wide",
  }),
  launcherImageVolume: boolOption({
    env: "PIGGY_LAUNCHER_IMAGE_VOLUME",
    default: false,
    doc: "`true` mounts the launcher read-only from an image volume of the piggy-env image " +
      "(`volumes[].image`, `subPath` of its launcher directory) instead of the install-piggy-env " +
      "init container and emptyDir. Needs Kubernetes 1.33+ (ImageVolume beta; on by default " +
      "from 1.35) and a runtime that supports it (containerd 2.1+, CRI-O)",
  }),
  registryAllowLoopback: boolOption({
    env: "PIGGY_REGISTRY_ALLOW_LOOPBACK",
    default: false,
    doc: "`true` lets the lookup connect to 127.0.0.0/8 and ::1 (tests and local development " +
      "only). Link-local and metadata addresses are refused regardless",
  }),
  allowedAddresses: option<readonly string[]>({
    env: ALLOWED_ADDRESSES_OPTION,
    type: "list",
    default: [],
    defaultText: "empty (the chart sets its Service URL)",
    doc: "Comma-separated `piggy-address` values that proxy-mode pods may use (the launcher " +
      "sends the pod's token there): `https` URLs without user info, query or fragment, " +
      "compared after normalising host, port and trailing slashes. Empty: every proxy-mode pod " +
      "is denied at admission with a message naming this variable",
    parse: parseAllowedAddresses,
    chart: { value: "mutate.allowedAddresses" },
  }),
  secretAccessPolicy: option<SecretAccessPolicy | undefined>({
    env: ACCESS_POLICY_OPTION,
    type: "policy",
    default: undefined,
    defaultText: "`namespace`",
    doc: "Which secrets `/secret` serves a pod (proxy mode): `namespace` — names under " +
      `\`<${GUARD_PREFIX_OPTION}><namespace>/\`, SSM paths under the same segments, or secrets ` +
      "whose `PIGGY_ALLOWED_SA` lists the pod's `namespace:serviceaccount`; `allowed-sa` — only " +
      "secrets that list it (PIGGY_ENFORCE_SERVICE_ACCOUNT=true is an alias); `any` — Go Piggy's " +
      "behaviour, every secret without `PIGGY_ALLOWED_SA` (migration only, warned at start-up). " +
      "A secret with `PIGGY_ALLOWED_SA` is always read only by those it lists",
    parse: parseAccessPolicy,
    chart: {
      value: `env.${ACCESS_POLICY_OPTION}`,
      schema: { enum: [...SECRET_ACCESS_POLICIES] },
    },
  }),
  secretNameGuardPrefix: option<string | undefined>({
    env: GUARD_PREFIX_OPTION,
    type: "string",
    default: undefined,
    defaultText: "PIGGY_DEFAULT_SECRET_NAME_PREFIX of the webhook, else empty",
    doc: "Operator-only prefix of each namespace's secret names under the `namespace` policy " +
      "(e.g. `piggy/` → `piggy/<namespace>/…` and `/piggy/<namespace>/…`). The pod annotation " +
      "`piggy-default-secret-name-prefix` never moves it",
    parse: parseGuardPrefix,
    chart: {
      value: `env.${GUARD_PREFIX_OPTION}`,
      schema: {
        type: "string",
        pattern: "^([A-Za-z0-9_+=.@-]+/)*[A-Za-z0-9_+=.@-]*$",
        not: { pattern: "(^|/)\\.{1,2}(/|$)" },
      },
    },
  }),
  tokenAudiences: option<readonly string[]>({
    env: ENV.TOKEN_AUDIENCES,
    type: "list",
    default: [DEFAULT_TOKEN_AUDIENCE],
    defaultText: `\`${DEFAULT_TOKEN_AUDIENCE}\``,
    doc: "Comma-separated audiences. `/mutate` mounts a projected service-account token for the " +
      "first (10 minutes, refreshed by the kubelet) into each wrapped container in proxy mode " +
      "and points `PIGGY_TOKEN_FILE` at it; `/secret` requires a token valid for one of them. A " +
      "token for the API server's audience (the default token that launchers of earlier " +
      "releases send) is accepted only under PIGGY_LEGACY_PODS, with a warning per request, and " +
      "never for a container that was given `PIGGY_TOKEN_FILE`",
    parse: parseList,
  }),
  sealKeyFiles: option<readonly string[]>({
    env: "PIGGY_SEAL_KEY_FILES",
    type: "list",
    default: [],
    defaultText: "empty (a key made for this process, with a warning)",
    doc: "Comma-separated files, each holding a sealing key (at least 32 bytes once surrounding " +
      "whitespace is dropped). `/mutate` seals each pod it wraps with the first (annotation " +
      "`piggysec.com/piggy-seal`); `/secret` accepts a seal made with any of them and refuses " +
      "a pod whose seal does not match. The first file must be readable; a later one that does " +
      "not exist is skipped (an empty rotation slot). Unset, every replica and restart makes its " +
      "own key, so pods sealed by another one are refused: set it whenever more than one " +
      "process serves (the chart does)",
    parse: parseSealKeyFiles,
    chart: { value: "seal" },
  }),
  legacyPods: boolOption({
    env: "PIGGY_LEGACY_PODS",
    default: true,
    doc: "Compatibility, going away in a future release. `true`: `/secret` serves a pod without " +
      "an admission seal (admitted by Go Piggy or an earlier release) when it was created " +
      "before PIGGY_LEGACY_PODS_CREATED_BEFORE, and accepts a token for the API server's " +
      "audience (what their launchers send) for a container without `PIGGY_TOKEN_FILE`, with a " +
      "warning per request. `false`: neither",
    chartValue: "legacyPods.enabled",
  }),
  legacyPodsCreatedBefore: option<number | undefined>({
    env: "PIGGY_LEGACY_PODS_CREATED_BEFORE",
    type: "RFC 3339 time",
    default: undefined,
    defaultText: "empty (no unsealed pod is served)",
    doc: "Only a pod whose `metadata.creationTimestamp` (which cannot be changed) is before this " +
      "time is served without a seal under PIGGY_LEGACY_PODS: a pod created later without a " +
      "seal was never admitted by this webhook (skipped, or created while it was down) and may " +
      "have gained annotations since",
    parse: parseRfc3339,
    chart: { value: "legacyPods.createdBefore" },
  }),
  debug: boolOption({
    env: "DEBUG",
    default: false,
    doc: "`true`: debug log of the webhook (unless LOG_LEVEL says otherwise). Also the fallback " +
      "of the `debug` annotation",
    chartValue: "debug",
  }),
  logLevel: option<LogLevel | undefined>({
    env: "LOG_LEVEL",
    type: "level",
    default: undefined,
    defaultText: "`info`",
    doc: "Log level of the webhook: debug, info, warn or error (also trace, warning, fatal, " +
      "panic)",
    parse: parseLevel,
    chart: { value: "env.LOG_LEVEL", schema: SCHEMAS.logLevel },
  }),
} as const;

type OptionValue<O> = O extends WebhookOption<infer T> ? T : never;

/** Parsed options of the webhook process. */
export type WebhookOptions =
  & { readonly [K in keyof typeof WEBHOOK_OPTIONS]: OptionValue<(typeof WEBHOOK_OPTIONS)[K]> }
  & {
    /**
     * Validated webhook env fallbacks of the pod settings, by env name (only the set ones), for
     * `resolveConfig`. `PIGGY_CA_BUNDLE` holds the content of PIGGY_CA_BUNDLE_FILE once
     * {@link withCaBundle} has read it.
     */
    readonly settingEnv: Readonly<Record<string, string>>;
    /**
     * The secret access policy in force: PIGGY_SECRET_ACCESS_POLICY (or its alias
     * PIGGY_ENFORCE_SERVICE_ACCOUNT=true) and the guard prefix.
     */
    readonly accessGuard: AccessGuard;
  };

/** Variables the webhook does not parse itself: the libraries that use them read them. */
export const DISCOVERY_VARIABLES: ReadonlyArray<{ name: string; doc: string }> = [
  { name: "KUBECONFIG", doc: "Kubeconfig file; without it the in-cluster service account" },
  {
    name: "KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT",
    doc: "In-cluster API server address (set by the kubelet)",
  },
  { name: "HOME", doc: "Where `~/.kube/config` is looked for outside the cluster" },
  {
    name: "AWS_*",
    doc: "AWS SDK settings of `/secret`: IRSA or EKS Pod Identity credentials (never the node's " +
      "role unless allowed above), `AWS_REGION` (also the fallback of `aws-region`), " +
      "`AWS_ENDPOINT_URL`",
  },
];

/** JSON Schema of a setting's env fallback of `type`, as the chart passes it. */
function settingSchema(type: SettingType): JsonSchema | undefined {
  return type === "string" ? undefined : SCHEMAS[type];
}

/**
 * JSON Schemas of the chart's `env` values that Piggy parses, by variable (sorted): every option
 * the chart sets through `env`, and every read setting fallback of a non-string type. The chart's
 * values.schema.json holds them under `properties.env.properties` (`deno task docs` writes them).
 */
export function chartEnvSchemas(): Record<string, JsonSchema> {
  const schemas: Record<string, JsonSchema> = {};
  for (const entry of SETTINGS) {
    const schema = settingSchema(entry.type);
    if (schema && entry.readBy.length > 0) {
      schemas[entry.env] = { description: `Fallback of ${entry.key} (${entry.type})`, ...schema };
    }
  }
  for (const row of Object.values(WEBHOOK_OPTIONS) as WebhookOption<unknown>[]) {
    if (row.chart?.schema && row.chart.value === `env.${row.env}`) {
      schemas[row.env] = { description: `${row.env} (${row.type})`, ...row.chart.schema };
    }
  }
  return Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b)));
}

function parseRow<T>(
  row: WebhookOption<T>,
  envGet: (name: string) => string | undefined,
): T {
  const text = envGet(row.env);
  if (text === undefined || text === "") return row.default;
  try {
    return row.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new SyntaxError(`Cannot use ${row.env}=${quoteValue(text)}: ${reason}`);
  }
}

function parseSettingEnv(
  envGet: (name: string) => string | undefined,
): Record<string, string> {
  const settingEnv: Record<string, string> = {};
  for (const entry of SETTINGS) {
    const text = envGet(entry.env);
    if (text === undefined || text === "") continue;
    // Unsupported settings stay as given: `resolveConfig` reports them on each request.
    if (entry.readBy.length > 0) {
      try {
        parseSettingValue(entry.type, text);
      } catch {
        throw new SyntaxError(
          `Cannot use ${entry.env}=${quoteValue(text)}: ${SETTING_REASONS[entry.type]} ` +
            `(webhook fallback of "${entry.annotation}")`,
        );
      }
    }
    settingEnv[entry.env] = text;
  }
  return settingEnv;
}

/**
 * The policy in force: PIGGY_SECRET_ACCESS_POLICY, else `allowed-sa` when the alias
 * PIGGY_ENFORCE_SERVICE_ACCOUNT is true, else `namespace`; the guard prefix, else the webhook's
 * PIGGY_DEFAULT_SECRET_NAME_PREFIX (both operator-only), else empty.
 *
 * @throws {SyntaxError} PIGGY_ENFORCE_SERVICE_ACCOUNT=true with another policy than `allowed-sa`,
 * or a webhook PIGGY_DEFAULT_SECRET_NAME_PREFIX that is not a valid guard prefix
 */
function accessGuardOf(
  policy: SecretAccessPolicy | undefined,
  prefix: string | undefined,
  settingEnv: Readonly<Record<string, string>>,
): AccessGuard {
  const enforceText = settingEnv[ENV.ENFORCE_SERVICE_ACCOUNT];
  const enforce = enforceText !== undefined && parseGoBool(enforceText);
  if (enforce && policy !== undefined && policy !== "allowed-sa") {
    throw new SyntaxError(
      `Cannot use ${ENV.ENFORCE_SERVICE_ACCOUNT}=true with ${ACCESS_POLICY_OPTION}=${policy}: ` +
        `it is an alias of ${ACCESS_POLICY_OPTION}=allowed-sa`,
    );
  }
  let guardPrefix = prefix;
  if (guardPrefix === undefined) {
    const fallback = settingEnv[DEFAULT_PREFIX_ENV] ?? "";
    try {
      guardPrefix = parseGuardPrefix(fallback);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new SyntaxError(
        `Cannot use ${DEFAULT_PREFIX_ENV}=${quoteValue(fallback)} as the secret name guard ` +
          `prefix: ${reason} (set ${GUARD_PREFIX_OPTION})`,
      );
    }
  }
  return { policy: policy ?? (enforce ? "allowed-sa" : "namespace"), prefix: guardPrefix };
}

/** Webhook env fallback of `piggy-default-secret-name-prefix`. */
const DEFAULT_PREFIX_ENV = "PIGGY_DEFAULT_SECRET_NAME_PREFIX";

/**
 * Parses and validates every option and every setting fallback from the environment. Pure: files
 * named by options are read later (see {@link withCaBundle}).
 *
 * @example
 * ```ts
 * const options = parseWebhookOptions((name) => process.env[name]);
 * ```
 *
 * @param envGet environment lookup; empty values count as unset
 * @throws {SyntaxError} naming the first variable whose value is not valid
 * @throws {RangeError} when a call timeout is not below PIGGY_SECRET_TIMEOUT
 */
export function parseWebhookOptions(
  envGet: (name: string) => string | undefined,
): WebhookOptions {
  const values: Record<string, unknown> = {};
  for (const [field, row] of Object.entries(WEBHOOK_OPTIONS)) {
    values[field] = parseRow<unknown>(row as WebhookOption<unknown>, envGet);
  }
  const settingEnv = parseSettingEnv(envGet);
  const accessGuard = accessGuardOf(
    values.secretAccessPolicy as SecretAccessPolicy | undefined,
    values.secretNameGuardPrefix as string | undefined,
    settingEnv,
  );
  const options = { ...values, settingEnv, accessGuard } as unknown as WebhookOptions;
  if ((options.tlsCertFile === "") !== (options.tlsPrivateKeyFile === "")) {
    throw new SyntaxError("TLS_CERT_FILE and TLS_PRIVATE_KEY_FILE must be set together");
  }
  // Deadlines nest: a call's timeout below the request's deadline, so the request answers why.
  for (const inner of ["awsAttemptTimeoutMs", "kubeCallTimeoutMs"] as const) {
    if (options[inner] >= options.secretTimeoutMs) {
      throw new RangeError(
        `Cannot use ${WEBHOOK_OPTIONS[inner].env} (${options[inner]} ms): it must be below ` +
          `${LIMIT_ENV.SECRET_TIMEOUT} (${options.secretTimeoutMs} ms)`,
      );
    }
  }
  return options;
}

/** The options with `caBundle` as the webhook fallback of `piggy-ca-bundle` (`PIGGY_CA_BUNDLE`). */
export function withCaBundle(options: WebhookOptions, caBundle: string): WebhookOptions {
  return { ...options, settingEnv: { ...options.settingEnv, [ENV.CA_BUNDLE]: caBundle } };
}

/** The log level the options choose: LOG_LEVEL, else debug when DEBUG is true, else info. */
export function logLevelOf(options: Pick<WebhookOptions, "logLevel" | "debug">): LogLevel {
  return options.logLevel ?? (options.debug ? "debug" : "info");
}

/** A `resolveConfig` env lookup over the validated setting fallbacks. */
export function settingLookup(
  options: Pick<WebhookOptions, "settingEnv">,
): (name: string) => string | undefined {
  return (name) => Object.hasOwn(options.settingEnv, name) ? options.settingEnv[name] : undefined;
}
