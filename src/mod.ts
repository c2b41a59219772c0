/**
 * Piggy's library API: the settings, the pod mutation, the `/mutate` and `/secret` request
 * handlers, the secret sources and the Kubernetes client. Everything here runs unchanged on Deno
 * and Node (the npm package `piggy-webhooks` ships it as ESM with type declarations).
 *
 * The handlers are plain `(Request) => Promise<Response>` functions; serve them with any HTTP
 * server (`Deno.serve`, `node:https` through the `piggy-webhooks` binary, or a test calling them
 * with `new Request(...)`).
 *
 * @example Serve the webhook's routes
 * ```ts
 * import {
 *   AwsSecretSource,
 *   createApp,
 *   createKubeClient,
 *   loadKubeConfig,
 *   Logger,
 *   parseWebhookOptions,
 * } from "piggy-webhooks";
 * import { readFileSync } from "node:fs";
 *
 * const envGet = (name: string) => process.env[name] || undefined;
 * const logger = new Logger({ level: "info" });
 * const kube = createKubeClient(
 *   loadKubeConfig({ envGet, readFile: (path) => readFileSync(path, "utf8") }),
 *   { logger },
 * );
 * const options = parseWebhookOptions(envGet);
 * const { handler } = createApp({ kube, secrets: new AwsSecretSource({ logger }), options, logger });
 * const response = await handler(new Request("https://piggy/healthz"));
 * ```
 *
 * @example Mutate a pod without a server
 * ```ts
 * import { FakeKubeClient, gatherFacts, mutatePod, resolveConfig } from "piggy-webhooks";
 *
 * const { config, problems } = resolveConfig(pod.metadata?.annotations, () => undefined);
 * const facts = await gatherFacts(pod, "default", new FakeKubeClient());
 * const { pod: mutated, changed } = mutatePod(pod, config, facts, () => crypto.randomUUID());
 * ```
 *
 * @module
 */

// Settings: one table, resolved annotation > env > default.

/**
 * Resolves every setting for a pod: annotation, then the webhook environment, then the default.
 *
 * @example
 * ```ts
 * const { config, sources, problems } = resolveConfig(
 *   { "piggysec.com/aws-secret-name": "app/prod" },
 *   (name) => process.env[name],
 * );
 * config.awsSecretName; // "app/prod"
 * ```
 */
export { resolveConfig } from "./config/resolve_config.ts";
export type {
  ConfigProblem,
  PiggyConfig,
  ResolvedConfig,
  SettingSource,
} from "./config/resolve_config.ts";
/** The settings table: annotation key, env name, type, default and a one-line doc each. */
export { envNameOf, SETTINGS } from "./config/settings.ts";
export {
  DISCOVERY_VARIABLES,
  parseWebhookOptions,
  WEBHOOK_OPTIONS,
} from "./config/webhook_options.ts";
export type { WebhookOption, WebhookOptions } from "./config/webhook_options.ts";
export type { SettingDefinition, SettingType } from "./config/settings.ts";
export { formatGoDuration, parseGoDuration } from "./config/duration.ts";
export { VERSION } from "./version.ts";

// Pod mutation: gather facts (I/O), then mutate (pure).

/**
 * Looks up the ConfigMaps and Secrets whose values decide which containers are wrapped.
 *
 * @example
 * ```ts
 * const facts = await gatherFacts(pod, "default", kube, { signal });
 * ```
 */
export { gatherFacts, GatherFactsError } from "./pod/gather_facts.ts";
export type { GatherFactsOptions } from "./pod/gather_facts.ts";
export type { PodFacts } from "./pod/container_refs.ts";
/**
 * Returns a mutated copy of the pod in which every qualifying container starts through piggy-env.
 *
 * @example
 * ```ts
 * const { pod: mutated, changed, warnings } = mutatePod(pod, config, facts, newUid);
 * ```
 */
export { mutatePod } from "./admission/mutate_pod.ts";
export type { MutationDenial, MutationResult, UidGenerator } from "./admission/mutate_pod.ts";
/**
 * The command signature shared by `/mutate`, `/secret` and piggy-env.
 *
 * @example
 * ```ts
 * commandSignature(["ls", "-la"]);
 * // "1de700c29687cae34561545f50d3c8b3d9afe88e04cc11069f8a6dc6e4ce9464"
 * ```
 */
export { commandSignature } from "./pod/signature.ts";

// Request handlers.

/**
 * Builds the `/mutate` handler: always answers an AdmissionReview echoing the request UID.
 *
 * @example
 * ```ts
 * const mutate = createMutateHandler({ kube, options: parseWebhookOptions((name) => env[name]), logger });
 * const response = await mutate(new Request("https://piggy/mutate", { method: "POST", body }));
 * ```
 */
