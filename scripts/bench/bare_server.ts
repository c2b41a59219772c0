// deno-lint-ignore-file no-console
/**
 * The benchmark ceiling: the webhook's own server stack (the TLS front of
 * `src/server/front_listener.ts` with the default connection limits, in front of `Deno.serve` on a
 * loopback port) with a bare handler that parses a JSON body and re-serialises it, and answers
 * `ok` to a request without a body. Nothing else: no routing, no logging, no metrics. Prints its
 * port on stdout.
 *
 * With ANSWER_BYTES, the echoed JSON object gets a `padding` field of spaces so that the answer
 * has that many bytes (at least the echo's own size): the cost of a larger answer on the same stack.
 *
 * Run: `deno run --allow-net --allow-read --allow-env scripts/bench/bare_server.ts CERT KEY [ANSWER_BYTES]`
 *
 * @module
 */

import { createFrontListener } from "../../src/server/front_listener.ts";
import { parseWebhookOptions } from "../../src/config/webhook_options.ts";
import { Logger } from "../../src/log.ts";

const [certFile, keyFile, answerBytes] = Deno.args;
if (!certFile || !keyFile) throw new Error("usage: bare_server.ts CERT KEY [ANSWER_BYTES]");
const answerSize = Number(answerBytes ?? 0);
const options = parseWebhookOptions(() => undefined);
const backend = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  async (request) => {
    if (request.method === "GET") {
      return new Response("ok", {
        headers: { "content-type": "text/plain" },
      });
    }
    const body = await request.json();
    let text = JSON.stringify(body);
    if (answerSize > text.length && typeof body === "object" && body !== null) {
      // `,"padding":""` is 14 characters; the echo is ASCII JSON from `JSON.stringify`.
      const padding = " ".repeat(Math.max(0, answerSize - text.length - 14));
      text = JSON.stringify({ ...body, padding });
    }
    return new Response(text, { headers: { "content-type": "application/json" } });
  },
);
const front = createFrontListener({
  tls: { cert: Deno.readTextFileSync(certFile), key: Deno.readTextFileSync(keyFile) },
  limits: {
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    headerTimeoutMs: options.headerTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs,
    maxConnections: options.maxConnections,
    maxHeaderBytes: options.maxHeaderBytes,
  },
  backend: { hostname: "127.0.0.1", port: backend.addr.port },
  logger: new Logger({ level: "warn" }),
});
const bound = await front.listen(0, "127.0.0.1");
console.log(bound.port);
Deno.addSignalListener("SIGTERM", async () => {
  await front.stopAccepting();
  front.destroyAll();
  await backend.shutdown();
  Deno.exit(0);
});
