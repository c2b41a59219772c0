/**
 * The webhook's Prometheus metrics (text format 0.0.4): requests per endpoint, admissions by
 * outcome, `/secret` by status and reason, AWS and Kubernetes API calls by API and result, the
 * secret cache, `process_*` and build information.
 *
 * Every label takes its value from a closed list (anything else becomes `other`), so no pod,
 * namespace, service account, secret name or scanned path can create a series. Our own small
 * registry rather than prom-client: under the webhook's Deno permissions prom-client's default
 * metrics silently report `process_resident_memory_bytes 0` and drop `process_max_fds` (it reads
 * /proc/self/status and /proc/self/limits, which Deno opens only with --allow-all), its
 * `nodejs_version_info` reports Deno's Node-compatibility version, and it adds four packages to
 * both lockfiles; the few series we need fit in this file.
 *
 * @module
 */

import { SECRET_REASONS, type SecretReason } from "../authz/secret_handler.ts";
import type { ImageLookupResult } from "../registry/client.ts";
import type { LoadResult } from "../lookup_cache.ts";

/** How an admission ended. */
export type AdmissionOutcome = "mutated" | "unchanged" | "denied" | "error";

/** How a call to AWS or the Kubernetes API ended. */
export type CallResult = "ok" | "not_found" | "denied" | "throttled" | "error";

/** Process figures read at scrape time (from `src/runtime/process_stats.ts`). */
export interface ProcessStats {
  residentMemoryBytes: number;
  cpuSeconds: number;
  /** Open file descriptors; absent where they cannot be counted. */
  openFds?: number;
  startTimeSeconds: number;
}

/** What built and runs this process, for `piggy_build_info`. */
export interface BuildInfo {
  version: string;
  /** `deno` or `node`. */
  runtime: string;
  runtimeVersion: string;
}

/** Options of {@link Metrics}. */
export interface MetricsOptions {
  /** Reads the process figures at each scrape. @default none: no `process_*` series */
  processStats?: () => ProcessStats;
  /** @default none: no `piggy_build_info` series */
  build?: BuildInfo;
}

const ENDPOINTS = ["/mutate", "/secret", "/healthz", "/readyz", "/metrics"] as const;
const OUTCOMES: readonly AdmissionOutcome[] = ["mutated", "unchanged", "denied", "error"];
const RESULTS: readonly CallResult[] = ["ok", "not_found", "denied", "throttled", "error"];
const CACHE_RESULTS: readonly LoadResult[] = ["hit", "miss", "coalesced"];
const IMAGE_RESULTS: readonly ImageLookupResult[] = ["hit", "miss", "coalesced", "error"];
/** AWS operations Piggy calls. */
export const AWS_APIS: readonly string[] = ["GetSecretValue", "GetParametersByPath"];
/** Kubernetes API calls Piggy makes (verb and singular resource). */
export const KUBERNETES_APIS: readonly string[] = [
  "get_pod",
  "get_configmap",
  "get_secret",
  "get_serviceaccount",
  "create_tokenreview",
  "get_version",
];
/** HTTP status codes kept as they are in `code` labels; others become `other`. */
const CODES = new Set([200, 400, 401, 403, 404, 405, 413, 415, 429, 500, 502, 503, 504]);

const REQUEST_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const CALL_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type Labels = Record<string, string>;

