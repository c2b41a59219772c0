/**
 * Reads an image's Entrypoint and Cmd from its registry (OCI Distribution API):
 * manifest (OCI or Docker schema 2) or index / manifest list → the manifest of each requested
 * platform → the config blob → `config.Entrypoint` and `config.Cmd`.
 *
 * - Authentication: anonymous first; a 401 challenge is answered with Basic or with a Bearer token
 *   from the challenge's realm (service and scope), using the first of the given credentials that
 *   the registry accepts. Tokens are cached until shortly before they expire.
 * - Redirects are followed by hand (at most 5, https only); `Authorization` is dropped as soon as
 *   one leaves the registry's origin (blob storage redirects) and never sent again on that chain.
 * - Content fetched by digest is verified against the digest.
 * - Results are cached (`src/lookup_cache.ts`): digest references until evicted, tags for a TTL, never
 *   `latest` or a pull policy of `Always`; simultaneous lookups of one key share one round trip.
 * - If the platforms a pod may run on disagree on Entrypoint/Cmd, the lookup fails: there is no
 *   single command to sign.
 *
 * @module
 */

import { createHash } from "node:crypto";
import {
  type AuthChallenge,
  basicAuthorization,
  credentialFingerprint,
  parseChallenges,
  type RegistryCredential,
  TokenCache,
} from "./auth.ts";
import { raceAbort } from "../abort.ts";
import { ImageLookupError } from "./errors.ts";
import { type LoadResult, LookupCache } from "../lookup_cache.ts";
import {
  formatImageReference,
  type ImageReference,
  manifestReference,
  parseImageReference,
} from "./reference.ts";
import {
  RegistryTransport,
  type RegistryTransportOptions,
  responseHeader,
  type TransportResponse,
} from "./transport.ts";

/** Media types of manifests this client reads. */
export const MEDIA_TYPES = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
} as const;

const ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerList,
  MEDIA_TYPES.dockerManifest,
].join(", ");

/** Default TTL of results looked up by tag. */
export const DEFAULT_TAG_TTL_MS = 5 * 60_000;

/** Default bound on how long one lookup (all its round trips) may take. */
export const DEFAULT_LOOKUP_TIMEOUT_MS = 5_000;

const MAX_REDIRECTS = 5;

/** An OS and CPU architecture (and variant) as image indexes name them. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** How a lookup was answered, for metrics. */
export type ImageLookupResult = LoadResult | "error";

/** What a pod needs from an image. */
export interface ImageCommand {
  /** `config.Entrypoint` (empty when unset). */
  entrypoint: string[];
  /** `config.Cmd` (empty when unset). */
  cmd: string[];
}

/** Options of {@link RegistryClient}. */
export interface RegistryClientOptions extends RegistryTransportOptions {
  /** Results kept. @default 1000 */
  cacheEntries?: number;
  /** How long a result looked up by tag is reused. @default DEFAULT_TAG_TTL_MS */
  tagTtlMs?: number;
  /**
   * Bound on one shared lookup (shared by every admission waiting for it; each caller also has its
   * own signal). @default DEFAULT_LOOKUP_TIMEOUT_MS
   */
  lookupTimeoutMs?: number;
  /**
   * Registries (as written in image names, e.g. `ghcr.io`, `123456789012.dkr.ecr.eu-west-1.amazonaws.com`)
   * that may be looked up; empty or absent: any.
   */
  allowedRegistries?: readonly string[];
  /** Clock in milliseconds. @default Date.now */
  now?: () => number;
  /** Told about every HTTP round trip (host and path only), for metrics and tests. */
  onRoundTrip?: (host: string, path: string, status: number) => void;
  /**
   * Told how each lookup was answered (`hit`, `coalesced`, `miss`) and, for a miss, whether the
   * registry lookup failed (`error`), for metrics.
   */
  onLookup?: (result: ImageLookupResult) => void;
}

