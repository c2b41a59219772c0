/**
 * The webhook's public listener on Deno: TLS (`node:tls`) and connection hygiene in front of the
 * HTTP server (`Deno.serve` on a loopback port), which sees only connections that passed here.
 *
 * Why a front: `Deno.serve` closes neither TCP connections that never start TLS nor connections
 * whose headers never end, takes no listener and cannot swap its certificate. Here:
 * - TLS handshake deadline, and a cap on concurrent connections (`node:tls` options);
 * - header deadline: a request's line and headers must arrive within it (for the first request
 *   from the end of the handshake, later ones from their first byte), else 408 and close;
 * - idle deadline: a keep-alive connection with no byte of a next request (or a stalled body) for
 *   this long is closed; while a request waits for its answer no deadline runs (the handlers have
 *   their own);
 * - framing checks (`request_framing.ts`): what cannot be framed safely is answered 400/431;
 * - certificate rotation: {@link FrontListener.setCertificate} serves a new certificate to new
 *   connections; open connections keep theirs and finish.
 * Bytes pass unchanged in both directions with backpressure; one backend connection per client
 * connection, so a framing disagreement can only ever affect the client's own connection.
 *
 * @module
 */

import { createPrivateKey, X509Certificate } from "node:crypto";
import net from "node:net";
import tls from "node:tls";
import { clearInterval, setInterval, setTimeout } from "node:timers";
import { RequestFraming } from "./request_framing.ts";
import { describeError, type Logger } from "../log.ts";

/** Connection limits of the front (rows of `src/config/webhook_options.ts`). */
export interface ConnectionLimits {
  /** A TLS handshake must finish within this. */
  handshakeTimeoutMs: number;
  /** A request line and its headers must arrive within this. */
  headerTimeoutMs: number;
  /** A keep-alive connection without a next request is closed after this. */
  idleTimeoutMs: number;
  /** Connections open at once; more are closed on accept. */
  maxConnections: number;
  /** Largest request line + header block. */
  maxHeaderBytes: number;
}

/** Options of {@link createFrontListener}. */
export interface FrontListenerOptions {
  /** PEM certificate and key; plain TCP when absent. */
  tls?: { cert: string; key: string };
  limits: ConnectionLimits;
  /** Where the HTTP server listens (loopback). */
  backend: { hostname: string; port: number };
  logger: Logger;
}

/** Address the front listens on. */
export interface BoundAddress {
  hostname: string;
  port: number;
}

/** The running front. */
export interface FrontListener {
  /**
   * Binds and starts accepting. With `reusePort` (Linux `SO_REUSEPORT`), several processes bind
   * the same port and the kernel spreads new connections over them (used by the benchmark of
   * one event loop per core, not by the webhook).
   *
   * @throws the bind error (`code` EADDRINUSE, EAFNOSUPPORT …)
   */
  listen(port: number, hostname: string, options?: { reusePort?: boolean }): Promise<BoundAddress>;
  /** True when a backend connection from this local port is one of ours. */
  ownsBackendPort(port: number): boolean;
  /**
   * Serves this certificate to new connections from now on.
   *
   * @throws {Error} when the certificate and key do not form a usable pair (the old one stays)
   */
  setCertificate(cert: string, key: string): void;
  /** Stops accepting; open connections stay (the backend's shutdown ends them). */
  stopAccepting(): Promise<void>;
  /**
   * Resolves once every open connection has sent its last byte to the client (or after
   * `timeoutMs`): call it after the backend's shutdown, before {@link destroyAll}, so no answer
   * still on its way through the front is cut.
   */
  flushed(timeoutMs: number): Promise<void>;
  /** Closes every connection now and stops the deadline checks. */
  destroyAll(): void;
  /** Client connections open now. */
  readonly connections: number;
}

type Phase = "headers" | "body" | "busy" | "idle";

interface Tracked {
  client: net.Socket;
  backend: net.Socket;
  framing: RequestFraming;
  phase: Phase;
  /** When the current phase's deadline passes (`Infinity`: none). */
  deadline: number;
  /** The client has every byte we will send (our side is ended). */
  sent: boolean;
}

/** How long a closing connection still reads (and drops) what the client sends. */
const LINGER_MS = 2_000;

const TIMEOUT_ANSWER =
  "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

