/**
 * The real webhook process's listener under slow, idle, too many and odd clients, and certificate
 * rotation under load: every deadline closes what it should while good requests keep being served.
 * Deadlines are set short here (1–2 s); the bounds below are ≥ 5× what was measured.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import https from "node:https";
import tls from "node:tls";
import { X509Certificate } from "node:crypto";
import { type KubeApiStandIn, startKubeApi } from "../testing/kube_api.ts";
import { startWebhook, type WebhookProcess } from "../testing/webhook_process.ts";
import { threeContainerReview } from "../testing/flow.ts";
import { createTestCa } from "../testing/pki.ts";

let kube: KubeApiStandIn;
let webhook: WebhookProcess;

const LIMITS_ENV = {
  PIGGY_TLS_HANDSHAKE_TIMEOUT: "1s",
  PIGGY_HEADER_TIMEOUT: "1s",
  PIGGY_IDLE_TIMEOUT: "2s",
};
const SETTINGS_ENV = {
  PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:test",
  PIGGY_ADDRESS: "https://piggy-webhooks.piggy-webhooks.svc.cluster.local",
};

before(async () => {
  kube = await startKubeApi();
  webhook = await startWebhook({
    env: { KUBECONFIG: kube.kubeconfigPath, ...SETTINGS_ENV, ...LIMITS_ENV },
  });
});

after(async () => {
  await webhook?.stop();
  await kube?.close();
});

/** Reads until the peer closes; resolves with everything read and the time it took. */
async function readUntilClosed(conn: Deno.Conn): Promise<{ text: string; ms: number }> {
  const started = performance.now();
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(4096);
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
    }
  } catch {
    // a reset also counts as closed
  }
  const ms = performance.now() - started;
  try {
    conn.close();
  } catch {
    // already closed
  }
  return { text: new TextDecoder().decode(Buffer.concat(chunks)), ms };
}

function connectTls(port: number, caCert: string): Promise<Deno.TlsConn> {
  return Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caCert] });
}

/** Sends /healthz requests on fresh and keep-alive connections until `stop`; counts failures. */
function keepServing(target: WebhookProcess) {
  let running = true;
  let served = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      const response = await target.get("/healthz").catch((error: Error) => error);
      if (response instanceof Error || response.status !== 200) {
        failures.push(response instanceof Error ? response.message : `status ${response.status}`);
      } else {
        served++;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { served, failures };
    },
  };
}

test("webhook closes TCP connections that never start TLS within PIGGY_TLS_HANDSHAKE_TIMEOUT", async () => {
  const load = keepServing(webhook);
  const idle = await Promise.all(
    Array.from({ length: 20 }, () => Deno.connect({ hostname: "127.0.0.1", port: webhook.port })),
  );
  const closed = await Promise.all(idle.map(readUntilClosed));
  const { served, failures } = await load.stop();
  for (const { ms } of closed) {
    assert.ok(ms >= 800, `closed after ${ms.toFixed(0)} ms, before the 1 s deadline`);
    assert.ok(ms < 5_000, `closed after ${ms.toFixed(0)} ms (deadline 1 s)`);
  }
  assert.deepEqual(failures, []);
  assert.ok(served > 5, `${served} good requests served meanwhile`);
});

test("webhook answers 408 and closes TLS connections whose headers do not finish in PIGGY_HEADER_TIMEOUT", async () => {
  const load = keepServing(webhook);
  const slow = await Promise.all(
    Array.from({ length: 10 }, async () => {
      const conn = await connectTls(webhook.port, webhook.caCert);
      await conn.write(new TextEncoder().encode("POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Le"));
      return conn;
    }),
  );
  const closed = await Promise.all(slow.map(readUntilClosed));
  const { failures } = await load.stop();
  for (const { text, ms } of closed) {
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.ok(ms >= 800 && ms < 5_000, `closed after ${ms.toFixed(0)} ms (deadline 1 s)`);
  }
  assert.deepEqual(failures, []);
});

