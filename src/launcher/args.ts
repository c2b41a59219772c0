/**
 * The piggy-env command line: `install <dir>`, `--help`, `--version`, or run mode
 * `[--standalone] [--retry N] [--initial-delay D] -- command args…`. Pure: no env, no I/O.
 *
 * @module
 */

import { parseGoDuration } from "../config/duration.ts";
import { COMMAND_SEPARATOR } from "../constants.ts";
import { UsageError } from "../errors.ts";

/** The one-line usage printed with every usage error and by `--help`. */
export const USAGE =
  "Usage: piggy-env install [--from DIR] <dir> | piggy-env [--standalone] [--retry N] [--initial-delay D] -- command [args...]";

/** Largest accepted `--retry` / `PIGGY_NUMBER_OF_RETRY`. */
export const MAX_ATTEMPTS = 1000;

/** Run-mode flags given on the command line; absent fields were not given. */
export interface RunFlags {
  /** `--standalone`: read AWS directly instead of the webhook proxy. */
  standalone?: boolean;
  /** `--retry N`: total number of fetch attempts (≥ 1). */
  attempts?: number;
  /** `--initial-delay D`: milliseconds to wait before the first attempt. */
  initialDelayMs?: number;
}

/** What the command line asks for. */
export type LauncherCommand =
  | { kind: "help" }
  | { kind: "version" }
  | {
    kind: "install";
    destination: string;
    /** `--from DIR`: the launcher directory to install; absent means the image's default. */
    from?: string;
  }
  | { kind: "run"; flags: RunFlags; command: string[] };

/**
 * Parses an attempt count: decimal digits only, 1 to {@link MAX_ATTEMPTS}.
 *
 * @throws {SyntaxError} when the text is not a decimal integer
 * @throws {RangeError} when it is below 1 or above the maximum
 */
export function parseAttempts(text: string): number {
  if (!/^[0-9]+$/.test(text.trim())) {
    throw new SyntaxError(`Cannot parse "${text}": expecting an integer greater than 0`);
  }
  const value = Number(text.trim());
  if (value < 1 || value > MAX_ATTEMPTS) {
    throw new RangeError(`Cannot use "${text}": expecting an integer from 1 to ${MAX_ATTEMPTS}`);
  }
  return value;
}

/**
 * Parses a non-negative Go duration (`300ms`, `2s`, `1m30s`) into milliseconds.
 *
 * @throws {SyntaxError} when the text is not a Go duration
 * @throws {RangeError} when it is negative
 */
export function parseDelay(text: string): number {
  const ms = parseGoDuration(text.trim());
  if (ms < 0) throw new RangeError(`Cannot use "${text}": expecting a duration of 0 or more`);
  return ms;
}

function flagValue(own: readonly string[], index: number, name: string, inline?: string): string {
  if (inline !== undefined) return inline;
  const value = own[index + 1];
  if (value === undefined || value.startsWith("--")) {
    throw new UsageError(`Missing the value of "${name}"`);
  }
  return value;
}

function usageFrom(name: string, parse: () => number): number {
  try {
    return parse();
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new UsageError(`Invalid "${name}" value: ${detail}`, { cause: error });
  }
}

/** `install`'s only flag: the launcher directory to install. */
const SOURCE_FLAG = `--from`;

function parseInstall(rest: readonly string[], hasSeparator: boolean): LauncherCommand {
  if (hasSeparator) throw new UsageError(`Unexpected "${COMMAND_SEPARATOR}" after install`);
  let from: string | undefined;
  let index = 0;
  const first = rest[0] ?? "";
  if (first === SOURCE_FLAG || first.startsWith(`${SOURCE_FLAG}=`)) {
    const inline = first === SOURCE_FLAG ? undefined : first.slice(SOURCE_FLAG.length + 1);
    from = flagValue(rest, 0, SOURCE_FLAG, inline);
    if (from === "") throw new UsageError(`Missing the value of "${SOURCE_FLAG}"`);
    index = inline === undefined ? 2 : 1;
  }
  const destination = rest[index];
  if (destination === undefined || destination === "") {
    throw new UsageError("Missing the install destination");
  }
  if (destination.startsWith("-")) throw new UsageError(`Unknown flag "${destination}"`);
  const extra = rest[index + 1];
  if (extra !== undefined) throw new UsageError(`Unexpected argument "${extra}" after install`);
  return { kind: "install", destination, ...(from === undefined ? {} : { from }) };
}

/**
 * Parses piggy-env's arguments (without the program name). Unlike Go Piggy, unknown flags and stray
 * arguments are errors, and `--retry` must be 1 or more.
 *
 * @param argv the process arguments after the program name
 * @returns install, help, version, or run with the flags and the command after the first `--`
 * @throws {UsageError} on an unknown flag, a bad flag value, a missing `--` or an empty command
 */
export function parseLauncherArgs(argv: readonly string[]): LauncherCommand {
  const separator = argv.indexOf(COMMAND_SEPARATOR);
  const own = separator === -1 ? argv : argv.slice(0, separator);
  if (own.includes("--help") || own.includes("-h")) return { kind: "help" };
  if (own.includes("--version")) return { kind: "version" };

  if (own[0] === "install") return parseInstall(own.slice(1), separator !== -1);

  const flags: RunFlags = {};
  for (let index = 0; index < own.length; index++) {
    const token = own[index] as string;
    const equals = token.indexOf("=");
    const name = token.startsWith("--") && equals !== -1 ? token.slice(0, equals) : token;
    const inline = name === token ? undefined : token.slice(equals + 1);
    switch (name) {
      case "--standalone":
        if (inline !== undefined) throw new UsageError(`Flag "--standalone" takes no value`);
        flags.standalone = true;
        break;
      case "--retry": {
        const value = flagValue(own, index, name, inline);
        flags.attempts = usageFrom(name, () => parseAttempts(value));
        if (inline === undefined) index++;
        break;
      }
      case "--initial-delay": {
        const value = flagValue(own, index, name, inline);
        flags.initialDelayMs = usageFrom(name, () => parseDelay(value));
        if (inline === undefined) index++;
        break;
      }
      default:
        throw new UsageError(
          token.startsWith("-") ? `Unknown flag "${token}"` : `Unexpected argument "${token}"`,
        );
    }
  }

  if (separator === -1) {
    throw new UsageError(`Missing "${COMMAND_SEPARATOR}" before the command`);
  }
  const command = argv.slice(separator + 1);
  if (command.length === 0 || command[0] === "") {
    throw new UsageError(`Missing the command after "${COMMAND_SEPARATOR}"`);
  }
  return { kind: "run", flags, command: [...command] };
}
