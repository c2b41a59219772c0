/**
 * The launcher's TLS client as real Deno processes against a loopback TLS server: the warm-up of
 * the TLS library's random generator.
 */

import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { test } from "node:test";
import { createTestCa } from "../testing/pki.ts";

/**
 * A fresh Deno process that opens one verified TLS connection to `port` (after the warm-up when
 * `warm`) and prints the CPU time its main thread spent in `startTls` and the handshake, in ns
 * (`/proc/thread-self/schedstat`: CPU time, unlike wall time, does not depend on machine load).
 */
async function firstHandshakeCpu(warm: boolean, port: number, ca: string): Promise<number> {
  const warmup = new URL("../src/runtime/tls_warmup.ts", import.meta.url).href;
  const program = `
    import { warmUpTlsRandom } from ${JSON.stringify(warmup)};
    if (${warm}) await warmUpTlsRandom();
    const cpu = () => Number(Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[0]);
    const tcp = await Deno.connect({ hostname: "127.0.0.1", port: ${port} });
    const before = cpu();
    const tls = await Deno.startTls(tcp, { hostname: "127.0.0.1", caCerts: [${
    JSON.stringify(ca)
  }] });
    await tls.handshake();
    const after = cpu();
    tls.close();
    console.log(after - before);
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", program],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return Number(new TextDecoder().decode(output.stdout).trim());
}

test(
  "warmUpTlsRandom() seeds the TLS random generator off the main thread: the first handshake is cheap there",
  async () => {
    const ca = createTestCa("piggy-warmup");
    const leaf = ca.issue("server");
    const listener = Deno.listenTls({
      hostname: "127.0.0.1",
      port: 0,
      cert: leaf.cert,
      key: leaf.key,
    });
    const serving = (async () => {
      for await (const conn of listener) {
        conn.handshake().catch(() => {}).finally(() => conn.close());
      }
    })();
    try {
      const { port } = listener.addr;
      const cold: number[] = [];
      const warm: number[] = [];
      for (let round = 0; round < 3; round++) {
        cold.push(await firstHandshakeCpu(false, port, ca.cert));
        warm.push(await firstHandshakeCpu(true, port, ca.cert));
      }
      const median = (values: number[]) => [...values].sort((a, b) => a - b)[1]!;
      // Cold, the main thread seeds the generator (CPU-jitter entropy, ~20 ms); warm, it only does
      // the handshake (~1-2 ms). Half is a generous bound for a loaded machine.
      assert.ok(
        median(warm) < median(cold) / 2,
        `main-thread CPU of the first handshake: warm ${median(warm)} ns, cold ${median(cold)} ns`,
      );
    } finally {
      listener.close();
      await serving.catch(() => {});
      rmSync(ca.dir, { recursive: true, force: true });
    }
  },
);
