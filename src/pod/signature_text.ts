/**
 * The text a command signature hashes (see `commandSignature` in `./signature.ts`), apart from the
 * hash, so piggy-env can hash it with WebCrypto and load no `node:crypto` on its way to the app.
 *
 * @module
 */

/**
 * The command joined with single spaces and trimmed of Unicode whitespace at both ends (Go
 * `strings.TrimSpace`), as Go Piggy hashes it.
 */
export function signatureText(argv: readonly string[]): string {
  return trimGoSpace(argv.join(" "));
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