export { createMutateHandler, MAX_BODY_BYTES } from "./admission/mutate_handler.ts";
export type { MutateHandlerDeps } from "./admission/mutate_handler.ts";
export type {
  AdmissionRequest,
  AdmissionResponse,
  AdmissionReviewRequest,
  AdmissionReviewResponse,
} from "./admission/types.ts";
/**
 * Builds the `/secret` handler (proxy mode): authenticates the pod's token, checks the command
 * signature and answers the filtered secret.
 *
 * @example
 * ```ts
 * const options = parseWebhookOptions((name) => env[name]);
 * const secret = createSecretHandler({ kube, secrets, options, logger });
 * ```
 */
export { createSecretHandler, DEFAULT_SECRET_BODY_LIMIT } from "./authz/secret_handler.ts";
export type { SecretHandlerDeps } from "./authz/secret_handler.ts";
/**
 * Builds the router for `/mutate`, `/secret`, `/healthz`, `/readyz` and `/metrics`.
 *
 * @example
 * ```ts
 * const { handler, metrics } = createApp({ kube, secrets, options, logger });
 * const response = await handler(new Request("https://piggy/healthz"));
 * ```
 */
export { createApp } from "./server/app.ts";
export type { App, AppDeps, Handler } from "./server/app.ts";
export { Metrics } from "./server/metrics.ts";

// Secret sources.

/**
 * Reads AWS Secrets Manager or SSM Parameter Store with the AWS SDK.
 *
 * @example
 * ```ts
 * const source = new CachingSecretSource(new AwsSecretSource({ logger }), { ttlMs: 30_000 });
 * const values = await source.fetchSecret({
 *   kind: "secretsManager",
 *   name: "app/prod",
 *   region: "eu-west-1",
 *   version: "",
 * });
 * ```
 */
export { AwsSecretSource } from "./secrets/aws_source.ts";
export type { AwsCredentialProvider, AwsSecretSourceOptions } from "./secrets/aws_source.ts";
export { CachingSecretSource } from "./secrets/caching_source.ts";
export type { CachingSecretSourceOptions } from "./secrets/caching_source.ts";
/**
 * In-memory secret source for tests and demos.
 *
 * @example
 * ```ts
 * const secrets = new MemorySecretSource().putSecret("app/prod", { DB_PASSWORD: "s3cret" });
 * ```
 */
export { MemorySecretSource } from "./secrets/memory_source.ts";
export type {
  SecretFetchOptions,
  SecretKind,
  SecretQuery,
  SecretsManagerQuery,
  SecretSource,
  SsmQuery,
} from "./secrets/source.ts";
export { queryKey, queryLabel, secretQueryOf } from "./secrets/query.ts";
export type { SecretSettings } from "./secrets/query.ts";
export { RouterSecretSource } from "./secrets/router_source.ts";
export type { SourcesByKind } from "./secrets/router_source.ts";
export { AwsClients } from "./secrets/aws_clients.ts";
export { SecretsManagerSource } from "./secrets/secrets_manager_source.ts";
export { SsmSource } from "./secrets/ssm_source.ts";
export type { SsmSourceOptions } from "./secrets/ssm_source.ts";

// Kubernetes.

export type { KubeCallOptions, KubeClient } from "./k8s/client.ts";
/**
 * Creates the HTTPS Kubernetes client from a loaded configuration.
 *
 * @example
 * ```ts
 * const kube = createKubeClient(loadKubeConfig({ envGet, readFile }), { logger });
 * const pod = await kube.getPod("default", "app-0");
 * ```
 */
export { createKubeClient, HttpKubeClient } from "./k8s/http_client.ts";
export type { HttpKubeClientOptions } from "./k8s/http_client.ts";
export { loadKubeConfig, parseKubeConfig } from "./k8s/kubeconfig.ts";
export type { KubeConfig, LoadKubeConfigOptions } from "./k8s/kubeconfig.ts";
/** In-memory Kubernetes client for tests and demos. */
export { FakeKubeClient } from "./k8s/fake.ts";

// Logging and errors.

export { chooseLogLevel, describeError, Logger, parseLogLevel } from "./log.ts";
export type { LogFields, LoggerOptions, LogLevel, LogSink } from "./log.ts";
export {
  AccessDeniedError,
  AdmissionDecodeError,
  KubeApiError,
  KubeUnavailableError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  PiggyError,
  SecretSourceError,
  toErrorBody,
  toStatus,
  UnauthenticatedError,
  UnsupportedMediaTypeError,
  UsageError,
} from "./errors.ts";
export type { PiggyErrorOptions } from "./errors.ts";
