import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeApiError, KubeUnavailableError } from "../errors.ts";
import { runCommand } from "../runtime/run_command.ts";
import { type KubeApiStandIn, startKubeApi } from "../../testing/kube_api.ts";
import { createKubeClient, type HttpKubeClient } from "./http_client.ts";
import { parseKubeConfig } from "./kubeconfig.ts";
import { parseCredential } from "./exec_credential.ts";

const API_VERSION = "client.authentication.k8s.io/v1";

/**
 * A credential plugin as `aws eks get-token` behaves: prints an ExecCredential whose token and
 * expiry come from files the test controls, and records each run and what it was given.
 */
const PLUGIN = `#!/bin/sh
dir=$(dirname "$0")
echo run >> "$dir/runs"
printf '%s' "$KUBERNETES_EXEC_INFO" > "$dir/exec-info"
printf '%s' "$PLUGIN_GREETING" > "$dir/greeting"
if [ -f "$dir/fail" ]; then echo "error: $(cat "$dir/fail")" >&2; exit 3; fi
token=$(cat "$dir/token")
expiry=$(cat "$dir/expiry" 2>/dev/null)
if [ -n "$expiry" ]; then extra=",\\"expirationTimestamp\\":\\"$expiry\\""; fi
printf '{"apiVersion":"${API_VERSION}","kind":"ExecCredential","status":{"token":"%s"%s}}\\n' "$token" "$extra"
`;

let api: KubeApiStandIn;
let dir: string;
const clients: HttpKubeClient[] = [];

before(async () => {
  api = await startKubeApi();
  dir = mkdtempSync(join(tmpdir(), "piggy-exec-plugin-"));
  writeFileSync(join(dir, "plugin.sh"), PLUGIN);
  chmodSync(join(dir, "plugin.sh"), 0o755);
});

