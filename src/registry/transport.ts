/**
 * HTTPS for image lookups, over `node:https` (same behaviour on Deno 2.8 and Node 20):
 * - TLS verified against the system roots plus an optional extra CA bundle; skipping verification
 *   is a per-request choice the caller must make explicitly.
 * - Every address a host name resolves to is checked by `address_policy.ts` inside the socket's own
 *   DNS lookup (so the checked address is the one connected to: no re-resolution race); IP literals
 *   are checked before connecting. One forbidden address refuses the whole host.
 * - Plain HTTP is refused; redirects are not followed here (the client follows them by hand).
 * - Responses are read up to a byte limit; the caller's `AbortSignal` ends the request at any stage.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import dns from "node:dns";
import https from "node:https";
import { isIP } from "node:net";
import tls from "node:tls";
import { type AddressPolicy, forbiddenAddressReason } from "./address_policy.ts";
import { ImageLookupError } from "./errors.ts";

/** Largest registry response read (manifests and image configs are far smaller). */
export const MAX_REGISTRY_RESPONSE_BYTES = 8 * 1024 * 1024;

/** Options of {@link RegistryTransport}. */
export interface RegistryTransportOptions extends AddressPolicy {
  /** Extra trusted CA certificates (PEM), added to the system roots. */
  caCertificates?: string;
  /** Largest response body read. @default MAX_REGISTRY_RESPONSE_BYTES */
  maxResponseBytes?: number;
  /**
   * Connects to this `host:port` instead of the URL's host (TLS still verifies the URL's host
   * name). Tests use it to reach stand-ins for hosts such as ECR registries; the address policy
   * applies to the target.
   */
  connectOverride?: (host: string) => { host: string; port: number } | undefined;
  /** Connections kept per host. @default 16 */
  maxSockets?: number;
}

/** One request. */
export interface TransportRequest {
  method?: "GET" | "HEAD" | "POST";
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** Do not verify the server certificate (the pod opted in and the webhook allows it). */
  skipVerify?: boolean;
}

/** A response read in full. */
export interface TransportResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

type LookupCallback = (
  error: Error | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The first value of a response header. */
export function responseHeader(response: TransportResponse, name: string): string | undefined {
  return header(response.headers[name.toLowerCase()]);
}

/**
 * The bundled root certificates: a `ca` option replaces the default roots (Node and Deno alike), so
 * an extra CA bundle is passed along with them. Deno lists them only with `--allow-sys=ca` (the
 * webhook's flags have it); without, the extra CA is trusted alone, which refuses public
 * registries rather than trusting too much.
 */
function systemRoots(): readonly string[] {
  try {
    return [...tls.rootCertificates];
  } catch {
    return [];
  }
}

/** HTTPS client for registries and token realms. Call {@link RegistryTransport.close} when done. */
export class RegistryTransport {
  readonly #options: RegistryTransportOptions;
  readonly #agent: https.Agent;
  readonly #ca: string[] | undefined;
  readonly #maxBytes: number;

  constructor(options: RegistryTransportOptions = {}) {
    this.#options = options;
    this.#maxBytes = options.maxResponseBytes ?? MAX_REGISTRY_RESPONSE_BYTES;
    this.#ca = options.caCertificates ? [...systemRoots(), options.caCertificates] : undefined;
    this.#agent = new https.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 16 });
  }

  /** Drops pooled connections. */
  close(): void {
    this.#agent.destroy();
  }

  #checkAddress(host: string, address: string): void {
    const reason = forbiddenAddressReason(address, this.#options);
    if (reason !== undefined) {
      throw new ImageLookupError(
        "forbidden_host",
        `host "${host}" resolves to ${address}, ${reason}: image lookups may not connect there`,
      );
    }
  }

  #lookup(host: string) {
    return (hostname: string, options: dns.LookupOptions, callback: LookupCallback) => {
      const family = typeof options.family === "number" ? options.family : 0;
      dns.lookup(hostname, { all: true, family }, (error, addresses) => {
        if (error) return callback(error, []);
        try {
          if (addresses.length === 0) throw new Error(`no address for "${hostname}"`);
          for (const { address } of addresses) this.#checkAddress(host, address);
        } catch (refused) {
          return callback(refused as Error, []);
        }
        if (options.all) return callback(null, addresses);
        const [first] = addresses;
        callback(null, first?.address ?? "", first?.family ?? 4);
      });
    };
  }

  /**
   * Sends one request and reads the whole response.
   *
   * @param url an `https:` URL
   * @throws {ImageLookupError} `forbidden_host`, `tls`, `network`, `timeout`, `invalid_response`
   */
  request(url: URL, request: TransportRequest = {}): Promise<TransportResponse> {
    if (url.protocol !== "https:") {
      return Promise.reject(
        new ImageLookupError("forbidden_host", `refusing plain-HTTP URL of host "${url.host}"`),
      );
    }
    const name = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const override = this.#options.connectOverride?.(url.host);
    const connectHost = override?.host ?? name;
    const port = override?.port ?? (url.port === "" ? 443 : Number(url.port));
    try {
      if (isIP(connectHost)) this.#checkAddress(url.host, connectHost);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<TransportResponse>((resolve, reject) => {
      const signal = request.signal;
      if (signal?.aborted) {
        reject(timeoutError(url, signal.reason));
        return;
      }
      let settled = false;
      const finish = (error: unknown, response?: TransportResponse) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        if (response) resolve(response);
        else reject(error);
      };
      const req = https.request({
        method: request.method ?? "GET",
        host: connectHost,
        port,
        path: `${url.pathname}${url.search}`,
        ...(isIP(name) ? {} : { servername: name }),
        headers: { host: url.host, "user-agent": "piggy-webhooks", ...request.headers },
        agent: this.#agent,
        lookup: this.#lookup(url.host) as unknown as typeof dns.lookup,
        ...(this.#ca ? { ca: this.#ca } : {}),
        rejectUnauthorized: request.skipVerify !== true,
        checkServerIdentity: (_host: string, cert: tls.PeerCertificate) =>
          tls.checkServerIdentity(name, cert),
      });
      const onAbort = () => {
        req.destroy();
        finish(timeoutError(url, signal?.reason));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      req.on("error", (error) => finish(transportError(url, error)));
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.#maxBytes) {
            req.destroy();
            finish(
              new ImageLookupError(
                "invalid_response",
                `the answer of "${url.host}" is larger than ${this.#maxBytes} bytes`,
              ),
            );
            return;
          }
          chunks.push(chunk);
        });
        res.on("error", (error) => finish(transportError(url, error)));
        res.on("end", () =>
          finish(undefined, {
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }));
      });
      req.end(request.body);
    });
  }
}

function timeoutError(url: URL, reason: unknown): ImageLookupError {
  const why = reason instanceof Error && reason.message ? `: ${reason.message}` : "";
  return new ImageLookupError(
    "timeout",
    `"${url.host}" did not answer before the lookup deadline${why}`,
    { cause: reason },
  );
}

const TLS_CODES =
  /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|HOSTNAME|ALTNAME|SSL|TLS/i;

function transportError(url: URL, error: unknown): ImageLookupError {
  if (error instanceof ImageLookupError) return error;
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (
    (typeof code === "string" && TLS_CODES.test(code)) || /certificate|tls|ssl/i.test(message)
  ) {
    return new ImageLookupError(
      "tls",
      `the TLS certificate of "${url.host}" is not trusted (${message}); add its CA to the ` +
        "webhook's registry CA bundle",
      { cause: error },
    );
  }
  return new ImageLookupError("network", `cannot reach "${url.host}": ${message}`, {
    cause: error,
  });
}
