/**
 * Everything the two webhook entry points (`cli/webhook.ts` on `Deno.serve`, `cli/node/webhook.ts`
 * on `node:https`) share before they open a port: the options (parsed once, see
 * `src/config/webhook_options.ts`), the logger, TLS material, the Kubernetes client, the AWS secret
 * source, readiness, the app, the connection limits, and the shutdown and certificate-polling
 * timing. The entry points
 * only serve and handle signals.
 *
 * @module
 */

import { type App, createApp } from "./app.ts";
import { Metrics } from "./metrics.ts";
import { readProcessStats, runtimeInfo } from "../runtime/process_stats.ts";
import { batchedStderrSink } from "../runtime/stderr_sink.ts";
import { VERSION } from "../version.ts";
import type { ListenAddress } from "../config/listen_address.ts";
import { describeError, Logger } from "../log.ts";
import { loadKubeConfig } from "../k8s/kubeconfig.ts";
import { createKubeClient } from "../k8s/http_client.ts";
import type { RunCommand } from "../k8s/exec_credential.ts";
import { AwsSecretSource } from "../secrets/aws_source.ts";
import type { AwsCallResult } from "../secrets/aws_metrics.ts";
import { SessionSecretSource } from "../secrets/session_source.ts";
import type { SecretSource } from "../secrets/source.ts";
import { podCredentialProvider } from "../secrets/aws_credentials.ts";
import { RegistryClient } from "../registry/client.ts";
import { AwsEcrCredentialSource } from "../registry/ecr.ts";
import { CachingSecretSource } from "../secrets/caching_source.ts";
import { CachingKubeClient } from "../k8s/caching_client.ts";
import {
  logLevelOf,
  parseWebhookOptions,
  type WebhookOptions,
  withCaBundle,
} from "../config/webhook_options.ts";
import type { ConnectionLimits } from "./front_listener.ts";
import { randomSealKey, type SealKey, sealKeyFromText } from "../pod/seal.ts";

/** How long a successful readiness probe of the Kubernetes API is reused. */
const READY_CACHE_MS = 5_000;

/** In-flight requests get this long to finish once the listener is closed. */
export const DRAIN_TIMEOUT_MS = 25_000;

/** File access the setup needs (Deno or Node). */
export interface SetupIo {
  readTextFile(path: string): Promise<string>;
  readTextFileSync(path: string): string;
  /** Runs kubeconfig `exec` plugins: given only by an entry point allowed to run commands. */
  runCommand?: RunCommand;
}