function bounded(value: string, allowed: readonly string[]): string {
  return allowed.includes(value) ? value : "other";
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  return `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** A counter with a fixed set of label names. */
class Counter {
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels, by = 1): void {
    const key = JSON.stringify(labels);
    const entry = this.#values.get(key);
    if (entry) entry.value += by;
    else this.#values.set(key, { labels, value: by });
  }

  total(match: Labels = {}): number {
    let sum = 0;
    for (const { labels, value } of this.#values.values()) {
      if (Object.entries(match).every(([k, v]) => labels[k] === v)) sum += value;
    }
    return sum;
  }

  render(lines: string[]): void {
    lines.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const [, { labels, value }] of [...this.#values].sort(([a], [b]) => a.localeCompare(b))) {
      lines.push(`${this.name}${labelText(labels)} ${formatNumber(value)}`);
    }
  }
}

/** A histogram with a fixed set of label names and buckets (cumulative, as the format wants). */
class Histogram {
  readonly #series = new Map<
    string,
    { labels: Labels; counts: number[]; sum: number; count: number }
  >();
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {}

  observe(labels: Labels, seconds: number): void {
    const key = JSON.stringify(labels);
    let series = this.#series.get(key);
    if (!series) {
      series = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(key, series);
    }
    this.buckets.forEach((bound, index) => {
      if (seconds <= bound) series.counts[index] = (series.counts[index] ?? 0) + 1;
    });
    series.sum += seconds;
    series.count += 1;
  }

  render(lines: string[]): void {
    lines.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    const sorted = [...this.#series].sort(([a], [b]) => a.localeCompare(b));
    for (const [, { labels, counts, sum, count }] of sorted) {
      this.buckets.forEach((bound, index) => {
        lines.push(
          `${this.name}_bucket${labelText({ ...labels, le: String(bound) })} ${counts[index]}`,
        );
      });
      lines.push(
        `${this.name}_bucket${labelText({ ...labels, le: "+Inf" })} ${count}`,
        `${this.name}_sum${labelText(labels)} ${formatNumber(sum)}`,
        `${this.name}_count${labelText(labels)} ${count}`,
      );
    }
  }
}

function gauge(lines: string[], name: string, help: string, value: number, labels: Labels = {}) {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
  lines.push(`${name}${labelText(labels)} ${formatNumber(value)}`);
}

/** The webhook's metrics registry. */
export class Metrics {
  readonly #options: MetricsOptions;
  readonly #requests = new Counter(
    "piggy_http_requests_total",
    "HTTP requests served, by endpoint and status code.",
  );
  readonly #requestDuration = new Histogram(
    "piggy_http_request_duration_seconds",
    "Time to serve a request, by endpoint.",
    REQUEST_BUCKETS,
  );
  readonly #admissions = new Counter(
    "piggy_admission_requests_total",
    "Admission requests by outcome: mutated, unchanged, denied (the pod or request was refused) " +
      "or error (the webhook could not decide).",
  );
  readonly #admissionDuration = new Histogram(
    "piggy_admission_duration_seconds",
    "Time to answer an admission request.",
    REQUEST_BUCKETS,
  );
  readonly #secrets = new Counter(
    "piggy_secret_requests_total",
    "/secret requests by status code and reason class.",
  );
  readonly #aws = new Counter(
    "piggy_aws_requests_total",
    "Calls to AWS by API and result (ok, not_found, denied, throttled, error).",
  );
  readonly #awsDuration = new Histogram(
    "piggy_aws_request_duration_seconds",
    "Duration of AWS calls, by API (retries included).",
    CALL_BUCKETS,
  );
  readonly #kubernetes = new Counter(
    "piggy_kubernetes_requests_total",
    "Calls to the Kubernetes API by API and result (ok, not_found, denied, throttled, error).",
  );
  readonly #kubernetesDuration = new Histogram(
    "piggy_kubernetes_request_duration_seconds",
    "Duration of Kubernetes API calls, by API.",
    CALL_BUCKETS,
  );
  readonly #images = new Counter(
    "piggy_image_lookups_total",
    "Image config lookups for containers without command, by result: hit (cache), coalesced " +
      "(joined a lookup in flight), miss (read from the registry) or error (a miss that failed).",
  );
  readonly #cache = new Counter(
    "piggy_secret_cache_requests_total",
    "Secret cache lookups by result: hit, miss (read from the source) or coalesced (joined a " +
      "read in flight).",
  );

  readonly #tokenReviewCache = new Counter(
    "piggy_token_review_cache_requests_total",
    "TokenReview cache lookups by result: hit, miss (asked the Kubernetes API) or coalesced " +
      "(joined a review in flight).",
  );

  readonly #podCache = new Counter(
    "piggy_pod_cache_requests_total",
    "/secret pod read cache lookups by result: hit, miss (read the pod from the Kubernetes API) " +
      "or coalesced (joined a read in flight).",
  );

  constructor(options: MetricsOptions = {}) {
    this.#options = options;
  }

  /** Records one served request. Unknown paths are folded into `other`. */
  observeRequest(path: string, status: number, seconds: number): void {
    const endpoint = bounded(path, ENDPOINTS);
    this.#requests.inc({ endpoint, code: CODES.has(status) ? String(status) : "other" });
    this.#requestDuration.observe({ endpoint }, seconds);
  }

  /** Number of requests recorded for `path` (any status). */
  requestCount(path: string): number {
    return this.#requests.total({ endpoint: bounded(path, ENDPOINTS) });
  }

  /** Records one answered admission request. */
  observeAdmission(outcome: AdmissionOutcome, seconds: number): void {
    this.#admissions.inc({ outcome: bounded(outcome, OUTCOMES) });
    this.#admissionDuration.observe({}, seconds);
  }

  /** Records one `/secret` answer. */
  observeSecret(status: number, reason: SecretReason): void {
    this.#secrets.inc({
      code: CODES.has(status) ? String(status) : "other",
      reason: bounded(reason, SECRET_REASONS),
    });
  }

  /** Records one AWS call (an SDK command, its retries included). */
  observeAws(api: string, result: CallResult, seconds: number): void {
    const bucket = bounded(api, AWS_APIS);
    this.#aws.inc({ api: bucket, result: bounded(result, RESULTS) });
    this.#awsDuration.observe({ api: bucket }, seconds);
  }

  /** Records one Kubernetes API call. */
  observeKubernetes(api: string, result: CallResult, seconds: number): void {
    const bucket = bounded(api, KUBERNETES_APIS);
    this.#kubernetes.inc({ api: bucket, result: bounded(result, RESULTS) });
    this.#kubernetesDuration.observe({ api: bucket }, seconds);
  }

  /** Records one secret cache lookup. */
  observeCache(result: LoadResult): void {
    this.#cache.inc({ result: bounded(result, CACHE_RESULTS) });
  }

  /** Records how one image lookup was answered. */
  observeImageLookup(result: ImageLookupResult): void {
    this.#images.inc({ result: bounded(result, IMAGE_RESULTS) });
  }

  /** Records one TokenReview cache lookup. */
  observeTokenReviewCache(result: LoadResult): void {
    this.#tokenReviewCache.inc({ result: bounded(result, CACHE_RESULTS) });
  }

  /** Records one `/secret` pod read cache lookup. */
  observePodCache(result: LoadResult): void {
    this.#podCache.inc({ result: bounded(result, CACHE_RESULTS) });
  }

  /** The registry in Prometheus text format. */
  render(): string {
    const lines: string[] = [];
    this.#requests.render(lines);
    this.#requestDuration.render(lines);
    this.#admissions.render(lines);
    this.#admissionDuration.render(lines);
    this.#secrets.render(lines);
    this.#aws.render(lines);
    this.#awsDuration.render(lines);
    this.#kubernetes.render(lines);
    this.#kubernetesDuration.render(lines);
    this.#cache.render(lines);
    this.#images.render(lines);
    this.#tokenReviewCache.render(lines);
    this.#podCache.render(lines);
    const build = this.#options.build;
    if (build) {
      gauge(lines, "piggy_build_info", "Build of this process (always 1).", 1, {
        version: build.version,
        runtime: build.runtime,
        runtime_version: build.runtimeVersion,
      });
    }
    const read = this.#options.processStats;
    if (read) {
      const stats = read();
      lines.push(
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
        "# TYPE process_cpu_seconds_total counter",
        `process_cpu_seconds_total ${formatNumber(stats.cpuSeconds)}`,
      );
      gauge(
        lines,
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        stats.residentMemoryBytes,
      );
      if (stats.openFds !== undefined) {
        gauge(lines, "process_open_fds", "Number of open file descriptors.", stats.openFds);
      }
      gauge(
        lines,
        "process_start_time_seconds",
        "Start time of the process since the Unix epoch in seconds.",
        stats.startTimeSeconds,
      );
    }
    return lines.join("\n") + "\n";
  }
}
