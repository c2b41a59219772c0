/**
 * The `/secret` proxy handler: authenticates a launcher's service-account token, authorizes the
 * secret its live pod is configured with, fetches it and answers a flat JSON map of strings.
 *
 * Wire compatible with Go Piggy 0.7 launchers (spec §1.10): `POST`, `Content-Type:
 * application/json` (parameters such as `; charset=utf-8` are accepted, Go required the exact
 * text), `X-Token: <raw token>`, body `{"resources","name","uid","signature"}`. Failures answer
 * `{"error": code, "message": text}` with the status from `toStatus` (Go answered 400 for almost
 * everything):
 *
 * | Status | When |
 * | --- | --- |
 * | 400 | body not JSON, not an object, `name` not a pod name, `uid`/`signature` not strings |
 * | 401 | `X-Token` missing or empty; token not authenticated or not for `PIGGY_TOKEN_AUDIENCES` |
 * | 403 | refused: not a service account, another pod's token, service account mismatch, uid or signature, denying setting, `PIGGY_ALLOWED_SA`, `PIGGY_ENFORCE_SERVICE_ACCOUNT` |
 * | 404 | the pod does not exist in the token's namespace |
 * | 405 | method other than POST |
 * | 413 | body larger than `maxBodyBytes` |
 * | 415 | content type other than `application/json` (Go: 400) |
 * | 502 | AWS error (`error` = the AWS error code); the Kubernetes API refused the webhook (4xx, e.g. RBAC) |
 * | 503 | the Kubernetes API is unreachable, answers 5xx or 429: retryable |
 *
 * Checks run in Go's order: method, content type, token header, then the body (so a missing token is
 * 401 before any JSON parsing, spec §3.8).
 *
 * Every request writes exactly one audit line: info on success, warn on 4xx, error on 5xx, with
 * `namespace`, `pod_name`, `service_account` (`ns:sa`), `secret_name` (or the SSM path) and
 * `status`; message `Request from [sa=ns:sa], [pod=name] was successful` or `… was error: <message>`
 * as Go Piggy. The token, the body and the values are never logged.
 *
 * @module
 */

import { TOKEN_HEADER } from "../constants.ts";
import {
  AdmissionDecodeError,
  KubeApiError,
  KubeUnavailableError,
  MethodNotAllowedError,
  PiggyError,
  toErrorBody,
  toStatus,
  UnauthenticatedError,
  UnsupportedMediaTypeError,
} from "../errors.ts";
import type { KubeClient } from "../k8s/client.ts";
import type { LogFields, Logger } from "../log.ts";
import type { SecretSource } from "../secrets/source.ts";
import { resolveConfig } from "../config/resolve_config.ts";
import {
  authorizeValues,
  containerOfUid,
  decideSecretAccess,
  identifyCaller,
  onlyReferencedKeys,
  type SecretRequest,
} from "./decide.ts";
import { readBodyText } from "../server/read_body.ts";
import { gatherFacts, GatherFactsError } from "../mutate/gather_facts.ts";
import { referencedSecretKeys } from "../mutate/container_refs.ts";
import { settingLookup, type WebhookOptions } from "../config/webhook_options.ts";

/** Default limit of a `/secret` request body: Go launchers send about 200 bytes. */
export const DEFAULT_SECRET_BODY_LIMIT = 64 * 1024;

/** Dependencies of {@link createSecretHandler}. */
export interface SecretHandlerDeps {
  /** Kubernetes API: TokenReview and pod reads. */
  kube: KubeClient;
  /** Where secret values come from. */
  secrets: SecretSource;
  /** Webhook options: the settings fallbacks, `PIGGY_TOKEN_AUDIENCES`, `PIGGY_ANSWER_ALL_KEYS`. */
  options: Pick<WebhookOptions, "settingEnv" | "tokenAudiences" | "answerAllKeys">;
  /** Audit and diagnostics logger. */
  logger: Logger;
  /** Largest accepted body in bytes. @default DEFAULT_SECRET_BODY_LIMIT (64 KiB) */
  maxBodyBytes?: number;
}

