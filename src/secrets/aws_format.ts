/**
 * Pure rules of the AWS secret sources: how `aws-secret-version` selects a Secrets Manager version,
 * how a `SecretString` becomes a flat map, and how SSM parameter names become keys. No network.
 *
 * @module
 */

import { DEFAULT_VERSION_STAGE } from "../constants.ts";
import { SecretSourceError } from "../errors.ts";
import type { Logger } from "../log.ts";

/** The GetSecretValue version selector: exactly one of the two fields is set. */
export type VersionSelector = { VersionId: string } | { VersionStage: string };

/**
 * Shape of a Secrets Manager version id: 32–64 characters, only hex digits and `-`, with at least 32
 * hex digits. AWS-generated ids are UUIDs (`6f8723a0-bd71-4a5a-9a5d-7f6f2e2bd3c1`); a
 * `ClientRequestToken` chosen by the writer is 32–64 characters and in practice a UUID as well.
 */
const VERSION_ID_SHAPE = /^[0-9a-fA-F-]{32,64}$/;

/**
 * Chooses `VersionId` or `VersionStage` for `aws-secret-version` (Go Piggy always sent a stage,
 * so pinned version ids failed at AWS).
 *
 * Rule: the value (trimmed) is a `VersionId` when it is 32–64 characters of hex digits and `-` with
 * at least 32 hex digits (a UUID with or without dashes); any other non-empty value is a
 * `VersionStage`; empty means the stage `AWSCURRENT`.
 *
 * @param version the configured version ("" when unset)
 */
export function versionSelector(version: string): VersionSelector {
  const value = version.trim();
  if (value === "") return { VersionStage: DEFAULT_VERSION_STAGE };
  if (VERSION_ID_SHAPE.test(value) && value.replace(/-/g, "").length >= 32) {
    return { VersionId: value };
  }
  return { VersionStage: value };
}

const JSON_SPACE = new Set([" ", "\t", "\n", "\r"]);

function skipSpace(text: string, index: number): number {
  while (JSON_SPACE.has(text[index] ?? "")) index++;
  return index;
}

/** Index just past the string literal that starts at `index`. */
function endOfString(text: string, index: number): number {
  for (let i = index + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i + 1;
  }
  return text.length;
}

/**
 * The source text of each member value of a JSON object that `JSON.parse` already accepted, so
 * numbers keep their exact spelling (`1.10`, `1e3`, integers beyond 2^53) instead of being
 * re-serialised. Later duplicates win, as in `JSON.parse`.
 */
function rawMemberTexts(text: string): Map<string, string> {
  const raw = new Map<string, string>();
  let i = skipSpace(text, skipSpace(text, 0) + 1);
  while (i < text.length && text[i] !== "}") {
    const keyEnd = endOfString(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = skipSpace(text, skipSpace(text, keyEnd) + 1);
    const start = i;
    let depth = 0;
    while (i < text.length) {
      const char = text[i];
      if (char === '"') {
        i = endOfString(text, i);
        continue;
      }
      if (char === "{" || char === "[") depth++;
      else if (char === "}" || char === "]") {
        if (depth === 0) break;
        depth--;
      } else if (char === "," && depth === 0) break;
      i++;
    }
    raw.set(key, text.slice(start, i).replace(/[ \t\n\r]+$/, ""));
    if (text[i] === ",") i = skipSpace(text, i + 1);
  }
  return raw;
}

/**
 * Converts a `SecretString` into a flat map. The text must be a JSON object; string values are kept
 * as they are, every other value (number, boolean, null, object, array) becomes its JSON text as
 * written in the secret (numbers keep their exact spelling).
 *
 * @param secretName used in the error message
 * @param text the `SecretString`
 * @throws {SecretSourceError} code `InvalidSecretFormat` for invalid JSON or a non-object; the
 * message never contains the secret text
 */
export function parseSecretString(secretName: string, text: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The SyntaxError message quotes part of the text, so it is deliberately not kept as cause.
    throw new SecretSourceError(
      `Cannot load secret "${secretName}": SecretString is not valid JSON`,
      { code: "InvalidSecretFormat" },
    );
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    const kind = parsed === null
      ? "null"
      : Array.isArray(parsed)
      ? "an array"
      : `a ${typeof parsed}`;
    throw new SecretSourceError(
      `Cannot load secret "${secretName}": SecretString must be a JSON object, got ${kind}`,
      { code: "InvalidSecretFormat" },
    );
  }
  const raw = rawMemberTexts(text);
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    values[key] = typeof value === "string" ? value : raw.get(key) ?? JSON.stringify(value);
  }
  return values;
}