after(async () => {
  for (const client of clients) client.close();
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Resets the plugin's state files for one test. */
function resetPlugin(token: string, expiry?: string): void {
  for (const name of ["runs", "fail", "expiry", "exec-info", "greeting"]) {
    rmSync(join(dir, name), { force: true });
  }
  writeFileSync(join(dir, "token"), token);
  if (expiry) writeFileSync(join(dir, "expiry"), expiry);
}

function runs(): number {
  try {
    return readFileSync(join(dir, "runs"), "utf8").trim().split("\n").length;
  } catch {
    return 0;
  }
}

/** A kubeconfig next to the plugin, naming it relatively, as EKS kubeconfigs name `aws`. */
function execClient(now: () => number, extraExec = ""): HttpKubeClient {
  const path = join(dir, "kubeconfig");
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
current-context: eks
clusters:
  - name: eks
    cluster:
      server: ${api.url}
      certificate-authority-data: ${btoa(api.caCert)}
contexts:
  - name: eks
    context: {cluster: eks, user: eks}
users:
  - name: eks
    user:
      exec:
        apiVersion: ${API_VERSION}
        command: ./plugin.sh
        args: [eks, get-token]
        env:
          - {name: PLUGIN_GREETING, value: hello}
        interactiveMode: Never
${extraExec}`,
  );
  const readFile = (file: string) => readFileSync(file, "utf8");
  const config = parseKubeConfig(readFile(path), { path, readFile });
  const client = createKubeClient(config, { timeoutMs: 5_000, runCommand, now });
  clients.push(client);
  return client;
}

test("an exec plugin's token is reused until it expires, then the plugin runs again", async () => {
  let now = Date.parse("2030-01-01T00:00:00Z");
  resetPlugin(api.adminToken, "2030-01-01T00:15:00Z");
  api.put("configmaps", { metadata: { namespace: "ns", name: "c" }, data: { a: "1" } });
  const client = execClient(() => now);

  assert.deepEqual((await client.getConfigMap("ns", "c"))?.data, { a: "1" });
  assert.equal(runs(), 1);
  await client.getConfigMap("ns", "c");
  now += 14 * 60_000;
  await client.getConfigMap("ns", "c");
  assert.equal(runs(), 1, "cached while not expired");

  now += 2 * 60_000;
  assert.deepEqual((await client.getConfigMap("ns", "c"))?.data, { a: "1" });
  assert.equal(runs(), 2, "expired: the plugin ran again");
  assert.equal(readFileSync(join(dir, "greeting"), "utf8"), "hello", "kubeconfig env reached it");
  assert.deepEqual(JSON.parse(readFileSync(join(dir, "exec-info"), "utf8")), {
    apiVersion: API_VERSION,
    kind: "ExecCredential",
    spec: { interactive: false },
  });
});

test("a 401 to the cached token runs the plugin again and retries once", async () => {
  const first = api.issueToken({ namespace: "ns", serviceAccount: "dev" });
  resetPlugin(first);
  const client = execClient(Date.now);
  assert.equal((await client.probe()).major, "1");
  assert.equal(runs(), 1);

  api.revokeToken(first);
  writeFileSync(join(dir, "token"), api.issueToken({ namespace: "ns", serviceAccount: "dev" }));
  assert.equal((await client.probe()).major, "1", "the new token is used");
  assert.equal(runs(), 2);
  await client.probe();
  assert.equal(runs(), 2, "no expiry: cached until the next 401");

  // A fresh token that is refused is an error, not a loop.
  writeFileSync(join(dir, "token"), "not-a-token");
  api.revokeToken(readFileSync(join(dir, "token"), "utf8"));
  const tokens = api.requests.length;
  const fresh = execClient(Date.now);
  const error = await fresh.probe().then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof KubeApiError, String(error));
  assert.equal(error.status, 401);
  assert.equal(api.requests.length - tokens, 1, "one attempt with the fresh token");
});

test("concurrent calls share one plugin run", async () => {
  resetPlugin(api.adminToken);
  const client = execClient(Date.now);
  await Promise.all(Array.from({ length: 8 }, () => client.probe()));
  assert.equal(runs(), 1);
});

test("provideClusterInfo passes the server and CA in KUBERNETES_EXEC_INFO", async () => {
  resetPlugin(api.adminToken);
  const client = execClient(Date.now, "        provideClusterInfo: true\n");
  await client.probe();
  const info = JSON.parse(readFileSync(join(dir, "exec-info"), "utf8"));
  assert.equal(info.spec.cluster.server, api.url);
  assert.equal(atob(info.spec.cluster["certificate-authority-data"]), api.caCert);
  assert.equal(info.spec.interactive, false);
});

test("a failing plugin is a KubeUnavailableError with its last stderr line, no output", async () => {
  resetPlugin("secret-token-value");
  writeFileSync(join(dir, "fail"), "ExpiredToken: the SSO session has expired");
  const error = await execClient(Date.now).probe().then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof KubeUnavailableError);
  assert.match(
    error.message,
    /exec plugin ".*plugin\.sh": it exited with code 3: error: ExpiredToken: the SSO session/,
  );
  assert.ok(!error.message.includes("secret-token-value"));
});

test("a missing plugin names the command and the installHint", async () => {
  resetPlugin(api.adminToken);
  const path = join(dir, "kubeconfig-missing");
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      "current-context": "c",
      clusters: [{ name: "c", cluster: { server: api.url } }],
      contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
      users: [{
        name: "u",
        user: {
          exec: {
            apiVersion: API_VERSION,
            command: "piggy-no-such-plugin",
            installHint: "Install the AWS CLI v2",
          },
        },
      }],
    }),
  );
  const readFile = (file: string) => readFileSync(file, "utf8");
  const client = createKubeClient(parseKubeConfig(readFile(path), { path, readFile }), {
    runCommand,
  });
  clients.push(client);
  const error = await client.probe().then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof KubeUnavailableError);
  assert.match(
    error.message,
    /"piggy-no-such-plugin": the command was not found \(Install the AWS CLI v2\)/,
  );
});

test("without a command runner an exec kubeconfig is refused at construction", () => {
  const path = join(dir, "kubeconfig");
  const readFile = (file: string) => readFileSync(file, "utf8");
  const config = parseKubeConfig(readFile(path), { path, readFile });
  assert.throws(
    () => createKubeClient(config),
    /exec plugin ".*plugin\.sh", and this process does not run commands/,
  );
});

test("parseCredential() checks kind, apiVersion, token and expiry without quoting output", () => {
  const ok = (status: unknown, apiVersion = API_VERSION) =>
    JSON.stringify({ apiVersion, kind: "ExecCredential", status });
  assert.deepEqual(parseCredential(ok({ token: "t" }), API_VERSION), {
    token: "t",
    expiresAt: undefined,
  });
  assert.deepEqual(
    parseCredential(ok({ token: "t", expirationTimestamp: "2030-01-01T00:00:00Z" }), API_VERSION),
    { token: "t", expiresAt: Date.parse("2030-01-01T00:00:00Z") },
  );
  const problems: [string, RegExp][] = [
    ["token: t", /not JSON/],
    [ok({ token: "t" }, "client.authentication.k8s.io/v1beta1"), /answered apiVersion/],
    [ok({}), /no status\.token/],
    [ok({ token: "t", expirationTimestamp: "soon" }), /not an RFC 3339 time/],
    [ok({ clientCertificateData: "x", clientKeyData: "y" }), /client certificate/],
    [JSON.stringify({ apiVersion: API_VERSION, kind: "Pod", status: { token: "t" } }), /kind/],
  ];
  for (const [stdout, message] of problems) {
    const result = parseCredential(stdout, API_VERSION);
    assert.equal(typeof result, "string", stdout);
    assert.match(result as string, message);
    assert.ok(!(result as string).includes('"t"'));
  }
});
