/**
 * Resolves the {@link SETTINGS} table for one pod: annotation > webhook env > default.
 *
 * Rules (Go Piggy's, with its silent failures turned into problems):
 * - A string annotation that exists wins even when empty (Go behaviour); an env var set to `""`
 *   counts as unset.
 * - For the other types an empty value counts as unset, and a bad value (non-boolean, negative or
 *   non-integer count, malformed duration or quantity, unknown pull policy or medium) never becomes
 *   `false`/`0`: it is reported as a problem and resolution continues as if it were absent (the
 *   env value, then the default). Settings marked `denyOnBadValue` (`piggy-enforce-integrity`,
 *   `standalone`, `piggy-enforce-service-account`) report a denying problem instead, because
 *   guessing them weakens security or changes which identity reads the secret.
 * - Annotations of `envOnly` settings are ignored with a warning, and so are unknown
 *   `piggysec.com/` annotations (typos; all of them in one problem: the count and the first few
 *   names) and `piggy-skip-verify-tls`.
 *
 * Problem messages name the annotation or env var and quote at most a short prefix of the value.
 *
 * @module
 */

import { ANNOTATION_PREFIX, PIGGY_SEAL_ANNOTATION, PIGGY_UID_ANNOTATION } from "../constants.ts";
import { parseGoDuration } from "./duration.ts";
import { parseGoBool, parseGoInt, parseMedium, parsePullPolicy, parseQuantity } from "./parse.ts";
import {
  type PiggyConfig,
  type SettingDefinition,
  SETTINGS,
  type SettingType,
} from "./settings.ts";

export type { PiggyConfig } from "./settings.ts";

/** Where a resolved value came from. */
export type SettingSource = "annotation" | "env" | "default";

/** A bad or ignored setting, reported as an admission warning (or denial) and logged. */
export interface ConfigProblem {
  /** Setting key without prefix (e.g. `debug`), or the full annotation name when unknown. */
  key: string;
  /** One line for the user: what is wrong and what applies instead. */
  message: string;
  /** True when the pod must be denied instead of using a fallback. */
  deny: boolean;
  /** Where the bad value was found. */
  source?: "annotation" | "env";
}

/** What {@link resolveConfig} returns. */
export interface ResolvedConfig {
  /** The resolved settings. */
  config: PiggyConfig;
  /** Where each value came from. */
  sources: Record<keyof PiggyConfig, SettingSource>;
  /** Bad or ignored values, in table order. */
  problems: ConfigProblem[];
}

/** Why a value of each setting type was refused, for messages. */
export const SETTING_REASONS: Readonly<Record<SettingType, string>> = {
  string: "",
  bool: "not a boolean (true or false)",
  int: "not a whole number of 0 or more",
  duration: "not a Go duration such as 5s or 1m30s",
  quantity: "not a quantity such as 50m or 64Mi",
  pullPolicy: "not Always, IfNotPresent or Never",
  medium: 'not "" or "Memory"',
};

const MAX_QUOTED = 24;

