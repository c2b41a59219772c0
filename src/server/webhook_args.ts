/**
 * The piggy-webhooks command line: no arguments (serve), `--help` or `--version`. Pure: the entry
 * points print and exit before anything reads the environment, files or the network.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { VERSION } from "../version.ts";

/** What `--help` prints (also after a usage error, on stderr). */
export const WEBHOOK_USAGE = `Usage: piggy-webhooks [--help | --version]

Serves the Piggy mutating admission webhook (POST /mutate), the secret proxy for piggy-env
(POST /secret), /healthz, /readyz and /metrics over HTTPS. Settings come from the environment:
LISTEN_ADDRESS, TLS_CERT_FILE, TLS_PRIVATE_KEY_FILE, PIGGY_CA_BUNDLE_FILE, LOG_LEVEL, DEBUG and the
PIGGY_* cluster-wide defaults (docs/annotations.md); AWS and Kubernetes credentials are found as
their SDKs do (IRSA, EKS Pod Identity, the in-cluster service account, KUBECONFIG).
SIGTERM or SIGINT: stop being ready, finish the requests in flight, exit 0.`;

/** What `--version` prints. */
export const WEBHOOK_VERSION_LINE = `piggy-webhooks ${VERSION}`;

/** What the command line asks for. */
export type WebhookCommand = { kind: "serve" } | { kind: "help" } | { kind: "version" };

/**
 * Parses piggy-webhooks' arguments (without the program name).
 *
 * @throws {UsageError} on any other argument
 */
export function parseWebhookArgs(argv: readonly string[]): WebhookCommand {
  if (argv.includes("--help") || argv.includes("-h")) return { kind: "help" };
  if (argv.includes("--version")) return { kind: "version" };
  const [first] = argv;
  if (first !== undefined) {
    throw new UsageError(
      first.startsWith("-") ? `Unknown flag "${first}"` : `Unexpected argument "${first}"`,
    );
  }
  return { kind: "serve" };
}

/** Where {@link answerWebhookArgs} prints. */
export interface ArgsOutput {
  writeStdout(text: string): void;
  writeStderr(text: string): void;
}

/**
 * Answers `--help`, `--version` and usage errors.
 *
 * @returns the exit code (0 for help and version, 2 for a usage error), or `undefined` to serve
 */
export function answerWebhookArgs(argv: readonly string[], out: ArgsOutput): number | undefined {
  let command: WebhookCommand;
  try {
    command = parseWebhookArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    out.writeStderr(`piggy-webhooks: ${error.message}\n${WEBHOOK_USAGE}`);
    return 2;
  }
  if (command.kind === "help") out.writeStdout(WEBHOOK_USAGE);
  if (command.kind === "version") out.writeStdout(WEBHOOK_VERSION_LINE);
  return command.kind === "serve" ? undefined : 0;
}
