/**
 * Parses Go-style listen addresses (`:8443`, `0.0.0.0:8443`, `[::1]:8443`, `localhost:0`).
 *
 * @module
 */

/** Host and port to bind. */
export interface ListenAddress {
  /** Interface to bind; `::` for an empty host (every IPv6 and IPv4 interface, as Go's `:8443`). */
  hostname: string;
  /** Bind this instead when `hostname` cannot be bound (`0.0.0.0` on hosts without IPv6). */
  fallbackHostname?: string;
  /** TCP port, 0 for any free port. */
  port: number;
}

/**
 * Parses a listen address.
 *
 * @throws {SyntaxError} when the address has no port or the port is not 0–65535
 */
export function parseListenAddress(text: string): ListenAddress {
  const value = text.trim();
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  if (!match) {
    throw new SyntaxError(`Cannot parse listen address "${text}": expected "host:port" or ":port"`);
  }
  const port = Number(match[3]);
  if (port > 65535) {
    throw new SyntaxError(`Cannot parse listen address "${text}": port out of range`);
  }
  const hostname = match[1] ?? match[2] ?? "";
  return hostname === ""
    ? { hostname: "::", fallbackHostname: "0.0.0.0", port }
    : { hostname, port };
}
