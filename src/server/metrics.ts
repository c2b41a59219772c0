/**
 * A small Prometheus text-format registry: request counts and latency histograms per endpoint.
 * No labels carry pod names, secret names or anything user-controlled beyond known paths.
 *
 * @module
 */

const KNOWN_PATHS = new Set(["/mutate", "/secret", "/healthz", "/readyz", "/metrics"]);
const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

/** Request metrics in Prometheus text exposition format. */
export class Metrics {
  readonly #requests = new Map<string, number>();
  readonly #durations = new Map<string, Histogram>();

  /** Records one served request. Unknown paths are folded into `other`. */
  observeRequest(path: string, status: number, seconds: number): void {
    const endpoint = KNOWN_PATHS.has(path) ? path : "other";
    const key = `${endpoint} ${status}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    let histogram = this.#durations.get(endpoint);
    if (!histogram) {
      histogram = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#durations.set(endpoint, histogram);
    }
    BUCKETS.forEach((bound, index) => {
      if (seconds <= bound) histogram.counts[index] = (histogram.counts[index] ?? 0) + 1;
    });
    histogram.sum += seconds;
    histogram.count += 1;
  }

  /** Number of requests recorded for `path` (any status). */
  requestCount(path: string): number {
    let total = 0;
    for (const [key, value] of this.#requests) if (key.startsWith(`${path} `)) total += value;
    return total;
  }

  /** The registry in Prometheus text format. */
  render(): string {
    const lines = [
      "# HELP piggy_http_requests_total HTTP requests served, by endpoint and status code.",
      "# TYPE piggy_http_requests_total counter",
    ];
    for (const [key, value] of [...this.#requests].sort()) {
      const [endpoint, status] = key.split(" ");
      lines.push(`piggy_http_requests_total{endpoint="${endpoint}",code="${status}"} ${value}`);
    }
    lines.push(
      "# HELP piggy_http_request_duration_seconds Time to serve a request, by endpoint.",
      "# TYPE piggy_http_request_duration_seconds histogram",
    );
    for (const [endpoint, histogram] of [...this.#durations].sort()) {
      BUCKETS.forEach((bound, index) => {
        lines.push(
          `piggy_http_request_duration_seconds_bucket{endpoint="${endpoint}",le="${bound}"} ${
            histogram.counts[index]
          }`,
        );
      });
      lines.push(
        `piggy_http_request_duration_seconds_bucket{endpoint="${endpoint}",le="+Inf"} ${histogram.count}`,
        `piggy_http_request_duration_seconds_sum{endpoint="${endpoint}"} ${histogram.sum}`,
        `piggy_http_request_duration_seconds_count{endpoint="${endpoint}"} ${histogram.count}`,
      );
    }
    return lines.join("\n") + "\n";
  }
}