/** Options of one lookup. */
export interface LookupOptions {
  /** Platforms the pod may run on. @default [linux/amd64] */
  platforms?: readonly Platform[];
  /** Credentials for the image's registry, tried in order; none: anonymous. */
  credentials?: readonly RegistryCredential[];
  /** Do not verify the registry's TLS certificate. @default false */
  skipVerify?: boolean;
  /** The container's `imagePullPolicy` is `Always`: do not cache. */
  pullAlways?: boolean;
  /** The caller's deadline. */
  signal?: AbortSignal;
}

/** The platform Kubernetes nodes most often run, used when a pod names none. */
export const DEFAULT_PLATFORM: Platform = { os: "linux", architecture: "amd64" };

/** `linux/arm64/v8`. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
}

interface Session {
  reference: ImageReference;
  credential: RegistryCredential | undefined;
  authorization: string | undefined;
  skipVerify: boolean;
  signal: AbortSignal;
}

interface Descriptor {
  mediaType?: string;
  digest?: string;
  platform?: { os?: string; architecture?: string; variant?: string };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringList(value: unknown, what: string, image: string): string[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value) && value.every((item) => typeof item === "string")) return value;
  throw new ImageLookupError(
    "invalid_response",
    `the ${what} of image "${image}" is not a list of strings`,
  );
}

function sha256(body: Uint8Array, algorithm: string): string {
  return createHash(algorithm).update(body).digest("hex");
}

function verifyDigest(body: Uint8Array, digest: string, image: string): void {
  const [algorithm = "", hex = ""] = digest.split(":");
  if (!["sha256", "sha512"].includes(algorithm)) {
    throw new ImageLookupError(
      "invalid_response",
      `image "${image}" uses unsupported digest "${digest}"`,
    );
  }
  if (sha256(body, algorithm) !== hex) {
    throw new ImageLookupError(
      "invalid_response",
      `the registry's content for "${image}" does not match digest ${digest}`,
    );
  }
}

function variantMatches(wanted: Platform, found: Descriptor["platform"]): boolean {
  if (wanted.variant !== undefined) return found?.variant === wanted.variant;
  // Without a wanted variant: arm64 means v8 (or none), arm means v7 (or none); others: any.
  if (wanted.architecture === "arm64") return !found?.variant || found.variant === "v8";
  if (wanted.architecture === "arm") return !found?.variant || found.variant === "v7";
  return true;
}

function sameCommand(a: ImageCommand, b: ImageCommand): boolean {
  return JSON.stringify([a.entrypoint, a.cmd]) === JSON.stringify([b.entrypoint, b.cmd]);
}

/** Image config lookups with caching, shared by every admission. */
export class RegistryClient {
  readonly #transport: RegistryTransport;
  readonly #cache: LookupCache<ImageCommand>;
  readonly #tokens: TokenCache;
  readonly #options: RegistryClientOptions;

  constructor(options: RegistryClientOptions = {}) {
    this.#options = options;
    this.#transport = new RegistryTransport(options);
    const now = options.now ?? Date.now;
    this.#cache = new LookupCache({ maxEntries: options.cacheEntries ?? 1000, now });
    this.#tokens = new TokenCache({ now });
  }

  /** Drops pooled connections. */
  close(): void {
    this.#transport.close();
  }

