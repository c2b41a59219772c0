/**
 * piggy-webhooks: serves `/mutate`, `/secret`, `/healthz`, `/readyz` and `/metrics` over HTTPS with
 * `Deno.serve`. The environment contract is the options table in
 * `src/config/webhook_options.ts`.
 *
 * SIGTERM / SIGINT, or a changed certificate file: `/readyz` fails at once, the listener closes
 * after PIGGY_SHUTDOWN_DELAY (so the Service stops routing here first), in-flight requests finish
 * (at most 25 s more), exit 0.
 *
 * @module
 */

import { describeError } from "../src/log.ts";
import { answerWebhookArgs } from "../src/server/webhook_args.ts";
import { runCommand } from "../src/runtime/run_command.ts";
import {
  delay,
  DRAIN_TIMEOUT_MS,
  type SetupIo,
  setUpWebhook,
  watchCertificate,
} from "../src/server/webhook_setup.ts";

const io: SetupIo = {
  readTextFile: (path) => Deno.readTextFile(path),
  readTextFileSync: (path) => Deno.readTextFileSync(path),
  // kubeconfig exec plugins only where running commands is allowed: the local start grants
  // --allow-run; the shipped binary is compiled without it and never runs a command.
  ...(Deno.permissions.querySync({ name: "run" }).state === "granted" ? { runCommand } : {}),
};

function serve(
  setup: Exclude<Awaited<ReturnType<typeof setUpWebhook>>, { error: string }>,
  hostname: string,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname,
    port: setup.listen.port,
    ...(setup.tls ? { cert: setup.tls.cert, key: setup.tls.key } : {}),
    onListen: (addr) => {
      setup.logger.info(`Listening on ${addr.hostname}:${addr.port}`, { tls: Boolean(setup.tls) });
    },
    onError: (error) => {
      setup.logger.error("Unhandled error while serving request", { error: describeError(error) });
      return new Response("internal error", { status: 500 });
    },
  }, setup.app.handler);
}

async function main(): Promise<number> {
  const answered = answerWebhookArgs(Deno.args, {
    writeStdout: (text) => Deno.stdout.writeSync(new TextEncoder().encode(`${text}\n`)),
    writeStderr: (text) => Deno.stderr.writeSync(new TextEncoder().encode(`${text}\n`)),
  });
  if (answered !== undefined) return answered;
  const setup = await setUpWebhook(Deno.env.toObject(), io);
  if ("error" in setup) return 1;
  const { logger, listen } = setup;

  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    try {
      server = serve(setup, listen.hostname);
    } catch (error) {
      // Only a host without IPv6 falls back; a port in use or a denied bind is an error.
      const unsupported = !(error instanceof Deno.errors.AddrInUse ||
        error instanceof Deno.errors.PermissionDenied);
      if (!listen.fallbackHostname || !unsupported) throw error;
      logger.warn(`Cannot listen on ${listen.hostname}: using ${listen.fallbackHostname}`, {
        error: describeError(error),
      });
      server = serve(setup, listen.fallbackHostname);
    }
  } catch (error) {
    logger.error("Cannot listen", { error: describeError(error) });
    return 1;
  }

  const stop = async (reason: string): Promise<void> => {
    if (!setup.beginShutdown()) return;
    logger.info(`Shutting down: ${reason}`);
    await delay(setup.shutdownDelayMs);
    const drained = server.shutdown();
    const timer = setTimeout(() => {
      logger.warn(`In-flight requests did not finish within ${DRAIN_TIMEOUT_MS / 1000} s`);
      Deno.exit(0);
    }, DRAIN_TIMEOUT_MS);
    await drained;
    clearTimeout(timer);
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => void stop(`received ${signal}`));
  }
  const stopWatching = watchCertificate(setup, io, () => void stop("TLS certificate changed"));

  await server.finished;
  stopWatching();
  setup.close();
  logger.info("Stopped");
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main());
}