/** A webhook ready to be served. */
export interface WebhookSetup {
  logger: Logger;
  listen: ListenAddress;
  /** PEM certificate and key (the ones served now); undefined for plain HTTP. */
  tls?: { cert: string; key: string; certFile: string; keyFile: string };
  /** Connection deadlines and caps of the listener. */
  limits: ConnectionLimits;
  app: App;
  /** How often the certificate and key files are compared with the ones served. */
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

/** A step failed: the message is logged once, by {@link setUpWebhook}. */
class SetupError extends Error {
  override name = "SetupError";
}

async function readTls(
  options: WebhookOptions,
  io: SetupIo,
): Promise<WebhookSetup["tls"]> {
  const certFile = options.tlsCertFile;
  if (certFile === "") return undefined;
  try {
    return {
      cert: await io.readTextFile(certFile),
      key: await io.readTextFile(options.tlsPrivateKeyFile),
      certFile,
      keyFile: options.tlsPrivateKeyFile,
    };
  } catch (error) {
    throw new SetupError(`Cannot read the TLS certificate or key: ${describeError(error)}`);
  }
}

async function readCaBundle(options: WebhookOptions, io: SetupIo): Promise<WebhookOptions> {
  if (options.caBundleFile === "") return options;
  try {
    return withCaBundle(options, await io.readTextFile(options.caBundleFile));
  } catch (error) {
    throw new SetupError(`Cannot read PIGGY_CA_BUNDLE_FILE: ${describeError(error)}`);
  }
}

function isMissingFile(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return error.name === "NotFound" || (error as Error & { code?: unknown }).code === "ENOENT";
}

/**
 * The sealing keys of PIGGY_SEAL_KEY_FILES: the first file must be readable; a later one that does
 * not exist is an empty rotation slot. Without files, one random key for this process.
 */
async function readSealKeys(
  options: WebhookOptions,
  io: SetupIo,
  logger: Logger,
): Promise<SealKey[]> {
  if (options.sealKeyFiles.length === 0) {
    logger.warn(
      "PIGGY_SEAL_KEY_FILES is not set: pods are sealed with a key made for this process, so " +
        "/secret refuses pods admitted by another replica or before a restart",
    );
    return [randomSealKey()];
  }
  const keys: SealKey[] = [];
  for (const [index, file] of options.sealKeyFiles.entries()) {
    let text: string;
    try {
      text = await io.readTextFile(file);
    } catch (error) {
      if (index > 0 && isMissingFile(error)) {
        logger.info(`Sealing key file "${file}" does not exist: only the first key is used`);
        continue;
      }
      throw new SetupError(
        `Cannot read PIGGY_SEAL_KEY_FILES file "${file}": ${describeError(error)}`,
      );
    }
    try {
      keys.push(sealKeyFromText(text));
    } catch (error) {
      throw new SetupError(
        `Cannot use PIGGY_SEAL_KEY_FILES file "${file}": ${describeError(error)}`,
      );
    }
  }
  return keys;
}

type KubeClient = ReturnType<typeof createKubeClient>;

function connectKubernetes(
  timeoutMs: number,
  envGet: (name: string) => string | undefined,
  io: SetupIo,
  logger: Logger,
  metrics: Metrics,
): KubeClient {
  try {
    const kubeConfig = loadKubeConfig({ envGet, readFile: io.readTextFileSync });
    logger.info(`Kubernetes API at ${kubeConfig.server}`, { source: kubeConfig.source });
    return createKubeClient(kubeConfig, {
      timeoutMs,
      logger,
      observe: (api, result, seconds) => metrics.observeKubernetes(api, result, seconds),
      ...(io.runCommand ? { runCommand: io.runCommand } : {}),
    });
  } catch (error) {
    throw new SetupError(`Cannot configure the Kubernetes client: ${describeError(error)}`);
  }
}

/** `/readyz`: the Kubernetes API answered recently, and shutdown has not begun. */
function createReadiness(kube: KubeClient, logger: Logger) {
  let shuttingDown = false;
  let readyUntil = 0;
  return {
    get shuttingDown() {
      return shuttingDown;
    },
    beginShutdown(): boolean {
      if (shuttingDown) return false;
      shuttingDown = true;
      return true;
    },
    async ready(): Promise<boolean> {
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
    },
  };
}

/**
 * Parses the options, reads the files they name and builds the app.
 *
 * @param environment the process environment (not modified)
 * @returns the setup, or an error message (already logged, one line) when the webhook cannot start
 */
export async function setUpWebhook(
  environment: Readonly<Record<string, string | undefined>>,
  io: SetupIo,
): Promise<WebhookSetup | { error: string }> {
  const envGet = envLookup(environment);
  let options: WebhookOptions;
  try {
    options = parseWebhookOptions(envGet);
  } catch (error) {
    // The log level itself may be what is wrong: report with the default one.
    const message = `Cannot start piggy-webhooks: ${describeError(error)}`;
    new Logger().error(message);
    return { error: message };
  }
  // Batched: one stderr write per event-loop turn rather than one per request.
  const logger = new Logger({ level: logLevelOf(options), sink: batchedStderrSink() });
  let tls: WebhookSetup["tls"];
  let kube: KubeClient;
  let sealKeys: SealKey[];
  const metrics = new Metrics({
    processStats: readProcessStats,
    build: { version: VERSION, ...runtimeInfo() },
  });
  try {
    tls = await readTls(options, io);
    options = await readCaBundle(options, io);
    sealKeys = await readSealKeys(options, io, logger);
    kube = connectKubernetes(options.kubeCallTimeoutMs, envGet, io, logger, metrics);
  } catch (error) {
    const message = `Cannot start piggy-webhooks: ${describeError(error)}`;
    logger.error(message);
    return { error: message };
  }
  if (!tls) logger.warn("TLS_CERT_FILE and TLS_PRIVATE_KEY_FILE are not set: serving plain HTTP");
  if (options.accessGuard.policy === "any") {
    logger.warn(
      "PIGGY_SECRET_ACCESS_POLICY=any: every pod may read every secret the webhook's role can " +
        "read unless the secret lists its readers in PIGGY_ALLOWED_SA (Go Piggy's behaviour, " +
        "for migration only)",
    );
  }

  // Pods choose the region of their secret, never the region of the webhook's own IRSA exchange.
  const stsRegion = envGet("AWS_REGION") ?? envGet("AWS_DEFAULT_REGION") ?? "us-east-1";
  const awsClientOptions = {
    allowInstanceMetadata: options.allowInstanceMetadata,
    requestTimeoutMs: options.awsAttemptTimeoutMs,
    connectionTimeoutMs: Math.min(3_000, options.awsAttemptTimeoutMs),
    stsRegion,
  };
  const observe = (api: string, result: AwsCallResult, seconds: number): void =>
    metrics.observeAws(api, result, seconds);
  let aws: SecretSource & { destroy(): void };
  if (options.awsSessionRoleArn !== "") {
    aws = new SessionSecretSource({
      roleArn: options.awsSessionRoleArn,
      durationSeconds: Math.floor(options.awsSessionDurationMs / 1000),
      maxSessions: options.awsSessionCacheSize,
      stsRegion,
      clients: awsClientOptions,
      logger,
      observe,
    });
    logger.info(
      `/secret reads AWS through sts:AssumeRole of ${options.awsSessionRoleArn}, one session per ` +
        "pod namespace and service account (PIGGY_AWS_SESSION_ROLE_ARN)",
    );
  } else {
    aws = new AwsSecretSource({ ...awsClientOptions, logger, observe });
  }
  const secrets = new CachingSecretSource(aws, {
    ttlMs: options.secretCacheTtlMs,
    maxEntries: options.secretCacheSize,
    onLookup: (result) => metrics.observeCache(result),
  });
  let registryCa: string | undefined;
  if (options.registryCaBundleFile !== "") {
    try {
      registryCa = await io.readTextFile(options.registryCaBundleFile);
    } catch (error) {
      const message = "Cannot start piggy-webhooks: cannot read PIGGY_REGISTRY_CA_BUNDLE_FILE: " +
        describeError(error);
      logger.error(message);
      return { error: message };
    }
  }
  const registry = new RegistryClient({
    ...(registryCa ? { caCertificates: registryCa } : {}),
    allowLoopback: options.registryAllowLoopback,
    allowedRegistries: options.registryAllowList,
    cacheEntries: options.imageCacheEntries,
    tagTtlMs: options.imageCacheTtlMs,
    lookupTimeoutMs: options.imageLookupTimeoutMs,
    onLookup: (result) => metrics.observeImageLookup(result),
  });
  const ecr = new AwsEcrCredentialSource({
    credentials: podCredentialProvider({
      allowInstanceMetadata: options.allowInstanceMetadata,
      stsRegion: envGet("AWS_REGION") ?? envGet("AWS_DEFAULT_REGION") ?? "us-east-1",
    }),
  });
  const readiness = createReadiness(kube, logger);
  const cachingKube = new CachingKubeClient(kube, {
    tokenReviewTtlMs: options.tokenReviewCacheTtlMs,
    tokenReviewMaxEntries: options.tokenReviewCacheSize,
    maxTokenReviewsInFlight: options.maxTokenReviews,
    onTokenReview: (result) => metrics.observeTokenReviewCache(result),
    podTtlMs: options.podCacheTtlMs,
    podMaxEntries: options.tokenReviewCacheSize,
    onPodRead: (result) => metrics.observePodCache(result),
  });
  const app = createApp({
    kube: cachingKube,
    secrets,
    options,
    logger,
    ready: readiness.ready,
    metrics,
    registry,
    ecr,
    sealKeys,
    readBoundPod: (namespace, name, boundUid, callOptions) =>
      cachingKube.getBoundPod(namespace, name, boundUid, callOptions),
  });
  return {
    logger,
    listen: options.listen,
    ...(tls ? { tls } : {}),
    limits: {
      handshakeTimeoutMs: options.handshakeTimeoutMs,
      headerTimeoutMs: options.headerTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      maxConnections: options.maxConnections,
      maxHeaderBytes: options.maxHeaderBytes,
    },
    app,
    certPollMs: options.certPollMs,
    shutdownDelayMs: options.shutdownDelayMs,
    get shuttingDown() {
      return readiness.shuttingDown;
    },
    beginShutdown: () => readiness.beginShutdown(),
    close() {
      secrets.clear();
      cachingKube.clear();
      aws.destroy();
      registry.close();
      ecr.close();
    },
  };
}

/**
 * Polls the certificate and key files and calls `apply` with both whenever they differ from the
 * ones served. `setup.tls` is updated and the change logged when `apply` returns; when it throws
 * (a key not yet matching a new certificate while files are replaced one by one) the previous
 * pair stays served, a warning says so, and the new pair is offered again at the next poll.
 *
 * @returns a function that stops polling
 */
export function watchCertificate(
  setup: WebhookSetup,
  io: SetupIo,
  apply: (cert: string, key: string) => void,
): () => void {
  const tls = setup.tls;
  if (!tls) return () => {};
  const logger = setup.logger;
  const offer = (cert: string, key: string) => {
    try {
      apply(cert, key);
    } catch (error) {
      logger.warn("Cannot use the changed TLS certificate: still serving the previous one", {
        error: describeError(error),
      });
      return;
    }
    tls.cert = cert;
    tls.key = key;
    logger.info("TLS certificate changed: serving the new one to new connections");
  };
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const cert = await io.readTextFile(tls.certFile);
      const key = await io.readTextFile(tls.keyFile);
      if (cert !== tls.cert || key !== tls.key) offer(cert, key);
    } catch (error) {
      logger.warn("Cannot read TLS certificate", { error: describeError(error) });
    } finally {
      busy = false;
    }
  }, setup.certPollMs);
  return () => clearInterval(timer);
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
