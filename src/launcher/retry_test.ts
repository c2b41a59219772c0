import assert from "node:assert/strict";
import { test } from "node:test";
import { SecretSourceError } from "../errors.ts";
import { Logger } from "../log.ts";
import { BACKOFF_CAP_MS, backoffDelay, fetchWithRetry, isRetryable } from "./retry.ts";

function recorder() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = new Logger({ level: "debug", sink: (line) => lines.push(JSON.parse(line)) });
  const sleeps: number[] = [];
  const sleep = (ms: number) => {
    sleeps.push(ms);
    return Promise.resolve();
  };
  return { lines, logger, sleeps, sleep };
}

test("backoffDelay() grows exponentially with equal jitter and is capped", () => {
  assert.equal(backoffDelay(1, 0), 250);
  assert.equal(backoffDelay(1, 0.999999), 500);
  assert.equal(backoffDelay(2, 0), 500);
  assert.equal(backoffDelay(3, 0.5), 1500);
  assert.equal(backoffDelay(20, 0), BACKOFF_CAP_MS / 2);
  assert.ok(backoffDelay(20, 0.999999) <= BACKOFF_CAP_MS);
});

test("fetchWithRetry() succeeds on the third attempt after two retryable failures", async () => {
  const { logger, sleeps, sleep } = recorder();
  let calls = 0;
  const outcome = await fetchWithRetry((attempt) => {
    calls++;
    assert.equal(attempt, calls);
    if (attempt < 3) {
      return Promise.reject(new SecretSourceError("Webhook answered 503", { retryable: true }));
    }
    return Promise.resolve({ K: "v" });
  }, { attempts: 3, initialDelayMs: 0, sleep, logger, random: () => 0 });
  assert.deepEqual(outcome, { ok: true, secrets: { K: "v" }, attempts: 3 });
  assert.deepEqual(sleeps, [250, 500]);
});

test("fetchWithRetry() sleeps the initial delay first and logs it the Go way", async () => {
  const { lines, logger, sleeps, sleep } = recorder();
  await fetchWithRetry(() => Promise.resolve({}), {
    attempts: 1,
    initialDelayMs: 2000,
    sleep,
    logger,
  });
  assert.deepEqual(sleeps, [2000]);
  assert.equal(lines[0]?.message, "Sleeping for 2s");
});

test("fetchWithRetry() collects Go-style lines and does not sleep after the last attempt", async () => {
  const { logger, sleeps, sleep } = recorder();
  const outcome = await fetchWithRetry(
    () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:1")),
    { attempts: 2, initialDelayMs: 0, sleep, logger, random: () => 0 },
  );
  assert.deepEqual(outcome, {
    ok: false,
    attempts: 2,
    errors: [
      "Retry 1/2 [error=connect ECONNREFUSED 127.0.0.1:1]",
      "Retry 2/2 [error=connect ECONNREFUSED 127.0.0.1:1]",
    ],
  });
  assert.deepEqual(sleeps, [250]);
});

test("fetchWithRetry() stops at a permanent failure", async () => {
  const { logger, sleeps, sleep } = recorder();
  let calls = 0;
  const outcome = await fetchWithRetry(() => {
    calls++;
    return Promise.reject(new SecretSourceError("Webhook answered 403: refused"));
  }, { attempts: 5, initialDelayMs: 0, sleep, logger });
  assert.equal(calls, 1);
  assert.equal(outcome.ok, false);
  assert.equal(outcome.attempts, 1);
  assert.deepEqual(sleeps, []);
});

test("isRetryable() retries transient errors only", () => {
  assert.equal(isRetryable(new SecretSourceError("x", { retryable: true })), true);
  assert.equal(isRetryable(new SecretSourceError("x")), false);
  assert.equal(isRetryable(new TypeError("bad address")), false);
  assert.equal(isRetryable(new Error("socket hang up")), true);
});

test("isRetryable() reads retryable from a SecretSourceError of another copy of the classes", () => {
  // The standalone source is a bundle with its own copy of errors.ts.
  class SecretSourceError extends Error {
    constructor(message: string, readonly retryable: boolean) {
      super(message);
      this.name = "SecretSourceError";
    }
  }
  assert.equal(isRetryable(new SecretSourceError("AccessDenied", false)), false);
  assert.equal(isRetryable(new SecretSourceError("Throttling", true)), true);
});
