/**
 * The command signature shared by `/mutate` (written into `piggysec.com/piggy-uid`), `/secret`
 * (compared) and piggy-env (computed over its own argv after `--`).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { signatureText } from "./signature_text.ts";

/**
 * The signatures of recent commands: the containers of a pod, and the pods of one workload, mostly
 * run the same few commands, and a hash costs more than a lookup (~2.5 µs per container under
 * Deno). Bounded: at most {@link MAX_REMEMBERED} texts of at most {@link MAX_REMEMBERED_CHARS}
 * characters (≤ 512 K characters), the oldest dropped first.
 */
const recent = new Map<string, string>();
const MAX_REMEMBERED = 256;
const MAX_REMEMBERED_CHARS = 2048;

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
  const text = signatureText(argv);
  const known = recent.get(text);
  if (known !== undefined) return known;
  const signature = createHash("sha256").update(text, "utf8").digest("hex");
  if (text.length <= MAX_REMEMBERED_CHARS) {
    if (recent.size >= MAX_REMEMBERED) recent.delete(recent.keys().next().value!);
    recent.set(text, signature);
  }
  return signature;
}
