/**
 * Which proxy a request of the light AWS client goes through, read from the environment the way
 * Go's `http.ProxyFromEnvironment` (golang.org/x/net/http/httpproxy) reads it: Go Piggy's
 * launcher reached AWS through the AWS SDK for Go, whose client uses it.
 *
 * - `https:` URLs use `HTTPS_PROXY` (else `https_proxy`), `http:` URLs `HTTP_PROXY` (else
 *   `http_proxy`); neither falls back to the other, and `ALL_PROXY` is not read. A value without
 *   a scheme (`proxy.corp:3128`) is an `http://` URL; its default port is 80.
 * - `NO_PROXY` (else `no_proxy`) is a comma-separated list, case-insensitive: `*` (no request is
 *   proxied); an IP address (`10.1.2.3`, `fd00::1`, `[fd00::1]:443` with a port) or CIDR range
 *   (`10.0.0.0/8`, `fd00::/8`), matching IP-literal hosts; a domain (`example.com` matches it and
 *   its subdomains, `.example.com` and `*.example.com` only subdomains), with an optional port
 *   (`example.com:443`). Entries that are none of these are ignored, as in Go.
 * - `localhost` and loopback addresses (127.0.0.0/8, ::1) are never proxied.
 * - With `REQUEST_METHOD` set (a CGI environment), `HTTP_PROXY` is refused for `http:` URLs.
 *
 * Link-local hosts are not special: the container-credentials endpoint (169.254.170.2, EKS Pod
 * Identity's 169.254.170.23 and fd00:ec2::23) is reached through `HTTP_PROXY` unless `NO_PROXY`
 * names it, as in Go (AWS documents adding them to `NO_PROXY`).
 *
 * Only `http://` proxies are supported (the tunnel to AWS is TLS either way); an `https://`
 * (TLS to the proxy itself) or `socks5://` proxy, or a value that is not a URL, fails each
 * request it applies to with a {@link ProxyError} naming the variable, never its value (Go would
 * use the first two, and ignore the third).
 *
 * @module
 */

import type { EnvGet } from "./endpoints.ts";
import { ProxyError, type ProxyRoute } from "../../runtime/http_proxy.ts";

/** Tells whether `host` (lower case, IPv6 without brackets) and `port` bypass the proxy. */
export type NoProxyMatcher = (host: string, port: string) => boolean;

/** The proxy of each request, or `undefined` for a direct one. */
export type ProxyChooser = (url: URL) => ProxyRoute | undefined;

/** An IP address: 4 bytes (IPv4, IPv4-mapped IPv6 included) or 16. */
type IpBytes = Uint8Array;

function parseIpv4(text: string): IpBytes | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    // Go refuses leading zeros (they read as octal elsewhere).
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return undefined;
    bytes[i] = Number(part);
  }
  return bytes;
}

function parseIpv6(text: string): IpBytes | undefined {
  if (!/^[0-9a-f:.]+$/i.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const pieces = half.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIpv4(piece);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-f]{1,4}$/i.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/** An IP address, IPv4-mapped IPv6 as IPv4 (Go's `ParseIP` then `To4`); `undefined` otherwise. */
export function parseIp(text: string): IpBytes | undefined {
  if (!text.includes(":")) return parseIpv4(text);
  const bytes = parseIpv6(text);
  if (!bytes) return undefined;
  const mapped = bytes.slice(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff &&
    bytes[11] === 0xff;
  return mapped ? bytes.slice(12) : bytes;
}

function sameIp(a: IpBytes, b: IpBytes): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function inRange(ip: IpBytes, network: IpBytes, bits: number): boolean {
  if (ip.length !== network.length) return false;
  for (let i = 0; i < bits; i++) {
    const mask = 0x80 >> (i % 8);
    if ((ip[i >> 3]! & mask) !== (network[i >> 3]! & mask)) return false;
  }
  return true;
}

/** A CIDR range (`10.0.0.0/8`, `fd00::/8`) as Go's `ParseCIDR` reads it. */
function parseCidr(text: string): { network: IpBytes; bits: number } | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const address = text.slice(0, slash);
  const prefix = text.slice(slash + 1);
  const v6 = address.includes(":");
  const full = v6 ? parseIpv6(address) : parseIpv4(address);
  if (!full || !/^(?:0|[1-9][0-9]{0,2})$/.test(prefix)) return undefined;
  let bits = Number(prefix);
  if (bits > full.length * 8) return undefined;
  let network = full;
  const mapped = parseIp(address);
  if (v6 && mapped?.length === 4) {
    // An IPv4-mapped range is an IPv4 range (`::ffff:10.0.0.0/104` is 10.0.0.0/8), as in Go.
    if (bits < 96) return { network, bits };
    network = mapped;
    bits -= 96;
  }
  return { network, bits };
}

/** Go's `net.SplitHostPort`: `host:port` or `[v6]:port`; `undefined` when there is no port. */
function splitHostPort(text: string): { host: string; port: string } | undefined {
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    if (end < 0 || text[end + 1] !== ":" || text.indexOf(":", end + 2) >= 0) return undefined;
    return { host: text.slice(1, end), port: text.slice(end + 2) };
  }
  const colon = text.lastIndexOf(":");
  if (colon < 0 || text.slice(0, colon).includes(":")) return undefined;
  return { host: text.slice(0, colon), port: text.slice(colon + 1) };
}