/** Quotes at most a short prefix of a value, for messages. */
export function quoteValue(value: string): string {
  const short = value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}…` : value;
  return JSON.stringify(short);
}

/**
 * Parses the text of a setting of `type`.
 *
 * @throws {SyntaxError|RangeError} when the text is not a value of that type
 */
export function parseSettingValue(type: SettingType, text: string): string | boolean | number {
  switch (type) {
    case "string":
      return text;
    case "bool":
      return parseGoBool(text);
    case "int": {
      const value = parseGoInt(text);
      if (value < 0) throw new RangeError(`Cannot use "${text}": expecting 0 or more`);
      return value;
    }
    case "duration":
      parseGoDuration(text);
      return text;
    case "quantity":
      parseQuantity(text);
      return text;
    case "pullPolicy":
      return parsePullPolicy(text);
    case "medium":
      return parseMedium(text);
  }
}

interface Candidate {
  source: "annotation" | "env";
  name: string;
  text: string;
}

function describeSource(candidate: Candidate): string {
  return candidate.source === "annotation"
    ? `annotation "${candidate.name}"`
    : `env ${candidate.name}`;
}

/** Each setting's default as {@link resolveOne} returns it: one object, shared by every pod. */
const DEFAULTS = new Map<
  SettingDefinition,
  { value: string | boolean | number; source: "default" }
>(
  SETTINGS.map((entry) => [entry, Object.freeze({ value: entry.default, source: "default" })]),
);

/** Every field with its default, in the settings' order. */
const DEFAULT_CONFIG: Readonly<Record<string, unknown>> = Object.fromEntries(
  SETTINGS.map((entry) => [entry.field, entry.default]),
);
const DEFAULT_SOURCES: Readonly<Record<string, SettingSource>> = Object.fromEntries(
  SETTINGS.map((entry) => [entry.field, "default"]),
);

function resolveOne(
  entry: SettingDefinition,
  annotations: Readonly<Record<string, string>>,
  envGet: (name: string) => string | undefined,
  problems: ConfigProblem[],
): { value: string | boolean | number; source: SettingSource } {
  const annotated = Object.hasOwn(annotations, entry.annotation)
    ? annotations[entry.annotation]
    : undefined;
  const fromEnv = envGet(entry.env);
  // Most settings of most pods: neither annotated nor set in the env.
  if (typeof annotated !== "string" && (fromEnv === undefined || fromEnv === "")) {
    return DEFAULTS.get(entry) ?? { value: entry.default, source: "default" };
  }
  const candidates: Candidate[] = [];
  if (typeof annotated === "string") {
    if (entry.envOnly) {
      problems.push({
        key: entry.key,
        source: "annotation",
        deny: false,
        message: `Ignoring annotation "${entry.annotation}": only the webhook env ${entry.env} ` +
          "sets it",
      });
    } else if (entry.type === "string" || annotated !== "") {
      candidates.push({ source: "annotation", name: entry.annotation, text: annotated });
    }
  }
  if (fromEnv !== undefined && fromEnv !== "") {
    candidates.push({ source: "env", name: entry.env, text: fromEnv });
  }

  if (entry.readBy.length === 0) {
    for (const candidate of candidates) {
      problems.push({
        key: entry.key,
        source: candidate.source,
        deny: false,
        message: `Ignoring ${describeSource(candidate)}: not supported by Piggy`,
      });
    }
    return { value: entry.default, source: "default" };
  }

  const bad: Candidate[] = [];
  let chosen: { value: string | boolean | number; source: SettingSource } | undefined;
  for (const candidate of candidates) {
    try {
      chosen = { value: parseSettingValue(entry.type, candidate.text), source: candidate.source };
      break;
    } catch {
      bad.push(candidate);
    }
  }
  chosen ??= { value: entry.default, source: "default" };
  for (const candidate of bad) {
    const what = `${describeSource(candidate)} value ${quoteValue(candidate.text)}`;
    const reason = SETTING_REASONS[entry.type];
    problems.push(
      entry.denyOnBadValue
        ? {
          key: entry.key,
          source: candidate.source,
          deny: true,
          message: `Cannot use ${what}: ${reason}; Piggy does not guess this security setting`,
        }
        : {
          key: entry.key,
          source: candidate.source,
          deny: false,
          message: `Ignoring ${what}: ${reason}; using ${JSON.stringify(chosen.value)} ` +
            `(${chosen.source})`,
        },
    );
  }
  return chosen;
}

/** How many names a summary shows. */
const SHOWN_NAMES = 3;

/**
 * One problem for every unknown `piggysec.com/` annotation (typos): the count and the first few
 * names, so a pod with thousands costs one warning and one log line.
 */
function unknownAnnotations(names: readonly string[]): ConfigProblem {
  const first = names[0] ?? "";
  if (names.length === 1) {
    return {
      key: first,
      source: "annotation",
      deny: false,
      message: `Ignoring unknown annotation "${first}"`,
    };
  }
  const shown = names.slice(0, SHOWN_NAMES).map((name) => `"${name}"`).join(", ");
  return {
    key: first,
    source: "annotation",
    deny: false,
    message: `Ignoring ${names.length} unknown annotations: ${shown}` +
      (names.length > SHOWN_NAMES ? ", …" : ""),
  };
}

/** The `piggysec.com/` annotations Piggy reads or writes. */
const KNOWN_ANNOTATIONS: ReadonlySet<string> = new Set([
  PIGGY_UID_ANNOTATION,
  PIGGY_SEAL_ANNOTATION,
  ...SETTINGS.map((entry) => entry.annotation),
]);

/**
 * Resolves every setting for a pod.
 *
 * @example
 * ```ts
 * const { config, sources, problems } = resolveConfig(pod.metadata?.annotations, env.get);
 * ```
 *
 * @param annotations the pod's annotations (`undefined` when it has none)
 * @param envGet webhook environment lookup; never reads globals itself
 * @returns the config, where each value came from, and the problems found
 */
export function resolveConfig(
  annotations: Record<string, string> | undefined,
  envGet: (name: string) => string | undefined,
): ResolvedConfig {
  const given: Readonly<Record<string, string>> = annotations ?? {};
  const problems: ConfigProblem[] = [];
  // Copies of objects with every field already in place (in the settings' order): one allocation
  // each, instead of one growth of their property store after another.
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  const sources: Record<string, SettingSource> = { ...DEFAULT_SOURCES };
  for (const entry of SETTINGS) {
    const { value, source } = resolveOne(entry, given, envGet, problems);
    config[entry.field] = value;
    sources[entry.field] = source;
  }
  const unknown = Object.keys(given).filter((name) =>
    name.startsWith(ANNOTATION_PREFIX) && !KNOWN_ANNOTATIONS.has(name)
  );
  if (unknown.length > 0) problems.push(unknownAnnotations(unknown));
  return {
    config: config as unknown as PiggyConfig,
    sources: sources as Record<keyof PiggyConfig, SettingSource>,
    problems,
  };
}
