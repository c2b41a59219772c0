/**
 * Go `time.ParseDuration` syntax, shared by the webhook (validating `piggy-initial-delay`) and
 * piggy-env (`--initial-delay`, `PIGGY_INITIAL_DELAY`, `PIGGY_REQUEST_TIMEOUT`).
 *
 * @module
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  "\u00b5s": 1e-3, // micro sign
  "\u03bcs": 1e-3, // Greek small letter mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

// No overlapping quantifiers: pod authors control the text, so matching must stay linear.
const ELEMENT = /^(\d+(?:\.\d*)?|\.\d+)([a-z\u00b5\u03bc]+)/;

/** Longest duration accepted: the largest timer delay (2^31 - 1 ms, about 24.8 days). */
const MAX_MS = 2 ** 31 - 1;

/** Longer texts are refused before parsing (a Go duration needs far fewer characters). */
const MAX_LENGTH = 64;

/**
 * Parses a Go duration such as `300ms`, `1.5h`, `1m30s` or `0` into milliseconds.
 *
 * Accepts what Go accepts (an optional `+`, decimal numbers each followed by a unit among `ns`,
 * `us`, `µs`, `ms`, `s`, `m`, `h`; `0` alone) except negative durations.
 *
 * @param text the duration text (not trimmed)
 * @returns milliseconds, possibly fractional (`1500ns` → `0.0015`)
 * @throws {SyntaxError} when the text is not a Go duration or is negative
 */
export function parseGoDuration(text: string): number {
  if (text.length > MAX_LENGTH) {
    throw new SyntaxError(
      `Cannot parse duration "${text.slice(0, 16)}…": longer than ${MAX_LENGTH} characters`,
    );
  }
  let rest = text;
  if (rest.startsWith("-")) {
    throw new SyntaxError(`Cannot parse duration "${text}": negative durations are not allowed`);
  }
  if (rest.startsWith("+")) rest = rest.slice(1);
  if (rest === "0") return 0;
  if (rest === "") throw new SyntaxError(`Cannot parse duration "${text}": empty`);
  let total = 0;
  while (rest !== "") {
    const match = ELEMENT.exec(rest);
    const unit = match ? UNIT_MS[match[2] ?? ""] : undefined;
    if (!match || unit === undefined) {
      throw new SyntaxError(
        `Cannot parse duration "${text}": expecting numbers with units ns, us, ms, s, m or h`,
      );
    }
    total += Number(match[1]) * unit;
    rest = rest.slice(match[0].length);
  }
  // Timers cannot wait longer (setTimeout fires at once above 2^31-1 ms), and no delay or timeout
  // of Piggy's needs more than 24 days.
  if (!Number.isFinite(total) || total > MAX_MS) {
    throw new SyntaxError(`Cannot parse duration "${text}": out of range (at most 596h31m23s)`);
  }
  return total;
}

/**
 * Formats milliseconds as a Go duration string (`1m30s`, `250ms`, `0s`), the inverse of
 * {@link parseGoDuration} for whole milliseconds.
 *
 * @param ms milliseconds, 0 or more
 * @throws {RangeError} when `ms` is negative or not finite
 */
export function formatGoDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`Cannot format duration ${ms}: expecting a finite number of 0 or more`);
  }
  if (ms === 0) return "0s";
  if (ms < 1000) return `${trimNumber(ms)}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = (ms % 60_000) / 1000;
  let out = "";
  if (hours > 0) out += `${hours}h`;
  if (hours > 0 || minutes > 0) out += `${minutes}m`;
  return `${out}${trimNumber(seconds)}s`;
}

function trimNumber(value: number): string {
  return String(Number(value.toFixed(6)));
}