/**
 * The values of a `GetSecretValue` answer (the SDK's or the light client's), with one debug line
 * (never values).
 *
 * @param subject the error subject, e.g. `Cannot load secret "app/db"`
 * @throws {SecretSourceError} `InvalidSecretFormat` (see {@link parseSecretString}, or no
 *   `SecretString`), `BinarySecretNotSupported`
 */
export function secretValuesOf(
  query: { name: string; region: string },
  subject: string,
  output: { SecretString?: unknown; SecretBinary?: unknown },
  attempts: number | undefined,
  logger: Logger | undefined,
): Record<string, string> {
  if (typeof output.SecretString === "string") {
    const values = parseSecretString(query.name, output.SecretString);
    logger?.debug("Secret loaded", {
      secret_name: query.name,
      region: query.region,
      keys: Object.keys(values).length,
      attempts,
    });
    return values;
  }
  if (output.SecretBinary !== undefined) {
    throw new SecretSourceError(`${subject}: binary secrets are not supported`, {
      code: "BinarySecretNotSupported",
    });
  }
  throw new SecretSourceError(`${subject}: the secret version has no SecretString`, {
    code: "InvalidSecretFormat",
  });
}

/** A parameter as returned by GetParametersByPath (only the fields used here). */
export interface NamedParameter {
  /** Full parameter name, e.g. `/app/prod/DB_HOST`. */
  Name?: string | undefined;
  /** Value (decrypted for SecureString). */
  Value?: string | undefined;
}

/**
 * Adds parameters to `into` under their key, the last element of the name (`/app/prod/DB_HOST` →
 * `DB_HOST`). Values are kept verbatim (a StringList stays comma-joined).
 *
 * @param path the requested path, for error messages
 * @param parameters one page of parameters
 * @param into key → value collected so far
 * @param origins key → full parameter name collected so far (to name both sides of a collision)
 * @throws {SecretSourceError} code `ParameterNameCollision` when two parameters share the last
 * element (Go Piggy let the last one win silently)
 */
export function addParameters(
  path: string,
  parameters: readonly NamedParameter[],
  into: { values: Record<string, string>; origins: Map<string, string> },
): void {
  for (const parameter of parameters) {
    const name = parameter.Name;
    if (name === undefined || parameter.Value === undefined) continue;
    const key = name.slice(name.lastIndexOf("/") + 1);
    if (key === "") continue;
    const previous = into.origins.get(key);
    if (previous !== undefined && previous !== name) {
      const [first, second] = [previous, name].sort();
      throw new SecretSourceError(
        `Cannot load parameters under "${path}": "${first}" and "${second}" both map to key "${key}"`,
        { code: "ParameterNameCollision" },
      );
    }
    into.origins.set(key, name);
    into.values[key] = parameter.Value;
  }
}

/** The input of one `GetParametersByPath` page, as both clients send it. */
export interface ParameterPageInput {
  Path: string;
  Recursive: true;
  WithDecryption: true;
  MaxResults: number;
  NextToken?: string;
}

/** Number of `GetParametersByPath` results per page; the API maximum. */
export const SSM_PAGE_SIZE = 10;

/**
 * Every parameter under `query.path`, page after page (at most `maxPages`), by key (see
 * {@link addParameters}), with one debug line (never values).
 *
 * @param readPage one `GetParametersByPath` call; it maps its own failures
 * @throws {SecretSourceError} `TooManyParameterPages`, `ParameterNameCollision`, or what
 *   `readPage` threw
 */
export async function readParameterPages(
  query: { path: string; region: string },
  subject: string,
  maxPages: number,
  logger: Logger | undefined,
  readPage: (
    input: ParameterPageInput,
  ) => Promise<
    { Parameters?: readonly NamedParameter[] | undefined; NextToken?: string | undefined }
  >,
): Promise<Record<string, string>> {
  const path = query.path;
  const collected = { values: {} as Record<string, string>, origins: new Map<string, string>() };
  let nextToken: string | undefined;
  let pages = 0;
  do {
    if (pages >= maxPages) {
      throw new SecretSourceError(`${subject}: more than ${maxPages * SSM_PAGE_SIZE} parameters`, {
        code: "TooManyParameterPages",
      });
    }
    const output = await readPage({
      Path: path,
      Recursive: true,
      WithDecryption: true,
      MaxResults: SSM_PAGE_SIZE,
      ...(nextToken === undefined ? {} : { NextToken: nextToken }),
    });
    pages += 1;
    addParameters(path, output.Parameters ?? [], collected);
    nextToken = output.NextToken || undefined;
  } while (nextToken !== undefined);
  logger?.debug("Parameters loaded", {
    ssm_parameter_path: path,
    region: query.region,
    keys: collected.origins.size,
    pages,
  });
  return collected.values;
}
