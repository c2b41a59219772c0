/**
 * piggy-webhooks: serves `/mutate`, `/secret`, `/healthz`, `/readyz` and `/metrics` over HTTPS.
 * The public listener is the front in `src/server/front_listener.ts` (TLS, deadlines, connection
 * cap, certificate rotation); behind it `Deno.serve` listens on a loopback port and answers only
 * connections that came through the front. The environment contract is the options table in
 * `src/config/webhook_options.ts`.
 *
 * SIGTERM / SIGINT: `/readyz` fails at once, the listener closes after PIGGY_SHUTDOWN_DELAY (so
 * the Service stops routing here first), in-flight requests finish (at most 25 s more), exit 0.
 * A changed certificate or key file is served to new connections without a restart.
 *
 * @module
 */

import { describeError, type Logger } from "../src/log.ts";
import { answerWebhookArgs } from "../src/server/webhook_args.ts";
import { runCommand } from "../src/runtime/run_command.ts";
import {
  type BoundAddress,
  createFrontListener,
  type FrontListener,
} from "../src/server/front_listener.ts";
import {
  delay,
  DRAIN_TIMEOUT_MS,
  type SetupIo,
  setUpWebhook,
  watchCertificate,
  type WebhookSetup,
} from "../src/server/webhook_setup.ts";

const io: SetupIo = {
  readTextFile: (path) => Deno.readTextFile(path),
  readTextFileSync: (path) => Deno.readTextFileSync(path),
  // kubeconfig exec plugins only where running commands is allowed: the local start grants
  // --allow-run; the shipped binary is compiled without it and never runs a command.
  ...(Deno.permissions.querySync({ name: "run" }).state === "granted" ? { runCommand } : {}),
};

/** Node's bind errors that mean "no IPv6 here" rather than "port taken" or "not allowed". */
function isAddressFamilyError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code !== "EADDRINUSE" && code !== "EACCES" && code !== "EPERM";
}

/**
 * Binds the front to the listen address; on a host without IPv6 to the fallback address. A port
 * in use or a denied bind is an error either way.
 */
async function listenWithFallback(
  front: FrontListener,
  listen: WebhookSetup["listen"],
  logger: Logger,
): Promise<BoundAddress> {
  try {
    return await front.listen(listen.port, listen.hostname);
  } catch (error) {
    if (!listen.fallbackHostname || !isAddressFamilyError(error)) throw error;
    logger.warn(`Cannot listen on ${listen.hostname}: using ${listen.fallbackHostname}`, {
      error: describeError(error),
    });
    return await front.listen(listen.port, listen.fallbackHostname);
  }
}

/** On shutdown, how long answers already produced get to reach their clients through the front. */
const FLUSH_TIMEOUT_MS = 5_000;

async function main(): Promise<number> {
  const answered = answerWebhookArgs(Deno.args, {
    writeStdout: (text) => Deno.stdout.writeSync(new TextEncoder().encode(`${text}\n`)),
    writeStderr: (text) => Deno.stderr.writeSync(new TextEncoder().encode(`${text}\n`)),
  });
  if (answered !== undefined) return answered;
  const setup = await setUpWebhook(Deno.env.toObject(), io);
  if ("error" in setup) return 1;
  const { logger, listen } = setup;

  const backend = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
    onError: (error) => {
      logger.error("Unhandled error while serving request", { error: describeError(error) });
      return new Response("internal error", { status: 500 });
    },
  }, (request, info) => {
    // Only connections the front opened: another local process cannot skip its limits.
    // (No request can arrive before `front` exists: nobody else knows this port.)
    if (!front.ownsBackendPort(info.remoteAddr.port)) {
      return new Response("forbidden", { status: 403 });
    }
    return setup.app.handler(request);
  });
  const front: FrontListener = createFrontListener({
    ...(setup.tls ? { tls: { cert: setup.tls.cert, key: setup.tls.key } } : {}),
    limits: setup.limits,
    backend: { hostname: "127.0.0.1", port: backend.addr.port },
    logger,
  });

  let bound: BoundAddress;
  try {
    bound = await listenWithFallback(front, listen, logger);
  } catch (error) {
    logger.error("Cannot listen", { error: describeError(error) });
    await backend.shutdown();
    return 1;
  }
  logger.info(`Listening on ${bound.hostname}:${bound.port}`, { tls: Boolean(setup.tls) });

  const listening = front;
  const stop = async (reason: string): Promise<void> => {
    if (!setup.beginShutdown()) return;
    logger.info(`Shutting down: ${reason}`);
    await delay(setup.shutdownDelayMs);
    await listening.stopAccepting();
    // The HTTP server finishes in-flight requests and closes its connections; the front closes
    // each client connection once its last answer is sent.
    const drained = backend.shutdown();
    const timer = setTimeout(() => {
      logger.warn(`In-flight requests did not finish within ${DRAIN_TIMEOUT_MS / 1000} s`);
      listening.destroyAll();
      Deno.exit(0);
    }, DRAIN_TIMEOUT_MS);
    await drained;
    clearTimeout(timer);
    // The last answers may still be on their way from the HTTP server through the front.
    await listening.flushed(FLUSH_TIMEOUT_MS);
    listening.destroyAll();
  };
  let stopping: Promise<void> | undefined;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => {
      stopping ??= stop(`received ${signal}`);
    });
  }
  const stopWatching = watchCertificate(
    setup,
    io,
    (cert, key) => listening.setCertificate(cert, key),
  );

  await backend.finished;
  // The HTTP server is done; the front may still be passing its last answers on.
  await stopping;
  stopWatching();
  setup.close();
  logger.info("Stopped");
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main());
}
