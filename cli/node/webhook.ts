#!/usr/bin/env node
/**
 * piggy-webhooks for Node (npm `bin`): serves `/mutate`, `/secret`, `/healthz`, `/readyz` and
 * `/metrics` with `node:https` (plain `node:http` when no certificate is configured). Same
 * environment contract, connection limits, certificate rotation and shutdown as `cli/webhook.ts`
 * (there a front of our own; here Node's server options); the contract is the options table in
 * `src/config/webhook_options.ts`.
 *
 * @module
 */

import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { once } from "node:events";
import http from "node:http";
import https from "node:https";
import process from "node:process";
import { describeError } from "../../src/log.ts";
import { answerWebhookArgs } from "../../src/server/webhook_args.ts";
import {
  delay,
  DRAIN_TIMEOUT_MS,
  type SetupIo,
  setUpWebhook,
  watchCertificate,
  type WebhookSetup,
} from "../../src/server/webhook_setup.ts";
import { createNodeListener } from "./http_adapter.ts";

/** Time allowed to receive a whole request (admission requests time out after at most 30 s). */
const REQUEST_TIMEOUT_MS = 30_000;

const io: SetupIo = {
  readTextFile: (path) => readFile(path, "utf8"),
  readTextFileSync: (path) => readFileSync(path, "utf8"),
};

/** The HTTPS server (HTTP without a certificate) with the webhook's connection limits. */
function createServer(
  setup: WebhookSetup,
  listener: http.RequestListener,
): http.Server | https.Server {
  const { logger, limits } = setup;
  const cert = setup.tls?.cert;
  const key = setup.tls?.key;
  // Node checks header deadlines on this interval (30 s by default).
  const connectionsCheckingInterval = Math.min(1_000, limits.headerTimeoutMs / 4);
  const server = cert && key
    ? https.createServer({
      cert,
      key,
      minVersion: "TLSv1.2",
      handshakeTimeout: limits.handshakeTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      connectionsCheckingInterval,
    }, listener)
    : http.createServer(
      { maxHeaderSize: limits.maxHeaderBytes, connectionsCheckingInterval },
      listener,
    );
  server.headersTimeout = limits.headerTimeoutMs;
  server.requestTimeout = Math.max(REQUEST_TIMEOUT_MS, limits.headerTimeoutMs);
  server.keepAliveTimeout = limits.idleTimeoutMs;
  server.maxConnections = limits.maxConnections;
  server.on("drop", () => {
    logger.warn(
      `Connection refused: ${limits.maxConnections} connections are open (PIGGY_MAX_CONNECTIONS)`,
    );
  });
  server.on("tlsClientError", (error: Error, socket: { destroy(): void }) => {
    logger.debug("TLS handshake failed", { error: describeError(error) });
    socket.destroy();
  });
  return server;
}

async function main(): Promise<number> {
  const answered = answerWebhookArgs(process.argv.slice(2), {
    writeStdout: (text) => process.stdout.write(`${text}\n`),
    writeStderr: (text) => process.stderr.write(`${text}\n`),
  });
  if (answered !== undefined) return answered;
  const setup = await setUpWebhook({ ...process.env }, io);
  if ("error" in setup) return 1;
  const { logger, listen, app } = setup;
  const cert = setup.tls?.cert;

  const server = createServer(
    setup,
    createNodeListener(app.handler, {
      scheme: cert ? "https" : "http",
      closing: () => setup.shuttingDown,
      onError: (error) => {
        logger.error("Unhandled error while serving request", { error: describeError(error) });
      },
    }),
  );

  const bind = async (hostname: string) => {
    server.listen(listen.port, hostname);
    await once(server, "listening");
  };
  try {
    await bind(listen.hostname);
  } catch (error) {
    if (!listen.fallbackHostname) {
      logger.error("Cannot listen", { error: describeError(error) });
      return 1;
    }
    logger.warn(`Cannot listen on ${listen.hostname}: using ${listen.fallbackHostname}`, {
      error: describeError(error),
    });
    try {
      await bind(listen.fallbackHostname);
    } catch (fallbackError) {
      logger.error("Cannot listen", { error: describeError(fallbackError) });
      return 1;
    }
  }
  server.on("error", (error: Error) => {
    logger.error("Server error", { error: describeError(error) });
  });
  const closed = new Promise<void>((resolve) => server.once("close", () => resolve()));
  const address = server.address();
  if (address && typeof address === "object") {
    logger.info(`Listening on ${address.address}:${address.port}`, { tls: Boolean(cert) });
  }

  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  const stop = async (reason: string): Promise<void> => {
    if (!setup.beginShutdown()) return;
    logger.info(`Shutting down: ${reason}`);
    await delay(setup.shutdownDelayMs);
    // Stop accepting; idle keep-alive sockets close now, busy ones after their response (which
    // carries `Connection: close`), and all of them once the drain timeout passes.
    server.close();
    server.closeIdleConnections();
    drainTimer = setTimeout(() => server.closeAllConnections(), DRAIN_TIMEOUT_MS);
    drainTimer.unref();
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => void stop(`received ${signal}`));
  }
  const stopWatching = watchCertificate(setup, io, (newCert, newKey) => {
    if (!(server instanceof https.Server)) throw new TypeError("The server does not serve TLS");
    if (!new X509Certificate(newCert).checkPrivateKey(createPrivateKey(newKey))) {
      throw new RangeError("Cannot use the certificate: the key does not match it");
    }
    server.setSecureContext({ cert: newCert, key: newKey, minVersion: "TLSv1.2" });
  });

  await closed;
  stopWatching();
  if (drainTimer !== undefined) clearTimeout(drainTimer);
  setup.close();
  logger.info("Stopped");
  return 0;
}

process.exit(await main());
