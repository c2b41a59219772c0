/**
 * JSON-lines logger in Go Piggy's (zerolog) field format:
 * `{"level":"info",<fields…>,"time":"2026-01-27T11:27:47Z","message":"…"}` on stderr.
 *
 * Never pass secret values, tokens or CA contents as fields or in messages.
 *
 * @module
 */

/** Log levels, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Structured fields attached to a log line. */
export type LogFields = Record<string, string | number | boolean | undefined>;

/**
 * Where formatted lines go; defaults to stderr, one synchronous write per line. The level lets a
 * batching sink write warnings and errors at once (see `batchedStderrSink` in `src/runtime/`).
 */
export type LogSink = ((line: string, level: LogLevel) => void) & {
  /** Writes what the sink holds back, if it batches. */
  flush?: () => void;
  /** How many writes have failed so far (their lines are lost), if the sink counts them. */
  writeFailures?: () => number;
};

/** Options of {@link Logger}. */
export interface LoggerOptions {
  /** Minimum level written. @default "info" */
  level?: LogLevel;
  /** Line writer. @default console.error (stderr) */
  sink?: LogSink;
  /** Clock. @default () => new Date() */
  now?: () => Date;
}

/**
 * Parses a level name, also accepting `warning` and `fatal`/`panic` (as zerolog does).
 *
 * @returns the level, or `undefined` when the name is unknown
 */
export function parseLogLevel(name: string): LogLevel | undefined {
  const value = name.trim().toLowerCase();
  if (value === "debug" || value === "trace") return "debug";
  if (value === "info") return "info";
  if (value === "warn" || value === "warning") return "warn";
  if (value === "error" || value === "fatal" || value === "panic") return "error";
  return undefined;
}

/**
 * Picks the level from `LOG_LEVEL`, then a debug switch (`DEBUG=true` for the webhook,
 * `PIGGY_DEBUG=true` for piggy-env).
 *
 * @param logLevel value of `LOG_LEVEL` (may be undefined)
 * @param debug whether the debug switch is on
 */
export function chooseLogLevel(logLevel: string | undefined, debug: boolean): LogLevel {
  const parsed = logLevel ? parseLogLevel(logLevel) : undefined;
  if (parsed) return parsed;
  return debug ? "debug" : "info";
}

/** The last second {@link formatTime} formatted: a busy webhook writes many lines per second. */
let formattedSecond = NaN;
let formattedText = "";

function formatTime(date: Date): string {
  const second = Math.floor(date.getTime() / 1000);
  if (second !== formattedSecond) {
    formattedText = date.toISOString().replace(/\.\d{3}Z$/, "Z");
    formattedSecond = second;
  }
  return formattedText;
}

/** Structured logger; `child()` adds fields to every line. */
export class Logger {
  readonly #level: LogLevel;
  readonly #sink: LogSink;
  readonly #now: () => Date;
  readonly #fields: LogFields;

  constructor(options: LoggerOptions = {}, fields: LogFields = {}) {
    this.#level = options.level ?? "info";
    // deno-lint-ignore no-console
    this.#sink = options.sink ?? ((line) => console.error(line));
    this.#now = options.now ?? (() => new Date());
    this.#fields = fields;
  }

  /** The minimum level this logger writes. */
  get level(): LogLevel {
    return this.#level;
  }

  /** True when `level` lines are written. */
  enabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] >= LEVEL_RANK[this.#level];
  }

  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger {
    return new Logger(
      { level: this.#level, sink: this.#sink, now: this.#now },
      { ...this.#fields, ...fields },
    );
  }

  /**
   * Writes now whatever a batching sink still holds (lines that must be out before something
   * else happens, e.g. the audit line of a served secret before its answer). A no-op otherwise.
   */
  flush(): void {
    this.#sink.flush?.();
  }

  /**
   * How many of the sink's writes have failed since the process started (0 for a sink that does
   * not count them). Compare the count from before a line was logged with the count after
   * {@link Logger.flush} to learn whether that line may be lost.
   */
  writeFailures(): number {
    return this.#sink.writeFailures?.() ?? 0;
  }

  /** Writes a debug line. */
  debug(message: string, fields?: LogFields): void {
    this.#write("debug", message, fields);
  }

  /** Writes an info line. */
  info(message: string, fields?: LogFields): void {
    this.#write("info", message, fields);
  }

  /** Writes a warn line. */
  warn(message: string, fields?: LogFields): void {
    this.#write("warn", message, fields);
  }

  /** Writes an error line. */
  error(message: string, fields?: LogFields): void {
    this.#write("error", message, fields);
  }

  #write(level: LogLevel, message: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    // The logger's fields, then the line's: a key in both keeps its place and takes the line's
    // value (as `{ ...own, ...fields }` would, without building that object).
    const record: Record<string, unknown> = { level };
    const own = this.#fields;
    for (const key of Object.keys(own)) {
      const value = fields !== undefined && Object.hasOwn(fields, key) ? fields[key] : own[key];
      if (value !== undefined) record[key] = value;
    }
    if (fields !== undefined) {
      for (const key of Object.keys(fields)) {
        const value = fields[key];
        if (value !== undefined && !Object.hasOwn(own, key)) record[key] = value;
      }
    }
    record.time = formatTime(this.#now());
    record.message = message;
    this.#sink(JSON.stringify(record), level);
  }
}

/**
 * Describes an error for a log line: its message, then each cause's message unless the text
 * already contains it (wrapped AWS errors repeat their cause). Never a stack.
 *
 * @param error anything thrown
 */
export function describeError(error: unknown): string {
  let text = "";
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const message = current instanceof Error ? current.message : String(current);
    if (message && !text.includes(message)) text = text ? `${text}: ${message}` : message;
    current = current instanceof Error ? current.cause : undefined;
  }
  return text;
}
