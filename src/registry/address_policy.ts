/**
 * Which network addresses an image lookup may connect to. The pod chooses the registry host (and
 * the registry chooses its token realm and redirects), so every address a lookup resolves to is
 * checked before connecting: link-local (cloud metadata services at 169.254.169.254 and
 * fd00:ec2::254), other metadata addresses, unspecified, multicast, broadcast and reserved ranges
 * are refused, as is loopback unless explicitly allowed (tests). IPv4 addresses embedded in IPv6
 * (mapped, compatible, NAT64, 6to4) are checked as IPv4. Private ranges (10/8, 172.16/12,
 * 192.168/16, fc00::/7, 100.64/10) stay allowed: private registries live there.
 *
 * @module
 */

import { isIP } from "node:net";

/** Options of {@link forbiddenAddressReason}. */
export interface AddressPolicy {
  /** Allow 127.0.0.0/8 and ::1 (tests and local development only). @default false */
  allowLoopback?: boolean;
}

function ipv4Bytes(address: string): number[] | undefined {
  const parts = address.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((part) => (/^\d{1,3}$/.test(part) ? Number(part) : NaN));
  return bytes.every((byte) => byte >= 0 && byte <= 255) ? bytes : undefined;
}

function ipv6Words(address: string): number[] | undefined {
  let text: string;
  try {
    // The URL parser normalises IPv6 text: embedded IPv4 becomes two hex words.
    text = new URL(`http://[${address.replace(/%.*$/, "")}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (half: string) => (half === "" ? [] : half.split(":").map((w) => parseInt(w, 16)));
  const head = parse(halves[0] ?? "");
  const rest = halves.length === 2 ? parse(halves[1] ?? "") : [];
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0;
  if (fill < 0) return undefined;
  const words = [...head, ...new Array<number>(fill).fill(0), ...rest];
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff)
    ? words
    : undefined;
}

function inV4(bytes: number[], base: number[], prefix: number): boolean {
  const value = bytes.reduce((acc, byte) => acc * 256 + byte, 0);
  const start = base.reduce((acc, byte) => acc * 256 + byte, 0);
  const size = 2 ** (32 - prefix);
  return value >= start && value < start + size;
}

function v4Reason(bytes: number[], policy: AddressPolicy): string | undefined {
  if (inV4(bytes, [127, 0, 0, 0], 8)) {
    return policy.allowLoopback ? undefined : "a loopback address";
  }
  if (inV4(bytes, [169, 254, 0, 0], 16)) return "a link-local address (cloud metadata service)";
  if (inV4(bytes, [0, 0, 0, 0], 8)) return "an unspecified address";
  if (inV4(bytes, [100, 100, 100, 200], 32)) return "a cloud metadata address";
  if (inV4(bytes, [192, 0, 0, 0], 24)) return "an IETF protocol address (cloud metadata service)";
  if (inV4(bytes, [224, 0, 0, 0], 4)) return "a multicast address";
  if (inV4(bytes, [240, 0, 0, 0], 4)) return "a reserved or broadcast address";
  return undefined;
}

function v6Reason(words: number[], policy: AddressPolicy): string | undefined {
  const [w0 = 0, w1 = 0, w2 = 0, w3 = 0, w4 = 0, w5 = 0, w6 = 0, w7 = 0] = words;
  const v4 = [w6 >> 8, w6 & 0xff, w7 >> 8, w7 & 0xff];
  const zeroHead = w0 === 0 && w1 === 0 && w2 === 0 && w3 === 0 && w4 === 0;
  if (zeroHead && w5 === 0 && w6 === 0 && w7 === 0) return "an unspecified address";
  if (zeroHead && w5 === 0 && w6 === 0 && w7 === 1) {
    return policy.allowLoopback ? undefined : "a loopback address";
  }
  if (zeroHead && (w5 === 0xffff || w5 === 0)) return v4Reason(v4, policy); // mapped, compatible
  if (w0 === 0x64 && w1 === 0xff9b && w2 === 0 && w3 === 0 && w4 === 0 && w5 === 0) {
    return v4Reason(v4, policy); // NAT64
  }
  if (w0 === 0x2002) return v4Reason([w1 >> 8, w1 & 0xff, w2 >> 8, w2 & 0xff], policy); // 6to4
  if ((w0 & 0xffc0) === 0xfe80) return "a link-local address";
  if (w0 === 0xfd00 && w1 === 0x0ec2) return "an AWS metadata address";
  if ((w0 & 0xff00) === 0xff00) return "a multicast address";
  return undefined;
}

/**
 * Why a lookup may not connect to this address, or `undefined` when it may.
 *
 * @param address an IPv4 or IPv6 address (not a host name)
 * @param policy loopback allowance
 */
export function forbiddenAddressReason(
  address: string,
  policy: AddressPolicy = {},
): string | undefined {
  const family = isIP(address.replace(/%.*$/, ""));
  if (family === 4) {
    const bytes = ipv4Bytes(address);
    return bytes ? v4Reason(bytes, policy) : "not an IP address";
  }
  if (family === 6) {
    const words = ipv6Words(address);
    return words ? v6Reason(words, policy) : "not an IP address";
  }
  return "not an IP address";
}
