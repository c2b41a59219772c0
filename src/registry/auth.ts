/**
 * Registry authentication pieces: `WWW-Authenticate` challenges (Basic and Bearer with realm,
 * service and scope), `Authorization` values, and a bounded cache of Bearer tokens keyed by realm,
 * service, scope and which credential obtained them.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";

/** A user name and password for one registry (from a pull secret, or ECR's `AWS` user). */
export interface RegistryCredential {
  username: string;
  password: string;
}

/** One parsed challenge. */
export interface AuthChallenge {
  /** Lower-case scheme: `basic` or `bearer` (others are kept so the caller can name them). */
  scheme: string;
  /** Parameters with lower-case names (`realm`, `service`, `scope`). */
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header into its challenges (RFC 9110: comma-separated, parameters
 * as `name=token` or `name="quoted"`).
 */
export function parseChallenges(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  const pattern =
    /\s*([A-Za-z][\w!#$%&'*+.^`|~-]*)(?:\s+|$)|\s*([\w!#$%&'*+.^`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*,?/y;
  let current: AuthChallenge | undefined;
  let index = 0;
  while (index < header.length) {
    if (header[index] === "," || header[index] === " ") {
      index++;
      continue;
    }
    pattern.lastIndex = index;
    const match = pattern.exec(header);
    if (!match || match[0] === "") break;
    index = pattern.lastIndex;
    if (match[2] !== undefined && current) {
      const raw = match[3] ?? "";
      const value = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, "$1") : raw;
      current.params[match[2].toLowerCase()] = value;
    } else if (match[1] !== undefined) {
      current = { scheme: match[1].toLowerCase(), params: {} };
      challenges.push(current);
    }
  }
  return challenges;
}

/** `Basic …` for a credential. */
export function basicAuthorization(credential: RegistryCredential): string {
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString("base64")}`;
}

/** A short fingerprint naming a credential in cache keys (never the credential itself). */
export function credentialFingerprint(credential: RegistryCredential | undefined): string {
  if (!credential) return "anonymous";
  return createHash("sha256").update(credential.username).update("\0").update(credential.password)
    .digest("hex").slice(0, 32);
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Bearer tokens by realm, service, scope and credential; bounded, expired entries dropped. */
export class TokenCache {
  readonly #entries = new Map<string, CachedToken>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(options: { max?: number; now?: () => number } = {}) {
    this.#max = options.max ?? 256;
    this.#now = options.now ?? Date.now;
  }

  get(key: string): string | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.token;
  }

  /** Keeps a token for `expiresInSeconds` less a margin (at least 0). */
  set(key: string, token: string, expiresInSeconds: number): void {
    const lifetimeMs = Math.max(0, expiresInSeconds - 10) * 1000;
    if (lifetimeMs === 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, { token, expiresAt: this.#now() + lifetimeMs });
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }
}
