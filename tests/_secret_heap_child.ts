/**
 * Child process of tests/secret_memory_test.ts: builds the webhook exactly as `cli/webhook.ts`
 * does (`setUpWebhook` on this process's environment, pointed at stand-ins in the parent process),
 * then calls its `/secret` handler in-process, `calls` times with `concurrency` in flight, and
 * every `every` calls forces a full garbage collection (`--expose-gc`) and records the heap in use.
 * Prints one JSON line on stdout: `{ heapSizeLimit, samples: [{ calls, heapUsed }], statuses }`.
 *
 * Its one argument is a JSON {@link HeapChildConfig}.
 *
 * @module
 */

import process from "node:process";
import v8 from "node:v8";
import { setUpWebhook } from "../src/server/webhook_setup.ts";

/** What the child sends. */
export interface HeapChildConfig {
  /** `/secret` request body and `x-token`. */
  body: string;
  token: string;
  calls: number;
  concurrency: number;
  every: number;
}

/** What the child prints. */
export interface HeapChildResult {
  /** V8's heap limit in this process (set by the V8 flags). */
  heapSizeLimit: number;
  samples: { calls: number; heapUsed: number }[];
  statuses: Record<string, number>;
}

const gc = (globalThis as { gc?: () => void }).gc;

function heapAfterGc(): number {
  if (!gc) throw new Error("run with --v8-flags=--expose-gc");
  // Twice: the first pass can leave objects whose finalizers free more.
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function run(config: HeapChildConfig): Promise<HeapChildResult> {
  const setup = await setUpWebhook(Deno.env.toObject(), {
    readTextFile: (path) => Deno.readTextFile(path),
    readTextFileSync: (path) => Deno.readTextFileSync(path),
  });
  if ("error" in setup) throw new Error(setup.error);
  const statuses: Record<string, number> = {};
  const samples: HeapChildResult["samples"] = [{ calls: 0, heapUsed: heapAfterGc() }];
  let started = 0;
  let answered = 0;
  await Promise.all(Array.from({ length: config.concurrency }, async () => {
    while (started < config.calls) {
      started++;
      const response = await setup.app.handler(
        new Request("https://piggy-webhooks.test/secret", {
          method: "POST",
          headers: { "content-type": "application/json", "x-token": config.token },
          body: config.body,
        }),
      );
      await response.arrayBuffer();
      statuses[response.status] = (statuses[response.status] ?? 0) + 1;
      answered++;
      if (answered % config.every === 0) {
        samples.push({ calls: answered, heapUsed: heapAfterGc() });
      }
    }
  }));
  setup.close();
  return { heapSizeLimit: v8.getHeapStatistics().heap_size_limit, samples, statuses };
}

if (import.meta.main) {
  const result = await run(JSON.parse(Deno.args[0] ?? "{}") as HeapChildConfig);
  Deno.stdout.writeSync(new TextEncoder().encode(`${JSON.stringify(result)}\n`));
  Deno.exit(0);
}