test("webhook applies the header deadline to later requests on a keep-alive connection", async () => {
  const conn = await connectTls(webhook.port, webhook.caCert);
  const encoder = new TextEncoder();
  await conn.write(encoder.encode("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  const buffer = new Uint8Array(4096);
  const n = await conn.read(buffer);
  assert.match(new TextDecoder().decode(buffer.subarray(0, n ?? 0)), /^HTTP\/1\.1 200 /);
  // Then one header byte every 300 ms: each byte is activity, but the block never ends.
  const started = performance.now();
  const dribble = (async () => {
    for (const byte of encoder.encode("GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa")) {
      try {
        await conn.write(Uint8Array.of(byte));
      } catch {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  })();
  const { text } = await readUntilClosed(conn);
  const ms = performance.now() - started;
  await dribble;
  assert.match(text, /^HTTP\/1\.1 408 /);
  assert.ok(ms >= 800 && ms < 5_000, `closed after ${ms.toFixed(0)} ms (deadline 1 s)`);
});

test("webhook closes a keep-alive connection idle for PIGGY_IDLE_TIMEOUT, not while a request waits", async () => {
  const conn = await connectTls(webhook.port, webhook.caCert);
  await conn.write(new TextEncoder().encode("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  const { text, ms } = await readUntilClosed(conn);
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.ok(ms >= 1_600 && ms < 10_000, `closed after ${ms.toFixed(0)} ms (idle deadline 2 s)`);

  // A request whose answer takes longer than the idle deadline still gets it.
  kube.setLatency(3_000);
  try {
    const review = threeContainerReview("slow-answer");
    review.request.object.spec!.containers[0]!.env!.push({
      name: "FROM_CM",
      valueFrom: { configMapKeyRef: { name: "slow", key: "k" } },
    });
    const answer = await webhook.post("/mutate", JSON.stringify(review));
    assert.equal(answer.status, 200);
    assert.equal(JSON.parse(answer.body).response.uid, "slow-answer");
  } finally {
    kube.setLatency(0);
  }
});

test("webhook refuses what it cannot frame with 400 and a JSON reason", async () => {
  const conn = await connectTls(webhook.port, webhook.caCert);
  await conn.write(
    new TextEncoder().encode(
      "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ),
  );
  const { text } = await readUntilClosed(conn);
  assert.match(text, /^HTTP\/1\.1 400 /);
  assert.match(text, /\{"error":"Malformed Content-Length"\}$/);
  assert.equal((await webhook.get("/healthz")).status, 200);
});

test("webhook's early answer (413 while the body still comes) reaches the client every time", async () => {
  // The HTTP server answers and resets its side with the body unread; the front must still pass
  // the answer on and close gently (measured: 10 of 30 broken pipes before it did).
  for (let i = 0; i < 15; i++) {
    const response = await webhook.fetch("/mutate", {
      method: "POST",
      body: "x".repeat(4 * 1024 * 1024),
      headers: { "content-type": "application/json" },
    });
    assert.equal(response.status, 413);
    await response.body?.cancel();
  }
});

test("webhook closes connections over PIGGY_MAX_CONNECTIONS at once and recovers", async () => {
  const local = await startWebhook({
    env: {
      KUBECONFIG: kube.kubeconfigPath,
      PIGGY_MAX_CONNECTIONS: "4",
      PIGGY_TLS_HANDSHAKE_TIMEOUT: "3s",
    },
  });
  try {
    const holders = await Promise.all(
      Array.from({ length: 4 }, () => Deno.connect({ hostname: "127.0.0.1", port: local.port })),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    const extra = await Deno.connect({ hostname: "127.0.0.1", port: local.port });
    const refused = await readUntilClosed(extra);
    assert.ok(refused.ms < 1_500, `refused after ${refused.ms.toFixed(0)} ms (deadline 3 s)`);
    assert.ok(local.logs.some((line) => line.includes("PIGGY_MAX_CONNECTIONS")));
    // The holders go at the handshake deadline; the webhook serves again.
    await Promise.all(holders.map(readUntilClosed));
    assert.equal((await local.get("/healthz")).status, 200);
  } finally {
    await local.stop();
  }
});

test("webhook refuses to start with an invalid listener setting, naming it", async () => {
  const error = await startWebhook({
    env: { KUBECONFIG: kube.kubeconfigPath, PIGGY_HEADER_TIMEOUT: "soon" },
  }).catch((caught: Error) => caught);
  assert.ok(error instanceof Error);
  assert.match(error.message, /PIGGY_HEADER_TIMEOUT/);
});

function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/** The fingerprint of the certificate a new connection is served. */
function servedFingerprint(port: number, caCert: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca: caCert, servername: "localhost" });
    socket.once("secureConnect", () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fingerprint);
    });
    socket.once("error", reject);
  });
}

test("webhook serves a renewed certificate to new connections five times under load, without a failed request", async () => {
  // The kubelet's layout: files reached through the `..data` symlink, swapped atomically.
  const dir = await Deno.makeTempDir({ prefix: "piggy-rotation-" });

  const ca = createTestCa("piggy-rotation");
  const writeVersion = async (name: string) => {
    const pair = ca.issue(name);
    await Deno.mkdir(`${dir}/${name}`);
    await Deno.copyFile(pair.certFile, `${dir}/${name}/tls.crt`);
    await Deno.copyFile(pair.keyFile, `${dir}/${name}/tls.key`);
    return pair;
  };
  await writeVersion("v0");
  await Deno.symlink("v0", `${dir}/..data`);
  const local = await startWebhook({
    ca,
    env: {
      KUBECONFIG: kube.kubeconfigPath,
      ...SETTINGS_ENV,
      PIGGY_CERT_POLL_INTERVAL: "100ms",
      TLS_CERT_FILE: `${dir}/..data/tls.crt`,
      TLS_PRIVATE_KEY_FILE: `${dir}/..data/tls.key`,
    },
  });
  const keepAlive = new https.Agent({ keepAlive: true, ca: ca.cert });
  const body = JSON.stringify(threeContainerReview("rotation"));
  let running = true;
  let sent = 0;
  const failures: string[] = [];
  const worker = async (agent: https.Agent | false) => {
    while (running) {
      const outcome = await new Promise<string | undefined>((resolve) => {
        const request = https.request({
          host: "127.0.0.1",
          port: local.port,
          path: "/mutate",
          method: "POST",
          ca: ca.cert,
          agent,
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          },
        }, (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () => {
            const ok = response.statusCode === 200 &&
              JSON.parse(Buffer.concat(chunks).toString()).response?.uid === "rotation";
            resolve(ok ? undefined : `status ${response.statusCode}`);
          });
          response.on("error", (error: Error) => resolve(error.message));
        });
        request.on("error", (error: Error) => resolve(error.message));
        request.end(body);
      });
      sent++;
      if (outcome) failures.push(outcome);
    }
  };
  const workers = [
    ...Array.from({ length: 4 }, () => worker(keepAlive)),
    ...Array.from({ length: 4 }, () => worker(false)),
  ];
  try {
    for (let version = 1; version <= 5; version++) {
      const pair = await writeVersion(`v${version}`);
      if (version % 2 === 1) {
        // Symlink swap, as the kubelet does it.
        await Deno.symlink(`v${version}`, `${dir}/..data.tmp`);
        await Deno.rename(`${dir}/..data.tmp`, `${dir}/..data`);
      } else {
        // Plain replacement, certificate first: for a moment the key does not match.
        const target = await Deno.realPath(`${dir}/..data`);
        await Deno.writeTextFile(`${target}/tls.crt`, pair.cert);
        await new Promise((resolve) => setTimeout(resolve, 300));
        await Deno.writeTextFile(`${target}/tls.key`, pair.key);
      }
      const expected = fingerprintOf(pair.cert);
      const deadline = performance.now() + 10_000;
      let served = await servedFingerprint(local.port, ca.cert);
      while (served !== expected && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        served = await servedFingerprint(local.port, ca.cert);
      }
      assert.equal(served, expected, `certificate v${version} served to new connections`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  } finally {
    running = false;
    await Promise.all(workers);
    keepAlive.destroy();
  }
  assert.deepEqual(failures, [], `${failures.length} of ${sent} requests failed`);
  assert.ok(sent > 50, `${sent} requests sent during the swaps`);
  assert.equal(local.child.pid > 0, true);
  const stillRunning = await Promise.race([
    local.status.then(() => false),
    new Promise((resolve) => setTimeout(() => resolve(true), 100)),
  ]);
  assert.ok(stillRunning, "the webhook did not exit");
  assert.equal(
    local.logs.filter((line) => line.includes("serving the new one")).length,
    5,
    "one reload per version",
  );
  assert.equal((await local.stop()).code, 0);
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(ca.dir, { recursive: true }).catch(() => {});
});
