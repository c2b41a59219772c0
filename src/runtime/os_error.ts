/**
 * The errno name in a network error of Deno's clients (`fetch`, `Deno.connect`), which give the
 * OS error as `(os error N)` in the message where Node gives `code`.
 *
 * @module
 */

/** Errno names of the OS errors Deno's clients report (Linux numbers). */
const OS_ERROR_CODES: Record<string, string> = {
  "101": "ENETUNREACH",
  "104": "ECONNRESET",
  "110": "ETIMEDOUT",
  "111": "ECONNREFUSED",
  "113": "EHOSTUNREACH",
};

/** The errno name in a Deno network error message, when there is one. */
export function osErrorCode(message: string): string | undefined {
  const number = /\(os error (\d+)\)/.exec(message)?.[1];
  return number === undefined ? undefined : OS_ERROR_CODES[number];
}
