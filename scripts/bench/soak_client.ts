// deno-lint-ignore-file no-console
/**
 * The load side of `scripts/bench/soak.ts`, in its own process so that neither the load nor the
 * stand-ins share a heap with the webhook: sends `count` POSTs over `concurrency` keep-alive
 * node:https connections (closed loop) and prints one line `progress <answered> <errors>` on
 * stdout every `every` answers, then `done <answered> <errors> <seconds> s, statuses {…}` (0: no answer).
 *
 * Its one argument is a JSON {@link SoakClientConfig}.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import https from "node:https";

/** What the client sends. */
export interface SoakClientConfig {
  port: number;
  /** PEM CA that verifies the webhook. */
  ca: string;
  path: string;
  body: string;
  headers: Record<string, string>;
  count: number;
  concurrency: number;
  every: number;
}

async function run(config: SoakClientConfig): Promise<void> {
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: config.concurrency,
    ca: config.ca,
  });
  const length = Buffer.byteLength(config.body);
  const send = (): Promise<number> =>
    new Promise((resolve) => {
      const request = https.request({
        host: "127.0.0.1",
        port: config.port,
        path: config.path,
        method: "POST",
        agent,
        headers: { ...config.headers, "content-length": length },
      }, (response) => {
        response.on("data", () => {});
        response.on("end", () => resolve(response.statusCode ?? 0));
        response.on("error", () => resolve(0));
      });
      request.on("error", () => resolve(0));
      request.end(config.body);
    });
  let started = 0;
  let answered = 0;
  let errors = 0;
  const statuses: Record<number, number> = {};
  const begun = performance.now();
  await Promise.all(Array.from({ length: config.concurrency }, async () => {
    while (started < config.count) {
      started++;
      const status = await send();
      answered++;
      if (status !== 200) errors++;
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (answered % config.every === 0) console.log(`progress ${answered} ${errors}`);
    }
  }));
  agent.destroy();
  const seconds = ((performance.now() - begun) / 1000).toFixed(1);
  console.log(`done ${answered} ${errors} ${seconds} s, statuses ${JSON.stringify(statuses)}`);
}

if (import.meta.main) {
  await run(JSON.parse(Deno.args[0] ?? "{}") as SoakClientConfig);
}
