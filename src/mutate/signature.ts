/**
 * The command signature shared by `/mutate` (written into `piggysec.com/piggy-uid`), `/secret`
 * (compared) and piggy-env (computed over its own argv after `--`).
 *
 * @module
 */

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/**
 * Signatures of recent commands. Pods of one workload share their commands, and a Web Crypto digest
 * is an asynchronous operation that costs far more than the lookup, so `/mutate` keeps the last
 * {@link CACHE_SIZE} results of commands up to {@link CACHE_MAX_TEXT} characters (commands are not
 * secret; they are in the pod spec).
 */
const CACHE_SIZE = 1024;
/** Longer commands are hashed every time: pod authors must not be able to fill memory. */
const CACHE_MAX_TEXT = 4096;
const cache = new Map<string, Promise<string>>();

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  let hex = "";
  for (const byte of new Uint8Array(digest)) hex += HEX[byte];
  return hex;
}

/**
 * Lowercase hex SHA-256 of the command joined with single spaces and trimmed of Unicode whitespace
 * at both ends (Go `strings.TrimSpace`), as Go Piggy computes it.
 *
 * @example
 * ```ts
 * await commandSignature(["ls", "-la"]);
 * // "1de700c29687cae34561545f50d3c8b3d9afe88e04cc11069f8a6dc6e4ce9464"
 * ```
 *
 * @param argv the original command vector (without the launcher and `--`)
 */
export function commandSignature(argv: readonly string[]): Promise<string> {
  const text = trimGoSpace(argv.join(" "));
  if (text.length > CACHE_MAX_TEXT) return sha256Hex(text);
  let signature = cache.get(text);
  if (signature === undefined) {
    signature = sha256Hex(text);
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
    cache.set(text, signature);
  }
  return signature;
}

// Go's unicode.IsSpace: ASCII \t \n \v \f \r and space, U+0085, U+00A0 and the Unicode White_Space
// characters of category Z. JavaScript's \s also includes U+FEFF (a BOM), which Go keeps.
const GO_SPACE = new Set([
  "\t",
  "\n",
  "\v",
  "\f",
  "\r",
  " ",
  "\u0085",
  "\u00a0",
  "\u1680",
  ..."\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a",
  "\u2028",
  "\u2029",
  "\u202f",
  "\u205f",
  "\u3000",
]);

/** Go `strings.TrimSpace`, in linear time (pod authors control the text). */
function trimGoSpace(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && GO_SPACE.has(text[start]!)) start++;
  while (end > start && GO_SPACE.has(text[end - 1]!)) end--;
  return text.slice(start, end);
}
