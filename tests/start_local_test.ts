/**
 * `npm start` / `deno task start`: the webhook on a generated development certificate with the
 * current kubeconfig (here the Kubernetes API stand-in's).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startKubeApi } from "../testing/kube_api.ts";

const SCRIPT = fileURLToPath(new URL("../scripts/start_local.ts", import.meta.url));

test("start_local serves HTTPS with a development CA and the current kubeconfig", async () => {
  const kube = await startKubeApi();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT],
    env: {
      KUBECONFIG: kube.kubeconfigPath,
      LISTEN_ADDRESS: "127.0.0.1:0",
      PIGGY_SHUTDOWN_DELAY: "0s",
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let caFile = "";
  let port = 0;
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    while (!port) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`start_local ended early:\n${lines.join("\n")}`);
      buffer += value;
      const parts = buffer.split("\n");
      buffer = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line);
        caFile ||= /^Development CA: (.+)$/.exec(line)?.[1] ?? "";
        port ||= Number(/"message":"Listening on [^"]*:(\d+)"/.exec(line)?.[1] ?? 0);
      }
    }
    assert.ok(caFile, "the CA path is printed");
    const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(caFile)] });
    for (const path of ["/healthz", "/readyz"]) {
      const response = await fetch(`https://localhost:${port}${path}`, { client });
      assert.equal(response.status, 200, path);
      await response.body?.cancel();
    }
    client.close();
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    assert.equal(existsSync(caFile), false, "the development CA is removed on exit");
  } finally {
    await reader.cancel().catch(() => {});
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await child.status;
    await kube.close();
  }
});