/** The Kubernetes object name rules (DNS subdomain) a pod name follows. */
const POD_NAME_PATTERN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

const JSON_HEADERS = {
  "content-type": "application/json",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
};

/** What the audit line reports; filled in as the request progresses. */
interface AuditFacts {
  namespace?: string;
  podName?: string;
  serviceAccount?: string;
  secretLabel?: string;
}

function checkContentType(header: string | null): void {
  const mediaType = (header ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (mediaType !== "application/json") {
    throw new UnsupportedMediaTypeError(
      `Cannot accept content type "${header ?? ""}": only application/json is supported`,
    );
  }
}

/** Validates the body's shape. `resources` is informational (Go never read it). */
function parseSecretRequest(text: string): SecretRequest {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    // The parser's message quotes the body: keep it out of responses and logs.
    throw new AdmissionDecodeError("Cannot decode request: body is not valid JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new AdmissionDecodeError("Cannot decode request: body must be a JSON object");
  }
  const fields = body as Record<string, unknown>;
  const { name, uid = "", signature = "" } = fields;
  if (typeof name !== "string" || name === "") {
    throw new AdmissionDecodeError(`Cannot decode request: "name" must be a non-empty string`);
  }
  if (!POD_NAME_PATTERN.test(name)) {
    throw new AdmissionDecodeError(`Cannot decode request: "name" is not a valid pod name`);
  }
  if (typeof uid !== "string" || typeof signature !== "string") {
    throw new AdmissionDecodeError(
      `Cannot decode request: "uid" and "signature" must be strings`,
    );
  }
  return { name, uid, signature };
}

/**
 * Classifies a Kubernetes API failure: no answer, 5xx and 429 are "unavailable" (503, retryable);
 * other statuses (401/403: the webhook's own credentials or RBAC are wrong) stay a `KubeApiError`
 * (502), because retrying will not help and the caller is not at fault.
 */
function kubeFailure(error: unknown, what: string): unknown {
  if (error instanceof KubeUnavailableError) {
    return new KubeUnavailableError(`Cannot ${what}: ${error.message}`, { cause: error });
  }
  if (error instanceof KubeApiError) {
    if (error.status === 0 || error.status === 429 || error.status >= 500) {
      return new KubeUnavailableError(
        `Cannot ${what}: Kubernetes API answered ${error.status}`,
        { cause: error },
      );
    }
    return new KubeApiError(`Cannot ${what}: ${error.message}`, error.status, {
      cause: error,
      reason: error.reason,
    });
  }
  return error;
}

async function kubeCall<T>(call: Promise<T>, what: string): Promise<T> {
  try {
    return await call;
  } catch (error) {
    throw kubeFailure(error, what);
  }
}

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...JSON_HEADERS, ...headers },
  });
}

/**
 * Builds the `/secret` handler. The handler never throws: every failure is an `{error, message}`
 * JSON answer, and every request writes one audit line.
 *
 * @example
 * ```ts
 * const options = parseWebhookOptions((name) => env[name]);
 * const handle = createSecretHandler({ kube, secrets, options, logger });
 * const response = await handle(request);
 * ```
 */
