/**
 * Everything the two webhook entry points (`cli/webhook.ts` on `Deno.serve`, `cli/node/webhook.ts`
 * on `node:https`) share before they open a port: the environment contract, the logger, TLS
 * material, the Kubernetes client, the AWS secret source, readiness, the app, and the shutdown and
 * certificate-rotation timing. The entry points only serve and handle signals.
 *
 * Environment: TLS_CERT_FILE, TLS_PRIVATE_KEY_FILE (plain HTTP only when both are unset),
 * LISTEN_ADDRESS (default `:8443`, every interface), DEBUG / LOG_LEVEL, KUBECONFIG (else
 * in-cluster), PIGGY_CA_BUNDLE_FILE (CA injected into wrapped containers), PIGGY_SECRET_CACHE_TTL
 * (Go duration, default 0 = off), PIGGY_CERT_POLL_INTERVAL (default 10s), PIGGY_SHUTDOWN_DELAY
 * (default 5s: time not-ready before the listener closes), PIGGY_AWS_ALLOW_INSTANCE_METADATA
 * (default false), AWS_* (SDK), and every setting fallback of docs/annotations.md.
 *
 * @module
 */

import { type App, createApp } from "./app.ts";
import { type ListenAddress, parseListenAddress } from "./listen_address.ts";
import { chooseLogLevel, describeError, Logger } from "../log.ts";
import { loadKubeConfig } from "../k8s/kubeconfig.ts";
import { createKubeClient } from "../k8s/http_client.ts";
import { AwsSecretSource } from "../secrets/aws_source.ts";
import { CachingSecretSource } from "../secrets/caching_source.ts";
import { parseGoDuration } from "../config/duration.ts";
import { parseGoBool } from "../config/parse.ts";

/** How long a successful readiness probe of the Kubernetes API is reused. */
const READY_CACHE_MS = 5_000;

/** In-flight requests get this long to finish once the listener is closed. */
export const DRAIN_TIMEOUT_MS = 25_000;

/** File access the setup needs (Deno or Node). */
export interface SetupIo {
  readTextFile(path: string): Promise<string>;
  readTextFileSync(path: string): string;
}

/** A webhook ready to be served. */
export interface WebhookSetup {
  logger: Logger;
  listen: ListenAddress;
  /** PEM certificate and key; both undefined for plain HTTP. */
  tls?: { cert: string; key: string; certFile: string };
  app: App;
  /** How often the certificate file is compared with the one served. */
  certPollMs: number;
  /** Time spent not-ready before the listener closes on shutdown. */
  shutdownDelayMs: number;
  /** True once {@link WebhookSetup.beginShutdown} was called. */
  readonly shuttingDown: boolean;
  /** Makes `/readyz` fail from now on; returns false if shutdown had already begun. */
  beginShutdown(): boolean;
  /** Drops cached secrets and closes AWS connections. */
  close(): void;
}

/** Looks up an environment variable, treating empty values as unset. */
export function envLookup(
  env: Readonly<Record<string, string | undefined>>,
): (name: string) => string | undefined {
  return (name) => {
    const value = env[name];
    return value === undefined || value === "" ? undefined : value;
  };
}

function duration(envGet: (name: string) => string | undefined, name: string, fallback: number) {
  const text = envGet(name);
  try {
    return text ? parseGoDuration(text) : fallback;
  } catch (error) {
    throw new SyntaxError(`Cannot use ${name}: ${describeError(error)}`);
  }
}

function flag(envGet: (name: string) => string | undefined, name: string): boolean {
  const text = envGet(name);
  try {
    return text === undefined ? false : parseGoBool(text);
  } catch (error) {
    throw new SyntaxError(`Cannot use ${name}: ${describeError(error)}`);
  }
}

/**
 * Reads the environment and builds the app.
 *
 * @param environment the process environment (a copy: `PIGGY_CA_BUNDLE` is added to it)
 * @returns the setup, or an error message (already logged) when the webhook cannot start
 */
