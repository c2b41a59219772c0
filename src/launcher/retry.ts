/**
 * The fetch loop: an optional initial delay, then up to N attempts separated by an exponential
 * backoff with equal jitter; permanent failures stop the loop early.
 *
 * @module
 */

import { formatGoDuration } from "../config/duration.ts";
import { SecretSourceError } from "../errors.ts";
import { describeError, type Logger } from "../log.ts";

/** First backoff step in milliseconds (Go Piggy slept a fixed 500 ms). */
export const BACKOFF_BASE_MS = 500;

/** Largest backoff step in milliseconds. */
export const BACKOFF_CAP_MS = 10_000;

/**
 * Milliseconds to wait before retry number `retry` (1 = the second attempt): equal jitter over an
 * exponential step, `step/2 + random·step/2` with `step = min(cap, base·2^(retry-1))`, so attempts
 * are never closer than half a step and a crowd of restarting pods spreads out.
 *
 * @param retry 1 for the wait before the second attempt, 2 before the third, …
 * @param random a number in [0, 1)
 */
export function backoffDelay(retry: number, random: number): number {
  const step = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, retry - 1));
  return Math.round(step / 2 + (random * step) / 2);
}

/** Options of {@link fetchWithRetry}. */
export interface RetryOptions {
  /** Total attempts (≥ 1). */
  attempts: number;
  /** Milliseconds to wait before the first attempt. */
  initialDelayMs: number;
  /** Waits; injected so tests need no clock. */
  sleep: (ms: number) => Promise<void>;
  /** Jitter source in [0, 1). @default Math.random */
  random?: () => number;
  /** Where attempts are reported. */
  logger: Logger;
}

/** The result of the loop. */
export type FetchOutcome =
  | { ok: true; secrets: Record<string, string>; attempts: number }
  | { ok: false; errors: string[]; attempts: number };

/** True unless the error says another attempt cannot help. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof SecretSourceError) return error.retryable;
  // The standalone source is a separate bundle with its own copy of the error classes.
  if (error instanceof Error && error.name === "SecretSourceError" && "retryable" in error) {
    return error.retryable === true;
  }
  // Configuration problems (bad address, unreadable CA) do not fix themselves.
  return !(error instanceof TypeError || error instanceof SyntaxError);
}

/**
 * Runs `fetchOnce` until it succeeds, fails permanently or the attempts are used up. Failures are
 * collected as Go Piggy's `Retry i/N [error=…]` lines; nothing is slept after the last attempt.
 *
 * @param fetchOnce one attempt (1-based number given)
 */
export async function fetchWithRetry(
  fetchOnce: (attempt: number) => Promise<Record<string, string>>,
  options: RetryOptions,
): Promise<FetchOutcome> {
  const { attempts, logger } = options;
  const random = options.random ?? Math.random;
  if (options.initialDelayMs > 0) {
    logger.info(`Sleeping for ${formatGoDuration(options.initialDelayMs)}`);
    await options.sleep(options.initialDelayMs);
  }
  const errors: string[] = [];
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const secrets = await fetchOnce(attempt);
      return { ok: true, secrets, attempts: attempt };
    } catch (error) {
      const line = `Retry ${attempt}/${attempts} [error=${describeError(error)}]`;
      errors.push(line);
      if (!isRetryable(error)) {
        logger.debug(`${line}: not retrying`);
        return { ok: false, errors, attempts: attempt };
      }
      if (attempt < attempts) {
        const delay = backoffDelay(attempt, random());
        logger.debug(`${line}: next attempt in ${formatGoDuration(delay)}`);
        await options.sleep(delay);
      }
    }
  }
  return { ok: false, errors, attempts };
}
