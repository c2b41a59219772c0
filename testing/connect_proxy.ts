/**
 * A small HTTP proxy stand-in on loopback, for the light AWS client's proxy support: it opens
 * `CONNECT host:port` tunnels and forwards absolute-form requests (`GET http://host/path`),
 * always to 127.0.0.1 (the target's port, or the one {@link ConnectProxyOptions.upstreamPort}
 * gives), so nothing leaves the machine whatever host a client names. It records every tunnel and
 * forwarded request, can require Basic credentials (407 without them), and can refuse every
 * request with a status (403, 502, …). {@link unusedProxyUrl} gives the address of a proxy that
 * cannot be reached.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";

/** What the stand-in does. */
export interface ConnectProxyOptions {
  /** Credentials a request must carry (`Proxy-Authorization: Basic`); any request without: 407. */
  auth?: { user: string; password: string };
  /** Answer every request with this status instead of serving it. */
  refuse?: number;
  /** The port on 127.0.0.1 a target `host:port` is served at. @default the target's port */
  upstreamPort?: (host: string, port: number) => number;
}

/** One request the stand-in received: a `CONNECT` or a forwarded one. */
export interface ProxyRecord {
  method: string;
  /** `host:port` of a `CONNECT`, the absolute URL of a forwarded request. */
  target: string;
  /** The `Proxy-Authorization` header, as received. */
  authorization: string | undefined;
  /** What the stand-in answered (200 for an opened tunnel; 0 for a forwarded answer). */
  status: number;
}

/** A running proxy stand-in. */
export interface ConnectProxy {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  port: number;
  /** Every request, in order. */
  records: ProxyRecord[];
  /** The `CONNECT` targets that were tunnelled (answered 200), in order. */
  tunnels(): string[];
  /** Changes the refusal status (`undefined` serves again). */
  setRefuse(status: number | undefined): void;
  /** Forgets the records. */
  reset(): void;
  /** Closes the server and every connection. */
  close(): Promise<void>;
}

const REASONS: Record<number, string> = {
  200: "Connection established",
  403: "Forbidden",
  407: "Proxy Authentication Required",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

/** Starts the stand-in on 127.0.0.1, port 0. */
export async function startConnectProxy(options: ConnectProxyOptions = {}): Promise<ConnectProxy> {
  const records: ProxyRecord[] = [];
  const sockets = new Set<Socket>();
  let refuse = options.refuse;
  const expected = options.auth
    ? `Basic ${Buffer.from(`${options.auth.user}:${options.auth.password}`).toString("base64")}`
    : undefined;

  const answer = (socket: Socket, status: number) => {
    const extra = status === 407 ? 'Proxy-Authenticate: Basic realm="piggy"\r\n' : "";
    socket.end(
      `HTTP/1.1 ${status} ${REASONS[status] ?? "Refused"}\r\n${extra}` +
        "Content-Length: 0\r\nConnection: close\r\n\r\n",
    );
  };

  const serve = (client: Socket, head: string, rest: Buffer) => {
    const [requestLine = "", ...lines] = head.split("\r\n");
    const [method = "", target = ""] = requestLine.split(" ");
    const authorization = lines.find((line) => /^proxy-authorization:/i.test(line))
      ?.replace(/^[^:]*:\s*/, "");
    const record: ProxyRecord = { method, target, authorization, status: 0 };
    records.push(record);
    const refusal = refuse ?? (expected !== undefined && authorization !== expected ? 407 : 0);
    if (refusal) {
      record.status = refusal;
      answer(client, refusal);
      return;
    }
    let host: string;
    let port: number;
    let forwardHead: string | undefined;
    if (method === "CONNECT") {
      const colon = target.lastIndexOf(":");
      host = target.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
      port = Number(target.slice(colon + 1));
    } else {
      const url = new URL(target);
      host = url.hostname;
      port = Number(url.port || 80);
      // Origin form to the server, without the proxy's own header.
      forwardHead = [
        `${method} ${url.pathname}${url.search} HTTP/1.1`,
        ...lines.filter((line) => line !== "" && !/^proxy-authorization:/i.test(line)),
      ].join("\r\n") + "\r\n\r\n";
    }
    const upstream = connect(options.upstreamPort?.(host, port) ?? port, "127.0.0.1");
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    upstream.on("error", () => {
      if (record.status === 0 && method === "CONNECT") {
        record.status = 502;
        answer(client, 502);
      } else {
        client.destroy();
      }
    });
    upstream.on("connect", () => {
      if (forwardHead === undefined) {
        record.status = 200;
        client.write("HTTP/1.1 200 Connection established\r\n\r\n");
      } else {
        upstream.write(forwardHead);
      }
      if (rest.byteLength > 0) upstream.write(rest);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    client.on("error", () => upstream.destroy());
  };

  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => client.destroy());
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) {
        if (buffered.byteLength > 64 * 1024) client.destroy();
        return;
      }
      client.off("data", onData);
      serve(client, buffered.subarray(0, end + 2).toString("latin1"), buffered.subarray(end + 4));
    };
    client.on("data", onData);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    records,
    tunnels: () =>
      records.filter((r) => r.method === "CONNECT" && r.status === 200).map((r) => r.target),
    setRefuse: (status) => {
      refuse = status;
    },
    reset: () => {
      records.length = 0;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** `http://127.0.0.1:<port>` where nothing listens (a port just released): an unreachable proxy. */
export async function unusedProxyUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}
