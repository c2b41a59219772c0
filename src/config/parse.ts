/**
 * Value parsers of the settings table: Go `strconv.ParseBool` and `strconv.Atoi` syntax, Kubernetes
 * resource quantities, image pull policies and emptyDir media. Each throws on a bad value; the
 * caller ({@link resolveConfig}) turns the error into a problem instead of a silent `false`/`0`.
 *
 * @module
 */

const TRUE_WORDS: ReadonlySet<string> = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const FALSE_WORDS: ReadonlySet<string> = new Set(["0", "f", "F", "FALSE", "false", "False"]);

/**
 * Parses a boolean as Go `strconv.ParseBool` does: `1 t T TRUE true True` and `0 f F FALSE false
 * False`, nothing else (no trimming, no `yes`).
 *
 * @throws {SyntaxError} for any other text
 */
export function parseGoBool(text: string): boolean {
  if (TRUE_WORDS.has(text)) return true;
  if (FALSE_WORDS.has(text)) return false;
  throw new SyntaxError(`Cannot parse "${text}" as a boolean: expecting "true" or "false"`);
}

/**
 * Parses a base-10 integer as Go `strconv.Atoi` does (optional sign, digits only).
 *
 * @throws {SyntaxError} when the text is not an integer
 * @throws {RangeError} when it is not a safe integer
 */
export function parseGoInt(text: string): number {
  if (!/^[+-]?\d+$/.test(text)) {
    throw new SyntaxError(`Cannot parse "${text}" as an integer`);
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`Cannot use "${text}": out of range`);
  return value;
}

const BINARY_SUFFIX: Readonly<Record<string, number>> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL_SUFFIX: Readonly<Record<string, number>> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};
const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|([a-zA-Z]*))$/;

/**
 * Parses a Kubernetes resource quantity (`50m`, `64Mi`, `1Gi`, `0.5`, `1e3`, `128974848`) and
 * returns its value in base units (cores or bytes). Negative quantities are rejected: every
 * quantity Piggy reads is a request, a limit or a size.
 *
 * @throws {SyntaxError} when the text is not a quantity or is negative
 */
export function parseQuantity(text: string): number {
  let value = parsedQuantities.get(text);
  if (value === undefined) {
    value = parseQuantityText(text);
    // A pod's quantities repeat (the installer's defaults, its containers' limits), and every
    // admission reads them several times: the last few are kept (bounded: pods write them).
    if (parsedQuantities.size >= MAX_PARSED_QUANTITIES) parsedQuantities.clear();
    parsedQuantities.set(text, value);
  }
  return value;
}

const MAX_PARSED_QUANTITIES = 64;
const parsedQuantities = new Map<string, number>();

function parseQuantityText(text: string): number {
  const match = QUANTITY.exec(text);
  if (!match) {
    throw new SyntaxError(`Cannot parse "${text}" as a quantity: expecting e.g. "50m" or "64Mi"`);
  }
  const number = Number(match[1]);
  let multiplier: number | undefined;
  if (match[2] !== undefined) {
    multiplier = 10 ** Number(match[2].slice(1));
  } else {
    const suffix = match[3] ?? "";
    multiplier = BINARY_SUFFIX[suffix] ?? DECIMAL_SUFFIX[suffix];
  }
  if (multiplier === undefined) {
    throw new SyntaxError(
      `Cannot parse "${text}" as a quantity: unknown suffix "${match[3] ?? ""}"`,
    );
  }
  const value = number * multiplier;
  if (!Number.isFinite(value)) throw new SyntaxError(`Cannot use quantity "${text}": too large`);
  if (value < 0 || text.startsWith("-")) {
    throw new SyntaxError(`Cannot use quantity "${text}": it must not be negative`);
  }
  return value;
}

/** Image pull policies accepted by Kubernetes. */
export const PULL_POLICIES: readonly string[] = ["Always", "IfNotPresent", "Never"];

/**
 * Checks an image pull policy (case-sensitive, as the API server does).
 *
 * @returns the policy
 * @throws {SyntaxError} for anything but `Always`, `IfNotPresent`, `Never`
 */
export function parsePullPolicy(text: string): string {
  if (PULL_POLICIES.includes(text)) return text;
  throw new SyntaxError(
    `Cannot use "${text}" as an image pull policy: expecting Always, IfNotPresent or Never`,
  );
}

/**
 * Checks an emptyDir medium: `""` (node disk) or `Memory` (tmpfs). `HugePages` is refused: it
 * cannot hold an executable copied with ordinary writes.
 *
 * @returns the medium
 * @throws {SyntaxError} for any other text
 */
export function parseMedium(text: string): string {
  if (text === "" || text === "Memory") return text;
  throw new SyntaxError(`Cannot use "${text}" as a volume medium: expecting "" or "Memory"`);
}