export async function setUpWebhook(
  environment: Readonly<Record<string, string | undefined>>,
  io: SetupIo,
): Promise<WebhookSetup | { error: string }> {
  const env = { ...environment };
  const envGet = envLookup(env);
  // Go Piggy: DEBUG=true (any ParseBool truth) turns debug logging on; anything else does not.
  let debug = false;
  try {
    debug = parseGoBool(envGet("DEBUG") ?? "false");
  } catch {
    // an invalid DEBUG leaves debug off
  }
  const logger = new Logger({ level: chooseLogLevel(envGet("LOG_LEVEL"), debug) });
  const fail = (message: string, error?: unknown) => {
    logger.error(message, error === undefined ? {} : { error: describeError(error) });
    return { error: message };
  };

  const certFile = envGet("TLS_CERT_FILE");
  const keyFile = envGet("TLS_PRIVATE_KEY_FILE");
  if (Boolean(certFile) !== Boolean(keyFile)) {
    return fail("TLS_CERT_FILE and TLS_PRIVATE_KEY_FILE must be set together");
  }
  let listen: ListenAddress;
  let cacheTtlMs: number;
  let certPollMs: number;
  let shutdownDelayMs: number;
  let allowInstanceMetadata: boolean;
  let tls: WebhookSetup["tls"];
  try {
    listen = parseListenAddress(envGet("LISTEN_ADDRESS") ?? ":8443");
    cacheTtlMs = duration(envGet, "PIGGY_SECRET_CACHE_TTL", 0);
    certPollMs = duration(envGet, "PIGGY_CERT_POLL_INTERVAL", 10_000);
    if (certPollMs < 100) throw new RangeError("Cannot use PIGGY_CERT_POLL_INTERVAL: below 100ms");
    shutdownDelayMs = duration(envGet, "PIGGY_SHUTDOWN_DELAY", 5_000);
    allowInstanceMetadata = flag(envGet, "PIGGY_AWS_ALLOW_INSTANCE_METADATA");
    if (certFile && keyFile) {
      tls = {
        cert: await io.readTextFile(certFile),
        key: await io.readTextFile(keyFile),
        certFile,
      };
    }
    const caBundleFile = envGet("PIGGY_CA_BUNDLE_FILE");
    if (caBundleFile) env.PIGGY_CA_BUNDLE = await io.readTextFile(caBundleFile);
  } catch (error) {
    return fail("Cannot start piggy-webhooks", error);
  }
  if (!tls) logger.warn("TLS_CERT_FILE and TLS_PRIVATE_KEY_FILE are not set: serving plain HTTP");

  let kube;
  try {
    const kubeConfig = loadKubeConfig({ envGet, readFile: io.readTextFileSync });
    logger.info(`Kubernetes API at ${kubeConfig.server}`, { source: kubeConfig.source });
    kube = createKubeClient(kubeConfig, { logger });
  } catch (error) {
    return fail("Cannot configure the Kubernetes client", error);
  }

  // Pods choose the region of their secret, never the region of the webhook's own IRSA exchange.
  const aws = new AwsSecretSource({
    logger,
    allowInstanceMetadata,
    stsRegion: envGet("AWS_REGION") ?? envGet("AWS_DEFAULT_REGION") ?? "us-east-1",
  });
  const secrets = new CachingSecretSource(aws, { ttlMs: cacheTtlMs });
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
  return {
    logger,
    listen,
    ...(tls ? { tls } : {}),
    app,
    certPollMs,
    shutdownDelayMs,
    get shuttingDown() {
      return shuttingDown;
    },
    beginShutdown() {
      if (shuttingDown) return false;
      shuttingDown = true;
      return true;
    },
    close() {
      secrets.clear();
      aws.destroy();
    },
  };
}

/**
 * Polls the certificate file and calls `onChange` once when its content differs from the served
 * one (Deno.serve cannot swap certificates in place: the entry points drain and exit 0 so the
 * kubelet restarts the container with the new certificate).
 *
 * @returns a function that stops polling
 */
export function watchCertificate(
  setup: WebhookSetup,
  io: SetupIo,
  onChange: () => void,
): () => void {
  const tls = setup.tls;
  if (!tls) return () => {};
  const timer = setInterval(async () => {
    try {
      if ((await io.readTextFile(tls.certFile)) !== tls.cert) {
        clearInterval(timer);
        onChange();
      }
    } catch (error) {
      setup.logger.warn("Cannot read TLS certificate", { error: describeError(error) });
    }
  }, setup.certPollMs);
  return () => clearInterval(timer);
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
