/**
 * Which `piggy-address` values a pod may use: the launcher sends the pod's service-account token
 * to that address, so it must be one the operator listed (`PIGGY_ALLOWED_ADDRESSES`). Addresses are
 * compared as parsed URLs: `https` only, no user info, query or fragment; the host lower-cased, the
 * default port dropped, trailing slashes of the path dropped (the launcher appends `/secret` to the
 * path without them). No DNS lookup is made.
 *
 * @module
 */

/** Name of the webhook option that lists the allowed addresses. */
export const ALLOWED_ADDRESSES_OPTION = "PIGGY_ALLOWED_ADDRESSES";

/**
 * The normal form of a webhook address, e.g. `https://piggy.svc:8443/base`.
 *
 * @throws {SyntaxError} not a URL, not `https`, or with user info, a query or a fragment
 */
export function normalizeAddress(text: string): string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new SyntaxError(`"${text}" is not a URL`);
  }
  if (url.protocol !== "https:") throw new SyntaxError(`"${text}" is not an https URL`);
  if (url.username !== "" || url.password !== "") {
    throw new SyntaxError(`"${text}" has user info`);
  }
  if (url.search !== "" || url.hash !== "" || text.includes("?") || text.includes("#")) {
    throw new SyntaxError(`"${text}" has a query or a fragment`);
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
}

/**
 * Parses `PIGGY_ALLOWED_ADDRESSES`: comma-separated URLs, each normalised.
 *
 * @throws {SyntaxError} naming the first entry that is not a valid address
 */
export function parseAllowedAddresses(text: string): readonly string[] {
  const entries = text.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "");
  return [...new Set(entries.map(normalizeAddress))];
}

/**
 * The last address {@link normalizeAddress} accepted, and its normal form: the pods of a cluster
 * mostly use the one webhook address, and parsing it costs a URL parse per admission.
 */
let recentAddress: string | undefined;
let recentNormal = "";

function normalizedRecently(address: string): string {
  if (address !== recentAddress) {
    recentNormal = normalizeAddress(address);
    recentAddress = address;
  }
  return recentNormal;
}

/**
 * Why a pod's address is refused, or `undefined` when it is allowed.
 *
 * @param address the pod's resolved `piggy-address`
 * @param allowed the normalised allowed addresses (empty: nothing is allowed)
 */
export function addressRefusal(address: string, allowed: readonly string[]): string | undefined {
  if (allowed.length === 0) {
    return `Cannot use piggy-address "${address}": ${ALLOWED_ADDRESSES_OPTION} is not set on ` +
      "the webhook, so no proxy address is allowed";
  }
  let normal: string;
  try {
    normal = normalizedRecently(address);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return `Cannot use piggy-address: ${reason} (${ALLOWED_ADDRESSES_OPTION})`;
  }
  if (allowed.includes(normal)) return undefined;
  return `Cannot use piggy-address "${address}": not in ${ALLOWED_ADDRESSES_OPTION}`;
}