export function createSecretHandler(
  deps: SecretHandlerDeps,
): (request: Request) => Promise<Response> {
  const limit = deps.maxBodyBytes ?? DEFAULT_SECRET_BODY_LIMIT;
  const settingEnv = settingLookup(deps.options);

  async function serve(request: Request, audit: AuditFacts, token: { value: string }) {
    if (request.method !== "POST") {
      throw new MethodNotAllowedError(
        `Cannot accept method "${request.method}": only POST is allowed`,
      );
    }
    checkContentType(request.headers.get("content-type"));
    const header = request.headers.get(TOKEN_HEADER)?.trim() ?? "";
    if (header === "") {
      throw new UnauthenticatedError(
        `Token is not supplied: header "${TOKEN_HEADER}" is missing or empty`,
      );
    }
    token.value = header;
    const body = parseSecretRequest(await readBodyText(request, { limit }));
    audit.podName = body.name;

    const callOptions = { signal: request.signal };
    const audiences = [...deps.options.tokenAudiences];
    const review = await kubeCall(
      deps.kube.reviewToken(header, audiences, callOptions),
      "review token",
    );
    const identity = identifyCaller(review, body.name, { audiences });
    audit.namespace = identity.namespace;
    audit.serviceAccount = identity.serviceAccount;

    // Only the token's namespace is ever read: a pod of another namespace is simply not found.
    const pod = await kubeCall(
      deps.kube.getPod(identity.namespace, identity.podName, callOptions),
      `get pod "${identity.podName}"`,
    );
    const settings = resolveConfig(pod?.metadata?.annotations ?? {}, settingEnv);
    const decision = decideSecretAccess({
      identity,
      pod,
      request: body,
      settings,
      warn: (message) => deps.logger.warn(message, { namespace: identity.namespace }),
    });
    audit.secretLabel = decision.secretLabel;

    // The references of the calling container bound the answer: ConfigMaps and Secrets its
    // valueFrom/envFrom name are read (as at admission) before AWS is. The operator can restore Go
    // Piggy's whole-secret answer.
    const container = containerOfUid(pod!, body.uid);
    const answerAll = deps.options.answerAllKeys;
    let keys: Set<string> | undefined;
    if (!answerAll) {
      let facts;
      try {
        facts = await gatherFacts(pod!, identity.namespace, deps.kube, {
          containers: [container],
          signal: request.signal,
        });
      } catch (error) {
        throw kubeFailure(
          error instanceof GatherFactsError ? error.cause : error,
          "read references",
        );
      }
      keys = referencedSecretKeys(container, facts);
    }

    const values = await deps.secrets.fetchSecret(decision.query, callOptions);
    const allowed = authorizeValues(values, decision.serviceAccount, {
      enforceServiceAccount: decision.enforceServiceAccount,
      secretLabel: decision.secretLabel,
    });
    return keys === undefined ? allowed : onlyReferencedKeys(allowed, keys);
  }

  return async function handleSecret(request: Request): Promise<Response> {
    const audit: AuditFacts = {};
    const token = { value: "" };
    let status = 200;
    let response: Response;
    let outcome: string;
    let errorCode: string | undefined;
    try {
      const values = await serve(request, audit, token);
      response = jsonResponse(200, values);
      outcome = "was successful";
    } catch (error) {
      status = toStatus(error);
      const body = toErrorBody(error);
      // Defence in depth: never echo the token, even if an upstream message quoted it.
      if (token.value.length >= 8) body.message = body.message.replaceAll(token.value, "[token]");
      errorCode = body.error;
      response = jsonResponse(
        status,
        body,
        status === 405 ? { allow: "POST" } : {},
      );
      // Only our own message: causes may quote a secret's text (e.g. a JSON parse error).
      outcome = `was error: ${body.message}`;
      if (!(error instanceof PiggyError)) {
        errorCode = `${body.error} (${error instanceof Error ? error.name : typeof error})`;
      }
    }
    const fields: LogFields = {
      namespace: audit.namespace,
      pod_name: audit.podName,
      service_account: audit.serviceAccount,
      secret_name: audit.secretLabel,
      status,
      error_code: errorCode,
    };
    const message = `Request from [sa=${audit.serviceAccount ?? ""}], [pod=${
      audit.podName ?? ""
    }] ${outcome}`;
    if (status < 400) deps.logger.info(message, fields);
    else if (status < 500) deps.logger.warn(message, fields);
    else deps.logger.error(message, fields);
    return response;
  };
}