/** A domain name in its ASCII form (punycode), as the URL parser writes a host. */
function asciiDomain(name: string): string {
  try {
    return new URL(`http://x${name}`).hostname.slice(1);
  } catch {
    return name;
  }
}

/**
 * Reads a `NO_PROXY` list (see the module comment).
 *
 * @returns a matcher: true when a request to `host` (lower case, IPv6 without brackets) and `port`
 *   (always given: 443 for `https:`, 80 for `http:` by default) goes direct
 */
export function parseNoProxy(list: string): NoProxyMatcher {
  const ipRules: Array<(ip: IpBytes, port: string) => boolean> = [];
  const domainRules: Array<(host: string, port: string) => boolean> = [];
  for (const raw of list.split(",")) {
    const entry = raw.trim().toLowerCase();
    if (entry === "") continue;
    if (entry === "*") return () => true;
    const cidr = parseCidr(entry);
    if (cidr) {
      ipRules.push((ip) => inRange(ip, cidr.network, cidr.bits));
      continue;
    }
    const split = splitHostPort(entry);
    if (split && split.host === "") continue;
    const host = split ? split.host : entry;
    const rulePort = split ? split.port : "";
    const portMatches = (port: string) => rulePort === "" || rulePort === port;
    const ip = parseIp(host.replace(/^\[(.*)\]$/, "$1"));
    if (ip) {
      ipRules.push((candidate, port) => sameIp(candidate, ip) && portMatches(port));
      continue;
    }
    if (host === "") continue;
    // `*.example.com` is `.example.com`; without a leading dot the name itself matches too.
    let suffix = host.startsWith("*.") ? host.slice(1) : host;
    const matchesItself = !suffix.startsWith(".");
    if (matchesItself) suffix = `.${suffix}`;
    suffix = asciiDomain(suffix);
    domainRules.push((candidate, port) =>
      (candidate.endsWith(suffix) || (matchesItself && candidate === suffix.slice(1))) &&
      portMatches(port)
    );
  }
  return (host, port) => {
    const ip = parseIp(host);
    if (ip && ipRules.some((rule) => rule(ip, port))) return true;
    return domainRules.some((rule) => rule(host, port));
  };
}

/** True when a request to `host` is never proxied: `localhost` and loopback addresses. */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  const ip = parseIp(host);
  if (!ip) return false;
  return ip.length === 4 ? ip[0] === 127 : sameIp(ip, parseIpv6("::1")!);
}

/** The first of `names` that is set and not empty (Go's `getEnvAny`). */
function firstSet(env: EnvGet, names: readonly string[]): [string, string] | undefined {
  for (const name of names) {
    const value = env(name);
    if (value) return [name, value];
  }
  return undefined;
}

/**
 * A proxy variable's URL, as Go's `parseProxy` reads it (`http://` is assumed without a scheme).
 *
 * @throws {ProxyError} when the value is not a URL or not an `http://` one (naming the variable,
 *   never the value, which may hold a password)
 */
function proxyRoute(variable: string, value: string): ProxyRoute {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== "http") {
    const what = scheme === "https"
      ? "TLS to the proxy (https://) is not supported: use its http:// URL (the tunnel to AWS " +
        "is TLS either way)"
      : `${scheme}:// proxies are not supported, only http://`;
    throw new ProxyError(`the proxy in ${variable} cannot be used: ${what}`, { retryable: false });
  }
  let url: URL | undefined;
  try {
    url = new URL(scheme === undefined ? `http://${value}` : value);
  } catch {
    url = undefined;
  }
  if (!url || url.hostname === "") {
    throw new ProxyError(`${variable} is not a proxy URL`, { retryable: false });
  }
  return { url, variable };
}

/**
 * The proxy chooser of this environment (see the module comment), or `undefined` when no proxy
 * variable that the light client reads is set.
 *
 * @returns a function that gives a request's proxy, or `undefined` to go direct; it throws
 *   {@link ProxyError} when the variable that applies is unusable
 */
export function proxyFromEnvironment(env: EnvGet): ProxyChooser | undefined {
  const https = firstSet(env, ["HTTPS_PROXY", "https_proxy"]);
  const http = firstSet(env, ["HTTP_PROXY", "http_proxy"]);
  if (!https && !http) return undefined;
  const noProxy = parseNoProxy(firstSet(env, ["NO_PROXY", "no_proxy"])?.[1] ?? "");
  const cgi = Boolean(env("REQUEST_METHOD"));
  return (url) => {
    const chosen = url.protocol === "https:" ? https : url.protocol === "http:" ? http : undefined;
    if (!chosen) return undefined;
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    if (isLoopbackHost(host) || noProxy(host, port)) return undefined;
    if (url.protocol === "http:" && cgi) {
      throw new ProxyError(
        `${chosen[0]} is not used in a CGI environment (REQUEST_METHOD is set)`,
        { retryable: false },
      );
    }
    return proxyRoute(chosen[0], chosen[1]);
  };
}