  /**
   * The Entrypoint and Cmd of an image for the given platforms.
   *
   * @param image the container's `image`
   * @throws {ImageLookupError} with a message naming the reason (never a credential)
   */
  lookup(image: string, options: LookupOptions = {}): Promise<ImageCommand> {
    let reference: ImageReference;
    try {
      reference = parseImageReference(image);
    } catch (error) {
      return Promise.reject(
        new ImageLookupError("invalid_reference", (error as Error).message, { cause: error }),
      );
    }
    const allowed = this.#options.allowedRegistries ?? [];
    if (allowed.length > 0 && !allowed.includes(reference.registry)) {
      return Promise.reject(
        new ImageLookupError(
          "forbidden_host",
          `registry "${reference.registry}" is not in the webhook's registry allow-list`,
        ),
      );
    }
    const platforms = options.platforms?.length ? options.platforms : [DEFAULT_PLATFORM];
    const credentials = options.credentials ?? [];
    const key = JSON.stringify([
      formatImageReference(reference),
      platforms.map(formatPlatform).sort(),
      credentials.map(credentialFingerprint),
      options.skipVerify === true,
    ]);
    const ttl = reference.digest !== undefined
      ? Infinity
      : reference.tag === "latest" || options.pullAlways
      ? 0
      : this.#options.tagTtlMs ?? DEFAULT_TAG_TTL_MS;
    const onLookup = this.#options.onLookup;
    const shared = this.#cache.load(
      key,
      ttl,
      async () => {
        const signal = AbortSignal.timeout(
          this.#options.lookupTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS,
        );
        try {
          return await this.#lookupUncached(reference, platforms, credentials, {
            skipVerify: options.skipVerify === true,
            signal,
          });
        } catch (error) {
          onLookup?.("error");
          throw error;
        }
      },
      options.pullAlways === true,
      onLookup,
    );
    return raceSignal(shared, options.signal, reference);
  }

  async #lookupUncached(
    reference: ImageReference,
    platforms: readonly Platform[],
    credentials: readonly RegistryCredential[],
    context: { skipVerify: boolean; signal: AbortSignal },
  ): Promise<ImageCommand> {
    const image = formatImageReference(reference);
    const candidates = credentials.length > 0 ? credentials : [undefined];
    let lastDenied: ImageLookupError | undefined;
    for (const credential of candidates) {
      const session: Session = {
        reference,
        credential,
        authorization: undefined,
        skipVerify: context.skipVerify,
        signal: context.signal,
      };
      let top: { body: Uint8Array; mediaType: string };
      try {
        top = await this.#manifest(session, manifestReference(reference));
      } catch (error) {
        if (error instanceof ImageLookupError && error.failure === "unauthorized") {
          lastDenied = error;
          continue;
        }
        throw error;
      }
      return await this.#commandOf(session, top, platforms, image);
    }
    throw lastDenied ?? new ImageLookupError("unauthorized", `access to "${image}" was denied`);
  }

  async #commandOf(
    session: Session,
    top: { body: Uint8Array; mediaType: string },
    platforms: readonly Platform[],
    image: string,
  ): Promise<ImageCommand> {
    const parsed = parseJson(top.body, image);
    if (top.mediaType === MEDIA_TYPES.ociIndex || top.mediaType === MEDIA_TYPES.dockerList) {
      const manifests = Array.isArray(parsed.manifests)
        ? (parsed.manifests as unknown[]).filter(isObject) as Descriptor[]
        : [];
      const results: Array<{ platform: Platform; command: ImageCommand }> = [];
      for (const platform of platforms) {
        const chosen = manifests.find((entry) =>
          entry.platform?.os === platform.os &&
          entry.platform?.architecture === platform.architecture &&
          variantMatches(platform, entry.platform) && typeof entry.digest === "string"
        );
        if (!chosen?.digest) {
          const offered = manifests.map((entry) => entry.platform)
            .filter((p): p is Platform => !!p?.os && !!p.architecture && p.os !== "unknown")
            .map(formatPlatform);
          throw new ImageLookupError(
            "platform",
            `image "${image}" has no ${formatPlatform(platform)} variant (it has ${
              offered.join(", ") || "none"
            })`,
          );
        }
        const manifest = await this.#manifest(session, chosen.digest);
        if (
          manifest.mediaType !== MEDIA_TYPES.ociManifest &&
          manifest.mediaType !== MEDIA_TYPES.dockerManifest
        ) {
          throw new ImageLookupError(
            "invalid_response",
            `the ${formatPlatform(platform)} entry of image "${image}" is not an image manifest`,
          );
        }
        results.push({ platform, command: await this.#configOf(session, manifest.body, image) });
      }
      const [first, ...rest] = results;
      if (!first) throw new ImageLookupError("platform", `no platform requested for "${image}"`);
      const other = rest.find(({ command }) => !sameCommand(first.command, command));
      if (other) {
        throw new ImageLookupError(
          "platform",
          `image "${image}" has a different Entrypoint/Cmd for ${formatPlatform(first.platform)} ` +
            `and ${formatPlatform(other.platform)}, and the pod may run on either`,
        );
      }
      return first.command;
    }
    if (top.mediaType === MEDIA_TYPES.ociManifest || top.mediaType === MEDIA_TYPES.dockerManifest) {
      return await this.#configOf(session, top.body, image);
    }
    throw new ImageLookupError(
      "invalid_response",
      `image "${image}" has a manifest of unsupported type "${top.mediaType}"`,
    );
  }

  async #configOf(
    session: Session,
    manifestBody: Uint8Array,
    image: string,
  ): Promise<ImageCommand> {
    const manifest = parseJson(manifestBody, image);
    const config = manifest.config;
    if (!isObject(config) || typeof config.digest !== "string") {
      throw new ImageLookupError(
        "invalid_response",
        `the manifest of image "${image}" names no config`,
      );
    }
    const digest = config.digest;
    const path = `/v2/${session.reference.repository}/blobs/${digest}`;
    const response = await this.#get(session, path, "*/*");
    if (response.status !== 200) throw statusError(response, image, "config");
    verifyDigest(response.body, digest, image);
    const blob = parseJson(response.body, image);
    const inner = isObject(blob.config) ? blob.config : {};
    return {
      entrypoint: stringList(inner.Entrypoint, "Entrypoint", image),
      cmd: stringList(inner.Cmd, "Cmd", image),
    };
  }

  async #manifest(
    session: Session,
    ref: string,
  ): Promise<{ body: Uint8Array; mediaType: string }> {
    const image = formatImageReference(session.reference);
    const response = await this.#get(
      session,
      `/v2/${session.reference.repository}/manifests/${ref}`,
      ACCEPT,
    );
    if (response.status !== 200) throw statusError(response, image, "manifest");
    if (ref.includes(":")) verifyDigest(response.body, ref, image);
    const parsed = parseJson(response.body, image);
    const contentType = (responseHeader(response, "content-type") ?? "").split(";")[0]?.trim();
    const mediaType = typeof parsed.mediaType === "string" ? parsed.mediaType : contentType ?? "";
    return { body: response.body, mediaType };
  }

  /** GET with authentication: anonymous or cached authorization first, then the challenge. */
  async #get(session: Session, path: string, accept: string): Promise<TransportResponse> {
    const url = new URL(`https://${session.reference.apiHost}${path}`);
    let response = await this.#follow(session, url, accept, session.authorization);
    if (response.status !== 401) return response;
    const header = responseHeader(response, "www-authenticate") ?? "";
    const challenges = parseChallenges(header);
    session.authorization = await this.#answer(session, challenges);
    response = await this.#follow(session, url, accept, session.authorization);
    if (response.status === 401) {
      throw new ImageLookupError(
        "unauthorized",
        `registry "${session.reference.registry}" refused the ${
          session.credential ? "pull-secret credentials" : "anonymous request"
        } for "${formatImageReference(session.reference)}"`,
      );
    }
    return response;
  }

  /** The `Authorization` value answering a challenge. */
  async #answer(session: Session, challenges: AuthChallenge[]): Promise<string> {
    const registry = session.reference.registry;
    const bearer = challenges.find((c) => c.scheme === "bearer" && c.params.realm);
    if (bearer) {
      const realm = bearer.params.realm ?? "";
      const scope = `repository:${session.reference.repository}:pull`;
      const service = bearer.params.service;
      const key = JSON.stringify([
        realm,
        service,
        scope,
        credentialFingerprint(session.credential),
      ]);
      const cached = this.#tokens.get(key);
      if (cached !== undefined) return `Bearer ${cached}`;
      let url: URL;
      try {
        url = new URL(realm);
      } catch {
        throw new ImageLookupError(
          "invalid_response",
          `registry "${registry}" named an invalid token realm`,
        );
      }
      if (service !== undefined) url.searchParams.set("service", service);
      url.searchParams.set("scope", scope);
      const headers: Record<string, string> = { accept: "application/json" };
      if (session.credential) headers.authorization = basicAuthorization(session.credential);
      const response = await this.#transport.request(url, {
        headers,
        signal: session.signal,
        skipVerify: session.skipVerify,
      });
      this.#options.onRoundTrip?.(url.host, url.pathname, response.status);
      if (response.status === 401 || response.status === 403) {
        throw new ImageLookupError(
          "unauthorized",
          `the token service of registry "${registry}" refused the ${
            session.credential ? "pull-secret credentials" : "anonymous request"
          }`,
        );
      }
      if (response.status !== 200) {
        throw new ImageLookupError(
          "registry_error",
          `the token service of registry "${registry}" answered HTTP ${response.status}`,
        );
      }
      const body = parseJson(response.body, formatImageReference(session.reference));
      const token = typeof body.token === "string" && body.token !== ""
        ? body.token
        : typeof body.access_token === "string"
        ? body.access_token
        : "";
      if (token === "") {
        throw new ImageLookupError(
          "invalid_response",
          `the token service of registry "${registry}" returned no token`,
        );
      }
      const expiresIn = typeof body.expires_in === "number" ? body.expires_in : 60;
      this.#tokens.set(key, token, expiresIn);
      return `Bearer ${token}`;
    }
    if (challenges.some((c) => c.scheme === "basic")) {
      if (!session.credential) {
        throw new ImageLookupError(
          "unauthorized",
          `registry "${registry}" requires credentials and the pod has no pull secret for it`,
        );
      }
      return basicAuthorization(session.credential);
    }
    throw new ImageLookupError(
      "unauthorized",
      `registry "${registry}" asked for authentication Piggy does not support (${
        challenges.map((c) => c.scheme).join(", ") || "no challenge"
      })`,
    );
  }

  /** Sends a GET and follows redirects by hand, dropping `Authorization` once off-origin. */
  async #follow(
    session: Session,
    start: URL,
    accept: string,
    authorization: string | undefined,
  ): Promise<TransportResponse> {
    let url = start;
    let auth = authorization;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers: Record<string, string> = { accept };
      if (auth !== undefined) headers.authorization = auth;
      const response = await this.#transport.request(url, {
        headers,
        signal: session.signal,
        skipVerify: session.skipVerify,
      });
      this.#options.onRoundTrip?.(url.host, url.pathname, response.status);
      const location = responseHeader(response, "location");
      if (![301, 302, 303, 307, 308].includes(response.status) || !location) return response;
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new ImageLookupError(
          "invalid_response",
          `registry "${start.host}" sent an invalid redirect`,
        );
      }
      if (next.protocol !== "https:") {
        throw new ImageLookupError(
          "forbidden_host",
          `registry "${start.host}" redirected to a plain-HTTP URL of "${next.host}"`,
        );
      }
      if (next.origin !== start.origin) auth = undefined;
      url = next;
    }
    throw new ImageLookupError(
      "invalid_response",
      `registry "${start.host}" redirected more than ${MAX_REDIRECTS} times`,
    );
  }
}

function parseJson(body: Uint8Array, image: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(body));
    if (isObject(value)) return value;
  } catch {
    // fall through
  }
  throw new ImageLookupError(
    "invalid_response",
    `the registry answered invalid JSON for "${image}"`,
  );
}

function statusError(response: TransportResponse, image: string, what: string): ImageLookupError {
  if (response.status === 404) {
    return new ImageLookupError("not_found", `the ${what} of image "${image}" was not found`);
  }
  if (response.status === 403) {
    return new ImageLookupError(
      "unauthorized",
      `access to the ${what} of image "${image}" was denied`,
    );
  }
  return new ImageLookupError(
    "registry_error",
    `the registry answered HTTP ${response.status} for the ${what} of image "${image}"`,
  );
}

/** Resolves with the shared lookup, or rejects as soon as the caller's own signal aborts. */
function raceSignal<T>(
  shared: Promise<T>,
  signal: AbortSignal | undefined,
  reference: ImageReference,
): Promise<T> {
  const image = formatImageReference(reference);
  return raceAbort(shared, signal, () =>
    new ImageLookupError(
      "timeout",
      `the lookup of "${image}" did not finish before the admission deadline`,
    ));
}
