/**
 * Image references as the kubelet reads them: `[registry[:port]/]path[:tag][@digest]`.
 *
 * - The first path component is a registry when it contains `.` or `:`, is `localhost`, or has an
 *   upper-case letter; otherwise the registry is Docker Hub (`docker.io`), whose single-component
 *   names get the `library/` prefix (`nginx` → `docker.io/library/nginx`).
 * - No tag and no digest → tag `latest`. With a digest the tag is informational only: the digest is
 *   what is fetched (as the kubelet does).
 * - Docker Hub's API host is `registry-1.docker.io`; `index.docker.io` is an alias of `docker.io`.
 *
 * @module
 */

/** A parsed image reference. */
export interface ImageReference {
  /** The registry as written in image names (`docker.io`, `ghcr.io`, `127.0.0.1:5000`). */
  registry: string;
  /** Host and optional port the Distribution API is served on (`registry-1.docker.io`). */
  apiHost: string;
  /** Repository path inside the registry (`library/nginx`). */
  repository: string;
  /** Tag (`latest` when neither tag nor digest is given); absent with a digest only. */
  tag?: string;
  /** Content digest (`sha256:…`), when given. */
  digest?: string;
}

/** Docker Hub's name in image references. */
export const DOCKER_HUB = "docker.io";

/** Docker Hub's Distribution API host. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const HOST_NAME =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*$/;
const MAX_NAME_LENGTH = 255;

function isRegistryPart(part: string): boolean {
  return part.includes(".") || part.includes(":") || part === "localhost" ||
    part.toLowerCase() !== part;
}

function checkRegistry(registry: string, image: string): void {
  let host = registry;
  let port: string | undefined;
  const bracket = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(registry);
  if (bracket) {
    host = bracket[1] ?? "";
    port = bracket[2];
  } else {
    const colon = registry.lastIndexOf(":");
    if (colon >= 0) {
      host = registry.slice(0, colon);
      port = registry.slice(colon + 1);
    }
    if (!HOST_NAME.test(host)) {
      throw new SyntaxError(`Image "${image}": "${registry}" is not a valid registry host`);
    }
  }
  if (port !== undefined && (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)) {
    throw new SyntaxError(`Image "${image}": "${registry}" has an invalid port`);
  }
}

/**
 * Parses an image reference.
 *
 * @param image the container's `image` field
 * @throws {SyntaxError} when it is not a valid reference (the message names the image)
 */
export function parseImageReference(image: string): ImageReference {
  if (image === "" || image !== image.trim()) {
    throw new SyntaxError(`Image "${image}" is not a valid image reference`);
  }
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) {
      throw new SyntaxError(`Image "${image}": "${digest}" is not a sha256 or sha512 digest`);
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const lastColon = rest.lastIndexOf(":");
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) throw new SyntaxError(`Image "${image}": "${tag}" is not a valid tag`);
  }
  const slash = rest.indexOf("/");
  let registry = DOCKER_HUB;
  let path = rest;
  if (slash >= 0 && isRegistryPart(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    path = rest.slice(slash + 1);
    checkRegistry(registry, image);
  }
  if (registry === "index.docker.io") registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !path.includes("/")) path = `library/${path}`;
  if (path === "" || !path.split("/").every((part) => COMPONENT.test(part))) {
    throw new SyntaxError(
      `Image "${image}": repository "${path}" is not valid (lower-case letters, digits and ` +
        "separators)",
    );
  }
  if (registry.length + 1 + path.length > MAX_NAME_LENGTH) {
    throw new SyntaxError(
      `Image "${image}": the name is longer than ${MAX_NAME_LENGTH} characters`,
    );
  }
  const reference: ImageReference = {
    registry,
    apiHost: registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry,
    repository: path,
  };
  if (tag !== undefined) reference.tag = tag;
  else if (digest === undefined) reference.tag = "latest";
  if (digest !== undefined) reference.digest = digest;
  return reference;
}

/** The reference fetched from the registry: the digest when given, else the tag. */
export function manifestReference(reference: ImageReference): string {
  return reference.digest ?? reference.tag ?? "latest";
}

/** Canonical text of a reference (`docker.io/library/nginx:1.27`, `…@sha256:…`). */
export function formatImageReference(reference: ImageReference): string {
  const tag = reference.tag === undefined ? "" : `:${reference.tag}`;
  const digest = reference.digest === undefined ? "" : `@${reference.digest}`;
  return `${reference.registry}/${reference.repository}${tag}${digest}`;
}
