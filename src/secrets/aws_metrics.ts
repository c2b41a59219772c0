/**
 * Times every AWS SDK command a client sends (retries included) and reports its API and result,
 * through a middleware on the client's stack: one place for every backend's client.
 *
 * @module
 */

/** How an AWS call ended, for metrics. */
export type AwsCallResult = "ok" | "not_found" | "denied" | "throttled" | "error";

/** Receives one finished AWS call. */
export type AwsCallObserver = (api: string, result: AwsCallResult, seconds: number) => void;

const NOT_FOUND = new Set(["ResourceNotFoundException", "ParameterNotFound"]);
const DENIED = new Set([
  "AccessDeniedException",
  "AccessDenied",
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "ExpiredTokenException",
  "KMSAccessDeniedException",
  "DecryptionFailure",
]);
const THROTTLED = new Set(["ThrottlingException", "Throttling", "TooManyRequestsException"]);

/** The result class of an AWS SDK error (its `name`, else its HTTP status). */
export function classifyAwsError(error: unknown): AwsCallResult {
  const name = (error as { name?: unknown } | null)?.name;
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata
    ?.httpStatusCode;
  if (typeof name === "string") {
    if (NOT_FOUND.has(name)) return "not_found";
    if (DENIED.has(name)) return "denied";
    if (THROTTLED.has(name)) return "throttled";
  }
  if (status === 403 || status === 401) return "denied";
  if (status === 429) return "throttled";
  return "error";
}

/** The part of an SDK client this needs. */
interface ClientWithStack {
  middlewareStack: {
    add(
      middleware: (
        next: (args: unknown) => Promise<unknown>,
        context: { commandName?: string },
      ) => (args: unknown) => Promise<unknown>,
      options: { step: "initialize"; name: string },
    ): void;
  };
}

/**
 * Adds the timing middleware to `client` (first step, so retries count in one call).
 *
 * @returns the client
 */
export function observeAwsCalls<T>(
  client: T,
  observe: AwsCallObserver,
  now: () => number = () => performance.now(),
): T {
  (client as unknown as ClientWithStack).middlewareStack.add(
    (next, context) => async (args) => {
      const started = now();
      const api = (context.commandName ?? "other").replace(/Command$/, "");
      try {
        const output = await next(args);
        observe(api, "ok", (now() - started) / 1000);
        return output;
      } catch (error) {
        observe(api, classifyAwsError(error), (now() - started) / 1000);
        throw error;
      }
    },
    { step: "initialize", name: "piggyCallMetrics" },
  );
  return client;
}
