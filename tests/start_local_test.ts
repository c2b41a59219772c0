/**
 * `npm start` / `deno task start`: the webhook on a generated development certificate with the
 * current kubeconfig (here the Kubernetes API stand-in's), including a kubeconfig whose user runs
 * an exec credential plugin; and the shipped webhook's permissions, which never run one.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type KubeApiStandIn, startKubeApi } from "../testing/kube_api.ts";

const SCRIPT = fileURLToPath(new URL("../scripts/start_local.ts", import.meta.url));

/**
 * A kubeconfig for the stand-in whose user runs an exec credential plugin (a shell script, as
 * `aws eks get-token` behaves) that prints the admin token and counts its runs.
 */
function writeExecKubeconfig(kube: KubeApiStandIn): { path: string; runs: () => number } {
  const dir = mkdtempSync(join(tmpdir(), "piggy-exec-kubeconfig-"));
  const plugin = join(dir, "get-token.sh");
  writeFileSync(
    plugin,
    `#!/bin/sh\necho run >> "${dir}/runs"\nprintf '%s' '${
      JSON.stringify({
        apiVersion: "client.authentication.k8s.io/v1",
        kind: "ExecCredential",
        status: { token: kube.adminToken },
      })
    }'\n`,
  );
  chmodSync(plugin, 0o755);
  const path = join(dir, "kubeconfig");
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      "current-context": "eks",
      clusters: [{
        name: "eks",
        cluster: { server: kube.url, "certificate-authority-data": btoa(kube.caCert) },
      }],
      contexts: [{ name: "eks", context: { cluster: "eks", user: "eks" } }],
      users: [{
        name: "eks",
        user: { exec: { apiVersion: "client.authentication.k8s.io/v1", command: plugin } },
      }],
    }),
  );
  const runs = () =>
    existsSync(join(dir, "runs"))
      ? readFileSync(join(dir, "runs"), "utf8").split("\n").length - 1
      : 0;
  return { path, runs };
}

test("the shipped webhook permissions refuse a kubeconfig exec plugin with one clear line", async () => {
  const kube = await startKubeApi();
  try {
    const { path, runs } = writeExecKubeconfig(kube);
    // `deno task webhook`: the shipped permissions (a test in dockerfile_test.ts keeps the
    // compiled binary's equal), without --allow-run.
    const root = fileURLToPath(new URL("..", import.meta.url));
    const task: string = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).tasks.webhook;
    const [, ...args] = task.split(" ");
    assert.ok(!args.some((arg) => arg.startsWith("--allow-run") || arg === "-A"), task);
    const output = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: root,
      env: { KUBECONFIG: path, LISTEN_ADDRESS: "127.0.0.1:0" },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(output.code, 1);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.match(stderr, /this process does not run commands \(only the local start does/);
    assert.equal(runs(), 0, "the plugin never ran");
  } finally {
    await kube.close();
  }
});

for (const exec of [false, true]) {
  test(`start_local serves HTTPS with a development CA and the current kubeconfig${exec ? " (exec plugin)" : ""}`, async () => {
    const kube = await startKubeApi();
    const execConfig = exec ? writeExecKubeconfig(kube) : undefined;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SCRIPT],
      env: {
        KUBECONFIG: execConfig?.path ?? kube.kubeconfigPath,
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
      if (execConfig) {
        assert.equal(execConfig.runs(), 1, "the plugin ran once, its token is cached");
        assert.ok(kube.requests.length > 0);
      }
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
}
