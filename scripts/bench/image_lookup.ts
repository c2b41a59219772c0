// deno-lint-ignore-file no-console
/**
 * Benchmark: image config lookups against Debian's real `docker-registry` on loopback (TLS,
 * htpasswd and token auth): a cold lookup (new client: TLS handshakes, challenge, token, manifest,
 * config), a cached one (same client), and 50 simultaneous cold lookups of one image (single-flight:
 * the registry log must show one manifest GET).
 *
 * Run: `npx deno run -A scripts/bench/image_lookup.ts [--rounds 20]`
 *
 * @module
 */

import { RegistryClient } from "../../src/registry/client.ts";
import { createTestCa } from "../../testing/pki.ts";
import { startRegistry } from "../../testing/registry.ts";

const roundsFlag = Deno.args.indexOf("--rounds");
const rounds = roundsFlag >= 0 ? Number(Deno.args[roundsFlag + 1]) : 20;
const ca = createTestCa("piggy-bench-registry");
const credentials = [{ username: "bench", password: "bench-pw" }];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

for (const kind of ["htpasswd", "token"] as const) {
  const registry = await startRegistry({ ca, auth: { kind, users: { bench: "bench-pw" } } });
  try {
    await registry.push("bench/app", "v1", { entrypoint: ["/bin/app"], cmd: ["--serve"] });
    const image = `${registry.host}/bench/app:v1`;
    const cold: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const client = new RegistryClient({ caCertificates: ca.cert, allowLoopback: true });
      const started = performance.now();
      await client.lookup(image, { credentials });
      cold.push(performance.now() - started);
      client.close();
    }
    const client = new RegistryClient({ caCertificates: ca.cert, allowLoopback: true });
    await client.lookup(image, { credentials });
    const cached: number[] = [];
    for (let i = 0; i < rounds * 100; i++) {
      const started = performance.now();
      await client.lookup(image, { credentials });
      cached.push(performance.now() - started);
    }
    client.close();
    await registry.settled();
    const manifests = () =>
      registry.requests().filter((r) => r.uri.startsWith("/v2/bench/app/manifests/")).length;
    const before = manifests();
    const burst = new RegistryClient({ caCertificates: ca.cert, allowLoopback: true });
    const started = performance.now();
    await Promise.all(Array.from({ length: 50 }, () => burst.lookup(image, { credentials })));
    const burstMs = performance.now() - started;
    burst.close();
    await registry.settled();
    const coldMs = median(cold);
    const cachedMs = median(cached);
    console.log(
      `${kind}: cold ${coldMs.toFixed(2)} ms, cached ${cachedMs.toFixed(4)} ms ` +
        `(${Math.round(coldMs / cachedMs)}x faster), 50 simultaneous cold lookups ` +
        `${burstMs.toFixed(1)} ms (${(burstMs / coldMs).toFixed(2)}x one cold lookup) with ` +
        `${manifests() - before} manifest GET`,
    );
  } finally {
    await registry.stop();
  }
}
Deno.removeSync(ca.dir, { recursive: true });
