/**
 * The `piggysec.com/piggy-uid` annotation: per wrapped container, its UID (the launcher's
 * `PIGGY_UID`) mapped to the signature of its command. `/mutate` writes it, `/secret` checks a
 * launcher against it. One parse and one format, wire compatible with annotations Go Piggy wrote.
 *
 * @module
 */

import { PIGGY_UID_ANNOTATION } from "../constants.ts";

/** What {@link parseUidAnnotation} returns. */
export interface ParsedUidAnnotation {
  /** UID → signature; empty when the annotation is absent or unusable. */
  signatures: Map<string, string>;
  /** Why (part of) the annotation was ignored, when it was. */
  problem?: string;
}

/**
 * Parses the annotation. It is a JSON object of strings; anything else is unusable and yields an
 * empty map (nothing matches it), and non-string entries are dropped. The caller decides whether
 * the problem is worth a warning: `/mutate` rewrites the annotation anyway.
 *
 * @param text the annotation value (may be undefined)
 */
export function parseUidAnnotation(text: string | undefined): ParsedUidAnnotation {
  const signatures = new Map<string, string>();
  if (text === undefined || text === "") return { signatures };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { signatures, problem: `Cannot parse annotation "${PIGGY_UID_ANNOTATION}": not JSON` };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return {
      signatures,
      problem: `Cannot parse annotation "${PIGGY_UID_ANNOTATION}": not a JSON object`,
    };
  }
  let skipped = 0;
  for (const [uid, signature] of Object.entries(parsed)) {
    if (typeof signature === "string") signatures.set(uid, signature);
    else skipped++;
  }
  if (skipped > 0) {
    return {
      signatures,
      problem: `Annotation "${PIGGY_UID_ANNOTATION}" has ${skipped} non-string entries: ignored`,
    };
  }
  return { signatures };
}

/**
 * Formats the annotation as Go's `json.Marshal` of a string map does for the UIDs and signatures
 * Piggy writes (hex text): keys sorted, no spaces.
 *
 * @param signatures UID → signature
 */
export function formatUidAnnotation(signatures: Readonly<Record<string, string>>): string {
  const sorted: Record<string, string> = {};
  for (const uid of Object.keys(signatures).sort()) sorted[uid] = signatures[uid] ?? "";
  return JSON.stringify(sorted);
}
