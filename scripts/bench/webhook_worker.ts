// deno-lint-ignore-file no-console
/**
 * Benchmark prototype, not the product: one webhook event loop that binds its port with
 * `SO_REUSEPORT`, so that several of these processes share one port and the kernel spreads the
 * connections over them (one event loop per core). The same setup as `cli/webhook.ts` (options
 * from the environment, the app, the TLS front, `Deno.serve` behind it) without its shutdown
 * drain and certificate rotation. Prints its port on stdout once it listens.
 *
 * Each process keeps its own state: its connection limit (`PIGGY_MAX_CONNECTIONS` counts per
 * process), its caches and their single-flight (TokenReview, pod, secret: N workers make up to N
 * times the Kubernetes and AWS calls of one), its metrics (`/metrics` shows one worker's share)
 * and, without key files, its own random seal key (a pod sealed by one worker would fail
 * `/secret` at another: set `PIGGY_SEAL_KEY_FILE`).
 *
 * Run: `LISTEN_ADDRESS=127.0.0.1:<port> TLS_CERT_FILE=… TLS_PRIVATE_KEY_FILE=… deno run -A
 * scripts/bench/webhook_worker.ts` (see `mutate_workers.ts`).
 *
 * @module
 */

import { createFrontListener } from "../../src/server/front_listener.ts";
import { setUpWebhook } from "../../src/server/webhook_setup.ts";

const setup = await setUpWebhook(Deno.env.toObject(), {
  readTextFile: (path) => Deno.readTextFile(path),
  readTextFileSync: (path) => Deno.readTextFileSync(path),
});
if ("error" in setup) Deno.exit(1);
const backend = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  (request, info) =>
    front.ownsBackendPort(info.remoteAddr.port)
      ? setup.app.handler(request)
      : new Response("forbidden", { status: 403 }),
);
const front = createFrontListener({
  ...(setup.tls ? { tls: { cert: setup.tls.cert, key: setup.tls.key } } : {}),
  limits: setup.limits,
  backend: { hostname: "127.0.0.1", port: backend.addr.port },
  logger: setup.logger,
});
const bound = await front.listen(setup.listen.port, setup.listen.hostname, { reusePort: true });
console.log(bound.port);
Deno.addSignalListener("SIGTERM", async () => {
  await front.stopAccepting();
  front.destroyAll();
  await backend.shutdown();
  setup.close();
  Deno.exit(0);
});
