/**
 * `createApp(deps)`: the webhook's request router. Plain `(Request) => Promise<Response>`; only
 * `cli/` opens ports.
 *
 * @module
 */

import { MUTATE_PATH, SECRET_PATH } from "../constants.ts";
import { createMutateHandler, type MutateHandlerDeps } from "../admission/mutate_handler.ts";
import { createSecretHandler, type SecretHandlerDeps } from "../authz/secret_handler.ts";
import type { KubeClient } from "../k8s/client.ts";
import type { SecretSource } from "../secrets/source.ts";
import { describeError, type Logger } from "../log.ts";
import { Metrics } from "./metrics.ts";
import type { WebhookOptions } from "../config/webhook_options.ts";
import type { ImageConfigSource } from "../pod/image_lookup.ts";
import type { EcrCredentialSource } from "../registry/ecr.ts";
import { randomSealKey, type SealKey } from "../pod/seal.ts";

/** A request handler. */
export type Handler = (request: Request) => Promise<Response>;

/** What the app needs from the outside world. */
export interface AppDeps {
  /** Kubernetes API access. */
  kube: KubeClient;
  /** Secret source used by `/secret`. */
  secrets: SecretSource;
  /** Options of the webhook process (`parseWebhookOptions`), including the settings fallbacks. */
  options: WebhookOptions;
  /** Root logger. */
  logger: Logger;
  /** Per-container UID generator. @default 32 lowercase hex chars from crypto.randomUUID() */
  newUid?: () => string;
  /**
   * Sealing keys shared by `/mutate` (the first seals) and `/secret` (any matches). @default one
   * random key for this app: pods sealed by another process are refused
   */
  sealKeys?: readonly SealKey[];
  /**
   * Readiness check for `/readyz`: resolves when the webhook can serve (certificate loaded,
   * Kubernetes API reachable). @default always ready
   */
  ready?: () => Promise<boolean>;
  /** Metrics registry. @default a new one */
  metrics?: Metrics;
  /**
   * Registry client for wrapped containers without `command` (PIGGY_IMAGE_LOOKUP decides what
   * happens). @default none: such pods are denied
   */
  registry?: ImageConfigSource;
  /** ECR credentials with the webhook's AWS identity. @default none */
  ecr?: EcrCredentialSource;
  /** `/secret`'s read of the caller's pod (a short cache). @default `kube.getPod` */
  readBoundPod?: SecretHandlerDeps["readBoundPod"];
}

/** The app: its handler and the metrics it records. */
export interface App {
  handler: Handler;
  metrics: Metrics;
}

function textResponse(status: number, body = ""): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
  });
}

/** The paths the app answers (anything else is 404). */
const ROUTES = new Set([MUTATE_PATH, SECRET_PATH, "/healthz", "/readyz", "/metrics"]);

/**
 * The path of a request URL: a route's own path as it is (the URL parser would give it back
 * unchanged; parsing costs ~2 µs per request), anything else through `URL`.
 */
export function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start !== -1 && ROUTES.has(url.slice(start))) return url.slice(start);
  return new URL(url).pathname;
}

/**
 * Builds the router for `/mutate`, `/secret`, `/healthz`, `/readyz` and `/metrics`.
 *
 * @example
 * ```ts
 * const options = parseWebhookOptions((name) => env[name]);
 * const { handler } = createApp({ kube, secrets, options, logger: new Logger() });
 * const response = await handler(new Request("https://piggy/healthz"));
 * ```
 */
export function createApp(deps: AppDeps): App {
  const metrics = deps.metrics ?? new Metrics();
  const sealKeys = deps.sealKeys?.length ? deps.sealKeys : [randomSealKey()];
  const mutateDeps: MutateHandlerDeps = {
    kube: deps.kube,
    sealKeys,
    options: deps.options,
    logger: deps.logger,
    ...(deps.newUid ? { newUid: deps.newUid } : {}),
    onAdmission: (outcome, seconds) => metrics.observeAdmission(outcome, seconds),
    ...(deps.registry
      ? {
        images: {
          registry: deps.registry,
          ...(deps.ecr ? { ecr: deps.ecr } : {}),
          mode: deps.options.imageLookup,
          timeoutMs: deps.options.imageLookupTimeoutMs,
          allowOtherNamespaces: deps.options.imagePullSecretAnyNamespace,
          forbidSkipVerify: deps.options.imageForbidSkipVerify,
        },
      }
      : {}),
  };
  const mutate = createMutateHandler(mutateDeps);
  const secret = createSecretHandler({
    kube: deps.kube,
    secrets: deps.secrets,
    options: deps.options,
    logger: deps.logger,
    sealKeys,
    onAnswer: (status, reason) => metrics.observeSecret(status, reason),
    ...(deps.readBoundPod ? { readBoundPod: deps.readBoundPod } : {}),
  });
  const ready = deps.ready ?? (() => Promise.resolve(true));

  const route = async (request: Request, path: string): Promise<Response> => {
    switch (path) {
      case MUTATE_PATH:
        return await mutate(request);
      case SECRET_PATH:
        return await secret(request);
      case "/healthz":
        return textResponse(200, "ok");
      case "/readyz":
        return (await ready()) ? textResponse(200, "ok") : textResponse(503, "not ready");
      case "/metrics":
        return new Response(metrics.render(), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      default:
        return textResponse(404, "not found");
    }
  };

  const handler: Handler = async (request) => {
    const started = performance.now();
    const path = pathOf(request.url);
    let status = 500;
    try {
      const response = await route(request, path);
      status = response.status;
      return response;
    } catch (error) {
      // Handlers do not throw by contract; this is the last line of defence.
      deps.logger.error("Unhandled error while serving request", {
        path,
        error: describeError(error),
      });
      return textResponse(500, "internal error");
    } finally {
      metrics.observeRequest(path, status, (performance.now() - started) / 1000);
    }
  };
  return { handler, metrics };
}
