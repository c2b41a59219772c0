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
  signatures: ReadonlyMap<string, string>;
  /** Why (part of) the annotation was ignored, when it was. */
  problem?: string;
}

/**
 * Parses the annotation. It is a JSON object of strings; anything else is unusable and yields an
 * empty map (nothing matches it), and non-string entries are dropped. The caller decides whether
 * the problem is worth a warning: `/mutate` rewrites the annotation anyway.
 *
 * The annotation as Piggy writes it (`{"<uid>":"<signature>",…}`: no spaces, no escapes) is read
 * by a scan straight into the map: `JSON.parse` would build an object keyed by random UIDs, and
 * every new set of keys costs V8 new hidden classes (a few µs a parse, and garbage). Anything
 * else goes through `JSON.parse`; both give the same map (a property test holds them to it).
 *
 * @param text the annotation value (may be undefined)
 */
export function parseUidAnnotation(text: string | undefined): ParsedUidAnnotation {
  if (text === undefined || text === "") return { signatures: new Map() };
  const scanned = scanPlain(text);
  return scanned === undefined ? parseJson(text) : { signatures: scanned };
}

/** A JSON string without escapes (its text is its value), then `:`, then another. */
// JSON strings hold no raw control characters: such text is left to JSON.parse (which refuses it).
// deno-lint-ignore no-control-regex
const PLAIN_ENTRY = /"([^"\\\u0000-\u001f]*)":"([^"\\\u0000-\u001f]*)"/y;

/** A key `JSON.parse` would order first (an array index): such text goes through `JSON.parse`. */
const INDEX_KEY = /^(?:0|[1-9][0-9]{0,9})$/;

/** The map of `{"k":"v",…}` without whitespace or escapes, else `undefined`. */
function scanPlain(text: string): Map<string, string> | undefined {
  if (text.charCodeAt(0) !== 0x7b || text.charCodeAt(text.length - 1) !== 0x7d) return undefined;
  const signatures = new Map<string, string>();
  const end = text.length - 1;
  let at = 1;
  while (at < end) {
    PLAIN_ENTRY.lastIndex = at;
    const match = PLAIN_ENTRY.exec(text);
    if (match === null) return undefined;
    const uid = match[1]!;
    if (INDEX_KEY.test(uid) && Number(uid) < 4294967295) return undefined;
    signatures.set(uid, match[2]!);
    at = PLAIN_ENTRY.lastIndex;
    if (at < end) {
      if (text.charCodeAt(at) !== 0x2c || at + 1 === end) return undefined;
      at++;
    }
  }
  return signatures;
}

/** {@link parseUidAnnotation} of any text, through `JSON.parse`. */
function parseJson(text: string): ParsedUidAnnotation {
  const signatures = new Map<string, string>();
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

/** What `JSON.stringify` escapes in a string: controls, `"`, `\\` and (lone) surrogates. */
// deno-lint-ignore no-control-regex
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

/** Appends `text` as a JSON string: quoted as it is when nothing in it needs an escape. */
function pushJsonString(parts: string[], text: string): void {
  if (NEEDS_ESCAPE.test(text)) parts.push(JSON.stringify(text));
  else parts.push('"', text, '"');
}

/**
 * Formats the annotation as Go's `json.Marshal` of a string map does: keys sorted, no spaces. The
 * text is made by one `join` (a flat string: a V8 cons string, which `+` would make, sends
 * `JSON.stringify` of the patch that carries it off its fast path); a UID or signature that needs
 * no escape (all that Piggy writes) is quoted without a `JSON.stringify` call (~0.2 µs each).
 *
 * @param signatures UID → signature
 */
export function formatUidAnnotation(signatures: ReadonlyMap<string, string>): string {
  const parts: string[] = ["{"];
  for (const uid of [...signatures.keys()].sort()) {
    if (parts.length > 1) parts.push(",");
    pushJsonString(parts, uid);
    parts.push(":");
    pushJsonString(parts, signatures.get(uid)!);
  }
  parts.push("}");
  return parts.join("");
}
