/**
 * What may leave the webhook from a fetched secret, and who may read it.
 *
 * @module
 */

import { ENV, RESERVED_KEYS } from "../constants.ts";

/**
 * Returns a copy of `values` without the reserved `PIGGY_*` keys (such as `PIGGY_ALLOWED_SA`):
 * they configure Piggy and never leave the webhook in a `/secret` answer.
 *
 * @param values the fetched secret
 */
export function withoutReservedKeys(
  values: Readonly<Record<string, string>>,
): Record<string, string> {
  // fromEntries defines own properties, so a key such as "__proto__" stays data.
  return Object.fromEntries(Object.entries(values).filter(([key]) => !RESERVED_KEYS.has(key)));
}

/**
 * Parses the secret's `PIGGY_ALLOWED_SA` key: comma-separated `namespace:serviceaccount` entries,
 * each trimmed, empty entries ignored (Go Piggy did not trim, so `"ns:a, ns:b"` refused `ns:b`).
 *
 * @param values the fetched secret
 * @returns the allowed entries; `undefined` when the key is absent (then only the
 * enforce-service-account setting decides); an empty list when the key is present but names nobody
 * (nobody is allowed)
 */
export function allowedServiceAccounts(
  values: Readonly<Record<string, string>>,
): string[] | undefined {
  if (!Object.hasOwn(values, ENV.ALLOWED_SA)) return undefined;
  const raw = values[ENV.ALLOWED_SA] ?? "";
  return raw.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "");
}
