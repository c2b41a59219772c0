import assert from "node:assert/strict";
import { test } from "node:test";
import { Metrics } from "./metrics.ts";

test("Metrics folds unknown label values into other, so callers cannot add series", () => {
  const metrics = new Metrics();
  metrics.observeRequest("/secret/../etc", 418, 0.01);
  metrics.observeAws("DeleteSecret", "ok", 0.1);
  metrics.observeKubernetes("list_pods", "ok", 0.1);
  const text = metrics.render();
  assert.match(text, /piggy_http_requests_total\{endpoint="other",code="other"\} 1/);
  assert.match(text, /piggy_aws_requests_total\{api="other",result="ok"\} 1/);
  assert.match(text, /piggy_kubernetes_requests_total\{api="other",result="ok"\} 1/);
  assert.ok(!text.includes("etc") && !text.includes("DeleteSecret") && !text.includes("list_pods"));
});

test("Metrics renders cumulative histogram buckets, +Inf, sum and count", () => {
  const metrics = new Metrics();
  metrics.observeAdmission("mutated", 0.003);
  metrics.observeAdmission("denied", 0.2);
  const lines = metrics.render().split("\n");
  assert.ok(lines.includes('piggy_admission_duration_seconds_bucket{le="0.001"} 0'));
  assert.ok(lines.includes('piggy_admission_duration_seconds_bucket{le="0.005"} 1'));
  assert.ok(lines.includes('piggy_admission_duration_seconds_bucket{le="0.25"} 2'));
  assert.ok(lines.includes('piggy_admission_duration_seconds_bucket{le="+Inf"} 2'));
  assert.ok(lines.includes("piggy_admission_duration_seconds_count 2"));
  assert.ok(lines.includes('piggy_admission_requests_total{outcome="denied"} 1'));
});

test("Metrics adds process_* and build info only when given", () => {
  assert.ok(!new Metrics().render().includes("process_"));
  const text = new Metrics({
    processStats: () => ({ residentMemoryBytes: 5, cpuSeconds: 1.5, startTimeSeconds: 100 }),
    build: { version: "1.2.3", runtime: "node", runtimeVersion: "20.1.0" },
  }).render();
  assert.match(text, /^process_resident_memory_bytes 5$/m);
  assert.match(text, /^process_cpu_seconds_total 1\.5$/m);
  assert.ok(!text.includes("process_open_fds"), "no open fds series when they cannot be counted");
  assert.match(
    text,
    /^piggy_build_info\{version="1\.2\.3",runtime="node",runtime_version="20\.1\.0"\} 1$/m,
  );
});