function refusal(status: number, message: string): string {
  const body = JSON.stringify({ error: message });
  const reason = status === 431 ? "Request Header Fields Too Large" : "Bad Request";
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\nconnection: close\r\n` +
    `content-length: ${new TextEncoder().encode(body).length}\r\n\r\n${body}`;
}

/** What every relayed connection of one front shares. */
interface Front {
  limits: ConnectionLimits;
  logger: Logger;
  target: FrontListenerOptions["backend"];
  /** Connections open now. */
  open: Set<Tracked>;
  /** Local ports of our backend connections. */
  backendPorts: Set<number>;
  /** Called when a connection has sent its last byte or closed. */
  onSent(): void;
}

const now = () => performance.now();

/** Moves a connection to the phase its request framing reached, with that phase's deadline. */
function advancePhase(tracked: Tracked, completed: number, limits: ConnectionLimits): void {
  const phase = tracked.framing.phase;
  if (phase === "headers") {
    if (tracked.phase !== "headers") {
      tracked.phase = "headers";
      tracked.deadline = now() + limits.headerTimeoutMs;
    }
  } else if (phase === "body") {
    tracked.phase = "body";
    tracked.deadline = now() + limits.idleTimeoutMs;
  } else if (completed > 0 || tracked.phase === "body") {
    tracked.phase = "busy";
    tracked.deadline = Infinity;
  }
}

/** Relays one client connection to its own backend connection, under the deadlines. */
function relay(client: net.Socket, front: Front): void {
  const { limits, logger, target, open, backendPorts } = front;
  client.setNoDelay(true);
  client.pause();
  const backend = net.connect({ host: target.hostname, port: target.port, noDelay: true });
  const tracked: Tracked = {
    client,
    backend,
    framing: new RequestFraming({ maxHeaderBytes: limits.maxHeaderBytes }),
    phase: "headers",
    deadline: now() + limits.headerTimeoutMs,
    sent: false,
  };
  open.add(tracked);
  let backendPort: number | undefined;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    open.delete(tracked);
    if (backendPort !== undefined) backendPorts.delete(backendPort);
    client.destroy();
    backend.destroy();
    front.onSent();
  };
  // After our last byte, keep reading (and dropping) what the client still sends for a moment:
  // closing with unread input makes the kernel send a reset, which can destroy the answer
  // before the client reads it (an early 413 while the body is still coming, a refusal).
  let lingering = false;
  const closeAfter = (answer?: string) => {
    if (lingering || done) return;
    lingering = true;
    tracked.phase = "busy";
    tracked.deadline = Infinity;
    client.resume();
    if (answer === undefined) client.end();
    else client.end(answer);
    client.once("finish", () => {
      tracked.sent = true;
      front.onSent();
      setTimeout(finish, LINGER_MS).unref();
    });
  };
  backend.once("connect", () => {
    backendPort = backend.localPort;
    if (backendPort !== undefined) backendPorts.add(backendPort);
    client.resume();
  });
  client.on("data", (chunk: Uint8Array) => {
    if (lingering) return;
    const result = tracked.framing.push(chunk);
    if (result.error) {
      logger.debug("Refused a request the front cannot frame", { reason: result.error.message });
      closeAfter(refusal(result.error.status, result.error.message));
      backend.destroy();
      return;
    }
    advancePhase(tracked, result.completed, limits);
    if (!backend.write(chunk)) client.pause();
  });
  backend.on("drain", () => {
    if (!lingering) client.resume();
  });
  backend.on("data", (chunk: Uint8Array) => {
    if (tracked.phase === "busy" || tracked.phase === "idle") {
      tracked.phase = "idle";
      tracked.deadline = now() + limits.idleTimeoutMs;
    }
    if (!client.write(chunk)) backend.pause();
  });
  client.on("drain", () => backend.resume());
  // The HTTP server closed (after an answer with `connection: close`, or on shutdown): pass it
  // on once the client has every byte.
  backend.on("end", () => closeAfter());
  client.on("end", finish);
  client.on("close", finish);
  // However the HTTP server's side ends (it resets a connection it closes with unread input,
  // e.g. after an early 413), the client gets what was answered, then the close.
  backend.on("close", () => closeAfter());
  client.on("error", (error: Error) => {
    logger.debug("Client connection failed", { error: describeError(error) });
    finish();
  });
  backend.on("error", (error: Error) => {
    if (backendPort === undefined) {
      logger.warn("Cannot reach the HTTP server behind the listener", {
        error: describeError(error),
      });
    }
    closeAfter();
  });
}

/** Closes a connection whose deadline passed: 408 while headers were due, else silently. */
function expire(tracked: Tracked, logger: Logger): void {
  tracked.deadline = Infinity;
  if (tracked.phase === "headers") {
    logger.debug("Closed a connection: headers not received in time (PIGGY_HEADER_TIMEOUT)");
    tracked.backend.destroy();
    tracked.client.end(TIMEOUT_ANSWER);
    tracked.client.once("finish", () => tracked.client.destroy());
    // Ends it even if the client never reads.
    setTimeout(() => tracked.client.destroy(), 1_000);
  } else {
    logger.debug("Closed an idle connection (PIGGY_IDLE_TIMEOUT)");
    tracked.client.destroy();
    tracked.backend.destroy();
  }
}

/** The TLS server (plain TCP without a certificate) that hands connections to `onConnection`. */
function createSocketServer(
  options: FrontListenerOptions,
  onConnection: (socket: net.Socket) => void,
): net.Server {
  const { limits, logger } = options;
  if (!options.tls) return net.createServer({ noDelay: true }, onConnection);
  const server = tls.createServer({
    cert: options.tls.cert,
    key: options.tls.key,
    minVersion: "TLSv1.2",
    ALPNProtocols: ["http/1.1"],
    handshakeTimeout: limits.handshakeTimeoutMs,
  }, onConnection);
  // With a listener of our own, closing the socket is ours too (handshake timeout included).
  server.on("tlsClientError", (error: Error, socket: tls.TLSSocket) => {
    logger.debug("TLS handshake failed", { error: describeError(error) });
    socket.destroy();
  });
  return server;
}

/**
 * Creates the front; {@link FrontListener.listen} starts it.
 *
 * @example
 * const front = createFrontListener({ tls: { cert, key }, limits, backend, logger });
 * await front.listen(8443, "::");
 */
export function createFrontListener(options: FrontListenerOptions): FrontListener {
  const { limits, logger } = options;
  const flushWaiters = new Set<() => void>();
  const front: Front = {
    limits,
    logger,
    target: options.backend,
    open: new Set(),
    backendPorts: new Set(),
    onSent() {
      if (flushWaiters.size === 0) return;
      for (const tracked of front.open) if (!tracked.sent) return;
      for (const wake of flushWaiters) wake();
    },
  };
  const { open, backendPorts } = front;
  const server = createSocketServer(options, (client) => relay(client, front));
  // The runtime refuses connections over the cap without an event: warn when it is reached.
  server.maxConnections = limits.maxConnections;
  let accepted = 0;
  let warnedFull = false;
  server.on("connection", (socket: net.Socket) => {
    accepted++;
    socket.once("close", () => accepted--);
    if (accepted < limits.maxConnections || warnedFull) return;
    warnedFull = true;
    logger.warn(
      `Connection limit reached: ${limits.maxConnections} connections are open ` +
        "(PIGGY_MAX_CONNECTIONS); new ones are closed until one ends",
    );
  });

  const tick = Math.max(
    20,
    Math.min(500, Math.min(limits.headerTimeoutMs, limits.idleTimeoutMs) / 10),
  );
  const sweeper = setInterval(() => {
    const at = now();
    if (accepted < limits.maxConnections / 2) warnedFull = false;
    for (const tracked of open) {
      if (tracked.deadline <= at) expire(tracked, logger);
    }
  }, tick);
  sweeper.unref();

  return {
    listen(port, hostname, listenOptions = {}) {
      return new Promise((resolve, reject) => {
        const onError = (error: Error) => reject(error);
        server.once("error", onError);
        const reusePort = listenOptions.reusePort === true;
        server.listen(
          { port, host: hostname, backlog: 511, ...(reusePort ? { reusePort } : {}) },
          () => {
            server.off("error", onError);
            server.on("error", (error: Error) => {
              logger.error("Listener error", { error: describeError(error) });
            });
            const address = server.address();
            if (address === null || typeof address === "string") {
              reject(new TypeError("Cannot read the listening address"));
              return;
            }
            resolve({ hostname: address.address, port: address.port });
          },
        );
      });
    },
    ownsBackendPort: (port) => backendPorts.has(port),
    setCertificate(cert, key) {
      if (!(server instanceof tls.Server)) throw new TypeError("Cannot set a certificate: no TLS");
      // The runtime's createSecureContext accepts any text: check the pair here.
      if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) {
        throw new RangeError("Cannot use the certificate: the key does not match it");
      }
      server.setSecureContext({ cert, key, minVersion: "TLSv1.2" });
    },
    stopAccepting() {
      return new Promise((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        // server.close waits for open connections; resolve once accepting stopped.
        setTimeout(resolve, 0);
      });
    },
    flushed(timeoutMs) {
      return new Promise((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          flushWaiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, timeoutMs);
        flushWaiters.add(wake);
        front.onSent();
      });
    },
    destroyAll() {
      clearInterval(sweeper);
      for (const tracked of open) {
        tracked.client.destroy();
        tracked.backend.destroy();
      }
    },
    get connections() {
      return open.size;
    },
  };
}
