// deno-lint-ignore-file no-console
/**
 * piggy-webhooks: serves `/mutate`, `/secret`, `/healthz`, `/readyz` and `/metrics` over HTTPS with
 * `Deno.serve`.
 *
 * Environment: TLS_CERT_FILE, TLS_PRIVATE_KEY_FILE (plain HTTP only when both are unset),
 * LISTEN_ADDRESS (default `:8443`), DEBUG / LOG_LEVEL, KUBECONFIG (else in-cluster),
 * PIGGY_CA_BUNDLE_FILE (CA injected into wrapped containers), PIGGY_SECRET_CACHE_TTL (Go duration,
 * default 0 = off), PIGGY_CERT_POLL_INTERVAL (default 10s), AWS_* (SDK), and every setting fallback of docs/annotations.md.
 *
 * @module
 */

import { createApp } from "../src/server/app.ts";
import { parseListenAddress } from "../src/server/listen_address.ts";
import { chooseLogLevel, describeError, Logger } from "../src/log.ts";
import { loadKubeConfig } from "../src/k8s/kubeconfig.ts";
import { createKubeClient } from "../src/k8s/http_client.ts";
import { AwsSecretSource } from "../src/secrets/aws_source.ts";
import { CachingSecretSource } from "../src/secrets/caching_source.ts";
import { parseGoDuration } from "../src/config/duration.ts";

const READY_CACHE_MS = 5_000;

function envLookup(env: Record<string, string>): (name: string) => string | undefined {
  return (name) => {
    const value = env[name];
    return value === undefined || value === "" ? undefined : value;
  };
}

async function readOptional(path: string | undefined): Promise<string | undefined> {
  return path ? await Deno.readTextFile(path) : undefined;
}

async function main(): Promise<number> {
  const env = Deno.env.toObject();
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
  let certPollMs = 10_000;
  let cert: string | undefined;
  let key: string | undefined;
  try {
    listen = parseListenAddress(envGet("LISTEN_ADDRESS") ?? ":8443");
    const ttl = envGet("PIGGY_SECRET_CACHE_TTL");
    cacheTtlMs = ttl ? parseGoDuration(ttl) : 0;
    const poll = envGet("PIGGY_CERT_POLL_INTERVAL");
    if (poll) certPollMs = parseGoDuration(poll);
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
    const kubeConfig = loadKubeConfig({ envGet, readFile: (path) => Deno.readTextFileSync(path) });
    logger.info(`Kubernetes API at ${kubeConfig.server}`, { source: kubeConfig.source });
    kube = createKubeClient(kubeConfig, { logger });
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
  const server = Deno.serve({
    hostname: listen.hostname,
    port: listen.port,
    ...(cert && key ? { cert, key } : {}),
    onListen: (addr) => {
      logger.info(`Listening on ${addr.hostname}:${addr.port}`, { tls: Boolean(cert) });
    },
    onError: (error) => {
      logger.error("Unhandled error while serving request", { error: describeError(error) });
      return new Response("internal error", { status: 500 });
    },
  }, app.handler);

  const stop = async (reason: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info(`Shutting down: ${reason}`);
    await server.shutdown();
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => void stop(`received ${signal}`));
  }

  // Deno.serve cannot swap certificates in place: when the mounted certificate changes, drain and
  // exit 0 so the kubelet restarts the container with the new one (≥ 2 replicas and a PDB keep the
  // webhook available meanwhile).
  let certTimer: ReturnType<typeof setInterval> | undefined;
  if (certFile && cert) {
    certTimer = setInterval(async () => {
      try {
        if ((await Deno.readTextFile(certFile)) !== cert) await stop("TLS certificate changed");
      } catch (error) {
        logger.warn("Cannot read TLS certificate", { error: describeError(error) });
      }
    }, certPollMs);
  }

  await server.finished;
  if (certTimer !== undefined) clearInterval(certTimer);
  secrets.clear();
  logger.info("Stopped");
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main());
}
