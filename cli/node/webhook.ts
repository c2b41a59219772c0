#!/usr/bin/env node
/**
 * piggy-webhooks for Node (npm `bin`): serves `/mutate`, `/secret`, `/healthz`, `/readyz` and
 * `/metrics` with `node:https` (plain `node:http` when no certificate is configured). Same
 * environment contract as `cli/webhook.ts`:
 *
 * TLS_CERT_FILE, TLS_PRIVATE_KEY_FILE (plain HTTP only when both are unset), LISTEN_ADDRESS
 * (default `:8443`), DEBUG / LOG_LEVEL, KUBECONFIG (else in-cluster), PIGGY_CA_BUNDLE_FILE (CA
 * injected into wrapped containers), PIGGY_SECRET_CACHE_TTL (Go duration, default 0 = off),
 * AWS_* (SDK), and every setting fallback of docs/annotations.md.
 *
 * SIGTERM / SIGINT: stop accepting, finish in-flight requests, exit 0. A changed certificate file
 * drains and exits 0 too, so the kubelet restarts the container with the new certificate.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { once } from "node:events";
import http from "node:http";
import https from "node:https";
import process from "node:process";
import { createApp } from "../../src/server/app.ts";
import { parseListenAddress } from "../../src/server/listen_address.ts";
import { chooseLogLevel, describeError, Logger } from "../../src/log.ts";
import { loadKubeConfig } from "../../src/k8s/kubeconfig.ts";
import { createKubeClient } from "../../src/k8s/http_client.ts";
import { AwsSecretSource } from "../../src/secrets/aws_source.ts";
import { CachingSecretSource } from "../../src/secrets/caching_source.ts";
import { parseGoDuration } from "../../src/config/duration.ts";
import { createNodeListener } from "./http_adapter.ts";

const CERT_POLL_MS = 10_000;
const READY_CACHE_MS = 5_000;
/** Time allowed to receive a request's headers. */
const HEADERS_TIMEOUT_MS = 10_000;
/** Time allowed to receive a whole request (admission requests time out after at most 30 s). */
const REQUEST_TIMEOUT_MS = 30_000;
/** Idle keep-alive sockets are closed after this (above the API server's 90 s idle timeout). */
const KEEP_ALIVE_TIMEOUT_MS = 95_000;
/** In-flight requests get this long to finish on shutdown before sockets are closed. */
const DRAIN_TIMEOUT_MS = 25_000;

function envLookup(env: Record<string, string | undefined>): (name: string) => string | undefined {
  return (name) => {
    const value = env[name];
    return value === undefined || value === "" ? undefined : value;
  };
}

async function readOptional(path: string | undefined): Promise<string | undefined> {
  return path ? await readFile(path, "utf8") : undefined;
}

async function main(): Promise<number> {
  const env: Record<string, string | undefined> = { ...process.env };
  const envGet = envLookup(env);
  const debug = /^(1|t|true)$/i.test(envGet("DEBUG") ?? "");
  const logger = new Logger({ level: chooseLogLevel(envGet("LOG_LEVEL"), debug) });

  const certFile = envGet("TLS_CERT_FILE");
  const keyFile = envGet("TLS_PRIVATE_KEY_FILE");
  if (Boolean(certFile) !== Boolean(keyFile)) {
    logger.error("TLS_CERT_FILE and TLS_PRIVATE_KEY_FILE must be set together");
    return 1;
  }

  let listen;
  let cacheTtlMs = 0;
  let cert: string | undefined;
  let key: string | undefined;
  try {
    listen = parseListenAddress(envGet("LISTEN_ADDRESS") ?? ":8443");
    const ttl = envGet("PIGGY_SECRET_CACHE_TTL");
    cacheTtlMs = ttl ? parseGoDuration(ttl) : 0;
    cert = await readOptional(certFile);
    key = await readOptional(keyFile);
    const caBundle = await readOptional(envGet("PIGGY_CA_BUNDLE_FILE"));
    if (caBundle) env.PIGGY_CA_BUNDLE = caBundle;
  } catch (error) {
    logger.error("Cannot start piggy-webhooks", { error: describeError(error) });
    return 1;
  }
  if (!cert) logger.warn("TLS_CERT_FILE and TLS_PRIVATE_KEY_FILE are not set: serving plain HTTP");

  let kube;
  try {
    kube = createKubeClient(
      loadKubeConfig({
        envGet,
        readFile: (path) => readFileSync(path, "utf8"),
        homeDir: envGet("HOME") ?? "",
      }),
      { logger },
    );
  } catch (error) {
    logger.error("Cannot configure the Kubernetes client", { error: describeError(error) });
    return 1;
  }

  const secrets = new CachingSecretSource(new AwsSecretSource({ logger }), { ttlMs: cacheTtlMs });

  let shuttingDown = false;
  let readyUntil = 0;
  const ready = async (): Promise<boolean> => {
    if (shuttingDown) return false;
    if (performance.now() < readyUntil) return true;
    try {
      await kube.probe();
      readyUntil = performance.now() + READY_CACHE_MS;
      return true;
    } catch (error) {
      logger.warn("Kubernetes API is not reachable", { error: describeError(error) });
      return false;
    }
  };

  const app = createApp({ kube, secrets, envGet: envLookup(env), logger, ready });
  const listener = createNodeListener(app.handler, {
    scheme: cert ? "https" : "http",
    closing: () => shuttingDown,
    onError: (error) => {
      logger.error("Unhandled error while serving request", { error: describeError(error) });
    },
  });
  const server = cert && key
    ? https.createServer({ cert, key, minVersion: "TLSv1.2" }, listener)
    : http.createServer(listener);
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.on("tlsClientError", (error: Error) => {
    logger.debug("TLS handshake failed", { error: describeError(error) });
  });

  try {
    server.listen(listen.port, listen.hostname);
    await once(server, "listening");
  } catch (error) {
    logger.error("Cannot start piggy-webhooks", { error: describeError(error) });
    return 1;
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
  const stop = (reason: string): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info(`Shutting down: ${reason}`);
    // Stop accepting; idle keep-alive sockets close now, busy ones after their response (which
    // carries `Connection: close`), and all of them once the drain timeout passes.
    server.close();
    server.closeIdleConnections();
    drainTimer = setTimeout(() => server.closeAllConnections(), DRAIN_TIMEOUT_MS);
    drainTimer.unref();
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => stop(`received ${signal}`));
  }

  // Mirror cli/webhook.ts: when the mounted certificate changes, drain and exit 0 so the kubelet
  // restarts the container with the new one (≥ 2 replicas and a PDB keep the webhook available).
  let certTimer: ReturnType<typeof setInterval> | undefined;
  if (certFile && cert) {
    certTimer = setInterval(async () => {
      try {
        if ((await readFile(certFile, "utf8")) !== cert) stop("TLS certificate changed");
      } catch (error) {
        logger.warn("Cannot read TLS certificate", { error: describeError(error) });
      }
    }, CERT_POLL_MS);
  }

  await closed;
  if (certTimer !== undefined) clearInterval(certTimer);
  if (drainTimer !== undefined) clearTimeout(drainTimer);
  secrets.clear?.();
  logger.info("Stopped");
  return 0;
}

process.exit(await main());
