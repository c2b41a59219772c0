/**
 * Image pull secrets: the `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`, `{"auths": …}`)
 * and `kubernetes.io/dockercfg` (`.dockercfg`, the map itself) formats, and which of their entries
 * apply to an image, as the kubelet matches them:
 * - a key is a registry host with optional port and path (`registry.example.com:5000/team`), or a
 *   URL (`https://index.docker.io/v1/`); the scheme is ignored;
 * - host labels may be globs (`*.example.com` matches `a.example.com`, not `a.b.example.com`);
 * - the port must match exactly, and a path must be a prefix of the image's repository path;
 * - Docker Hub keys (`docker.io`, `index.docker.io`, `registry-1.docker.io`, with or without
 *   `/v1/`) all match `docker.io` images.
 * More specific keys (longer) come first. Entries carry `username` + `password` or `auth`
 * (base64 `user:password`); entries with neither are skipped.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { RegistryCredential } from "./auth.ts";
import { DOCKER_HUB, type ImageReference } from "./reference.ts";

/** One usable entry of a pull secret. */
export interface DockerConfigEntry {
  /** The key as written in the secret. */
  key: string;
  credential: RegistryCredential;
}

const DOCKER_HUB_KEYS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

function decodeEntry(key: string, value: unknown): DockerConfigEntry | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const fields = value as Record<string, unknown>;
  if (
    typeof fields.username === "string" && typeof fields.password === "string" &&
    fields.username !== ""
  ) {
    return { key, credential: { username: fields.username, password: fields.password } };
  }
  if (typeof fields.auth === "string" && fields.auth !== "") {
    const text = Buffer.from(fields.auth, "base64").toString("utf8");
    const colon = text.indexOf(":");
    if (colon > 0) {
      return {
        key,
        credential: { username: text.slice(0, colon), password: text.slice(colon + 1) },
      };
    }
  }
  return undefined;
}

/**
 * The usable entries of one pull secret's data.
 *
 * @param type the Secret's `type`
 * @param data the Secret's `data` (base64 values)
 * @returns entries in key order; `[]` for other secret types or unreadable data
 */
export function parsePullSecret(
  type: string | undefined,
  data: Record<string, string> | undefined,
): DockerConfigEntry[] {
  let raw: string | undefined;
  let nested = false;
  if (type === "kubernetes.io/dockerconfigjson" && data?.[".dockerconfigjson"]) {
    raw = data[".dockerconfigjson"];
    nested = true;
  } else if (type === "kubernetes.io/dockercfg" && data?.[".dockercfg"]) {
    raw = data[".dockercfg"];
  }
  if (raw === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, "base64").toString("utf8"));
  } catch {
    return [];
  }
  const map = nested && typeof parsed === "object" && parsed !== null
    ? (parsed as Record<string, unknown>).auths
    : parsed;
  if (typeof map !== "object" || map === null || Array.isArray(map)) return [];
  return Object.entries(map as Record<string, unknown>)
    .map(([key, value]) => decodeEntry(key, value))
    .filter((entry): entry is DockerConfigEntry => entry !== undefined);
}

interface ParsedKey {
  host: string;
  port: string;
  path: string;
}

function parseKey(key: string): ParsedKey | undefined {
  let text = key.trim().replace(/^[a-z]+:\/\//i, "");
  if (text === "") return undefined;
  const slash = text.indexOf("/");
  let path = slash === -1 ? "" : text.slice(slash + 1);
  text = slash === -1 ? text : text.slice(0, slash);
  let host = text.toLowerCase();
  let port = "";
  const bracket = /^(\[[^\]]+\])(?::(\d+))?$/.exec(host);
  if (bracket) {
    host = bracket[1] ?? "";
    port = bracket[2] ?? "";
  } else if (host.includes(":")) {
    port = host.slice(host.lastIndexOf(":") + 1);
    host = host.slice(0, host.lastIndexOf(":"));
  }
  path = path.replace(/\/+$/, "");
  if (DOCKER_HUB_KEYS.has(host) && port === "") {
    host = DOCKER_HUB;
    if (path === "v1" || path === "v2") path = "";
  }
  return { host, port, path };
}

function hostMatches(pattern: string, host: string): boolean {
  const wanted = pattern.split(".");
  const actual = host.split(".");
  if (wanted.length !== actual.length) return false;
  return wanted.every((label, i) => {
    const value = actual[i] ?? "";
    if (!label.includes("*")) return label === value;
    const regex = new RegExp(
      `^${
        label.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^.]*")
      }$`,
    );
    return regex.test(value);
  });
}

/**
 * The entries that apply to an image, most specific first.
 *
 * @param entries entries of the pull secrets, in the order the secrets were given
 * @param reference the parsed image reference
 */
export function credentialsFor(
  entries: readonly DockerConfigEntry[],
  reference: ImageReference,
): RegistryCredential[] {
  const target = parseKey(reference.registry);
  if (!target) return [];
  const matches: Array<{ entry: DockerConfigEntry; score: number; order: number }> = [];
  entries.forEach((entry, order) => {
    const key = parseKey(entry.key);
    if (!key || key.port !== target.port || !hostMatches(key.host, target.host)) return;
    if (
      key.path !== "" && reference.repository !== key.path &&
      !reference.repository.startsWith(`${key.path}/`)
    ) return;
    matches.push({ entry, score: key.host.length + key.path.length, order });
  });
  matches.sort((a, b) => b.score - a.score || a.order - b.order);
  const seen = new Set<string>();
  const result: RegistryCredential[] = [];
  for (const { entry } of matches) {
    const id = `${entry.credential.username}\0${entry.credential.password}`;
    if (seen.has(id)) continue;
    seen.add(id);
    result.push(entry.credential);
  }
  return result;
}
