/**
 * Integrity with `$(VAR)`: the kubelet expands `$(NAME)` (and `$$` → `$`) in `command` and `args`
 * before the launcher runs, so the launcher's argv is not the command admission signed. The
 * mutation therefore hands the launcher the command as written (the template) and the variables it
 * may expand, in `PIGGY_COMMAND_TEMPLATE`; the launcher proves that its argv is that template
 * expanded with its own environment, and then sends the template's signature (the one recorded in
 * `piggysec.com/piggy-uid`). Any other argv keeps its own signature, which the webhook refuses.
 *
 * Only variables defined by a literal `value:` in the container spec are expanded, and only when
 * that value refers to no other variable than such ones: values from ConfigMaps, Secrets, the
 * downward API (annotations can be edited) or `envFrom` can change after admission and are read
 * again on every restart. Shared by `/mutate` and piggy-env (so it imports no package: the
 * launcher's graph stays relative files).
 *
 * @module
 */

/** The part of a container spec the literal variables come from. */
export interface EnvSpec {
  env?: ReadonlyArray<{ name: string; value?: string; valueFrom?: unknown } | undefined>;
}

/** What the mutation writes into `PIGGY_COMMAND_TEMPLATE`. */
export interface CommandTemplate {
  /** The command after the launcher's `--`, as written in the pod spec. */
  argv: string[];
  /** Names of the variables the launcher may expand (literal values). */
  vars: string[];
}

/** The character that starts a kubelet reference. */
const OPERATOR = "$";

/**
 * Expands a text as the kubelet expands `command`, `args` and env values: `$$` becomes `$`,
 * `$(NAME)` becomes `lookup(NAME)` or stays as written when that is undefined, an unclosed `$(`
 * and any other `$x` stay as written.
 */
export function expandKubeletReferences(
  input: string,
  lookup: (name: string) => string | undefined,
): string {
  let out = "";
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== OPERATOR || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const next = input[cursor + 1];
    let advance = 1;
    if (next === OPERATOR) {
      out += OPERATOR;
    } else if (next === "(") {
      const close = input.indexOf(")", cursor + 2);
      if (close === -1) {
        out += "$(";
      } else {
        const name = input.slice(cursor + 2, close);
        out += lookup(name) ?? `$(${name})`;
        advance = close - cursor;
      }
    } else {
      out += OPERATOR + next;
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

/** The names a text refers to with `$(NAME)`, by the kubelet's syntax. */
export function referencedNames(input: string): string[] {
  const names: string[] = [];
  expandKubeletReferences(input, (name) => {
    names.push(name);
    return undefined;
  });
  return names;
}

/**
 * The container's variables whose value is fixed by the spec: a literal `value:` (the last entry
 * of a name wins, as for the kubelet) that refers only to such variables defined before it.
 */
export function literalVariables(
  container: EnvSpec,
  options: { ignore?: string } = {},
): Set<string> {
  const literal = new Set<string>();
  for (const entry of container.env ?? []) {
    if (!entry?.name || entry.name === options.ignore) continue;
    const fixed = entry.valueFrom === undefined &&
      referencedNames(entry.value ?? "").every((name) => literal.has(name));
    if (fixed) literal.add(entry.name);
    else literal.delete(entry.name);
  }
  return literal;
}

/** True when the kubelet may change the text: it holds a `$$` or a `$(`. */
export function hasKubeletSyntax(argv: readonly string[]): boolean {
  return argv.some((arg) => arg.includes("$$") || arg.includes("$("));
}

/**
 * The template of a command and the container's literal variables as the value of
 * `PIGGY_COMMAND_TEMPLATE`, each `$` doubled: the kubelet expands env values too, and turns `$$`
 * back into `$`.
 */
export function formatCommandTemplate(argv: readonly string[], vars: Iterable<string>): string {
  const template: CommandTemplate = { argv: [...argv], vars: [...vars].sort() };
  return JSON.stringify(template).replaceAll("$", "$$$$");
}

/**
 * Parses `PIGGY_COMMAND_TEMPLATE`.
 *
 * @throws {SyntaxError} not a JSON object with string arrays `argv` and `vars`
 */
export function parseCommandTemplate(text: string): CommandTemplate {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SyntaxError("not JSON");
  }
  const record = parsed as Record<string, unknown> | null;
  const strings = (value: unknown): value is string[] =>
    Array.isArray(value) && value.every((item) => typeof item === "string");
  if (!record || typeof record !== "object" || !strings(record.argv) || !strings(record.vars)) {
    throw new SyntaxError('not an object with string arrays "argv" and "vars"');
  }
  return { argv: record.argv, vars: record.vars };
}

/**
 * The template expanded with `env`, using only the template's variables: what the kubelet turns
 * the template into when those variables hold their literal values.
 */
export function expandTemplate(
  template: CommandTemplate,
  env: (name: string) => string | undefined,
): string[] {
  const allowed = new Set(template.vars);
  return template.argv.map((arg) =>
    expandKubeletReferences(arg, (name) => (allowed.has(name) ? env(name) : undefined))
  );
}

/** True when `argv` is exactly the template expanded with `env` (see {@link expandTemplate}). */
export function matchesTemplate(
  argv: readonly string[],
  template: CommandTemplate,
  env: (name: string) => string | undefined,
): boolean {
  const expected = expandTemplate(template, env);
  return expected.length === argv.length && expected.every((arg, index) => arg === argv[index]);
}
