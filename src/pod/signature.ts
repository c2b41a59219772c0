/**
 * The command signature shared by `/mutate` (written into `piggysec.com/piggy-uid`), `/secret`
 * (compared) and piggy-env (computed over its own argv after `--`).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { signatureText } from "./signature_text.ts";

/**
 * Lowercase hex SHA-256 of the command joined with single spaces and trimmed of Unicode whitespace
 * at both ends (Go `strings.TrimSpace`), as Go Piggy computes it. Synchronous (`node:crypto` works
 * under Deno and Node), so the mutation stays a plain function.
 *
 * @example
 * ```ts
 * commandSignature(["ls", "-la"]);
 * // "1de700c29687cae34561545f50d3c8b3d9afe88e04cc11069f8a6dc6e4ce9464"
 * ```
 *
 * @param argv the original command vector (without the launcher and `--`)
 */
export function commandSignature(argv: readonly string[]): string {
  return createHash("sha256").update(signatureText(argv), "utf8").digest("hex");
}
