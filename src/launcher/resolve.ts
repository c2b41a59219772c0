/**
 * Builds the application's environment: `piggy:KEY` values replaced by the secret's values, the
 * launcher's own `PIGGY_*` settings removed, the original order kept. Pure.
 *
 * @module
 */

import { LAUNCHER_ONLY_KEYS, REFERENCE_PREFIX, RESERVED_KEYS } from "../constants.ts";
import { referenceKey } from "../pod/container_refs.ts";

/** Environment variables as ordered name/value pairs. */
export type EnvEntries = ReadonlyArray<readonly [string, string]>;

/** The child environment and what could not be resolved. */
export interface ChildEnvironment {
  /** Name/value pairs in the original order, without reserved and launcher-only names. */
  env: Array<[string, string]>;
  /** Names of the variables whose value was replaced by a secret value. */
  resolved: string[];
  /** Names of the variables whose value still starts with `piggy:` (any case). */
  unresolved: string[];
  /**
   * Names of the variables whose secret value holds a NUL byte, which no environment can carry:
   * they keep their reference and are also listed in `unresolved`.
   */
  invalid: string[];
}

/** True when the name is piggy-env's own configuration and never reaches the application. */
export function isLauncherVariable(name: string): boolean {
  return RESERVED_KEYS.has(name) || LAUNCHER_ONLY_KEYS.has(name);
}

/**
 * Replaces references by secret values and drops the launcher's own variables. Reserved keys in
 * `secrets` (such as `PIGGY_ALLOWED_SA`) are never used as values.
 *
 * @param env the launcher's environment, in order
 * @param secrets the fetched key/value map (empty when the fetch failed)
 * @returns a new list; `env` and `secrets` are not modified
 */
export function buildChildEnvironment(
  env: EnvEntries,
  secrets: Readonly<Record<string, string>>,
): ChildEnvironment {
  const result: ChildEnvironment = { env: [], resolved: [], unresolved: [], invalid: [] };
  for (const [name, original] of env) {
    if (isLauncherVariable(name)) continue;
    let value = original;
    const key = referenceKey(original);
    const secret = key && !RESERVED_KEYS.has(key) && Object.hasOwn(secrets, key)
      ? secrets[key] as string
      : undefined;
    if (secret !== undefined && !secret.includes("\0")) {
      value = secret;
      result.resolved.push(name);
    } else if (secret !== undefined) {
      result.invalid.push(name);
      result.unresolved.push(name);
    } else if (original.slice(0, REFERENCE_PREFIX.length).toLowerCase() === REFERENCE_PREFIX) {
      result.unresolved.push(name);
    }
    result.env.push([name, value]);
  }
  return result;
}
