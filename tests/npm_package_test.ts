/**
 * The npm package for Node consumers: builds it once with `tsc -p tsconfig.build.json` into a
 * temporary directory, then checks what `npm pack` would ship, runs the Node `piggy-webhooks`
 * binary over HTTPS against the Kubernetes stand-in, runs the Node `piggy-env` against the AWS
 * stand-in, and imports the library under Node.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { X509Certificate } from "node:crypto";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { LAUNCHER_PATH } from "../src/constants.ts";
import { USAGE } from "../src/launcher/args.ts";
import { WEBHOOK_USAGE } from "../src/server/webhook_args.ts";
import { VERSION } from "../src/version.ts";
import { resolveConfig } from "../src/config/resolve_config.ts";
import { commandSignature } from "../src/pod/signature.ts";
import { createTestCa, type TestCa } from "../testing/pki.ts";
import { type KubeApiStandIn, startKubeApi } from "../testing/kube_api.ts";
import { startAwsStandIn } from "../testing/aws.ts";
import { startConnectProxy } from "../testing/connect_proxy.ts";
import { admissionReview } from "../testing/flow.ts";
import type { Container } from "kubernetes-types/core/v1.d.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PACKAGE = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  main: string;
  types: string;
  exports: Record<string, unknown>;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
};

/** Temporary package root: package.json, dist/ and a node_modules link to the repository's. */
let work = "";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Run> {
  return new Promise((done) => {
    execFile(command, args, {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
      maxBuffer: 64 * 1024 * 1024,
    }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "piggy-npm-"));
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const build = await run("node", [
    tsc,
    "-p",
    join(ROOT, "tsconfig.build.json"),
    "--outDir",
    join(work, "dist"),
  ]);
  assert.equal(build.code, 0, `tsc failed:\n${build.stdout}${build.stderr}`);
  copyFileSync(join(ROOT, "package.json"), join(work, "package.json"));
  for (const name of readdirSync(ROOT)) {
    if (/^(README|LICENSE)/i.test(name)) copyFileSync(join(ROOT, name), join(work, name));
  }
  // The built files import runtime dependencies by bare name, as an installed package does.
  symlinkSync(join(ROOT, "node_modules"), join(work, "node_modules"), "dir");
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? walk(path) : [path];
  });
}

async function packedFiles(): Promise<string[]> {
  const pack = await run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
    cwd: work,
    env: { PATH: process.env.PATH ?? "", HOME: work, npm_config_cache: join(work, ".npm") },
  });
  assert.equal(pack.code, 0, pack.stderr);
  const [report] = JSON.parse(pack.stdout) as { files: { path: string }[] }[];
  assert.ok(report, "npm pack reports the package");
  return report.files.map((file) => file.path).sort();
}

const TEST_FILE = /_test\.(js|d\.ts)$/;

test("npm pack ships the built library and binaries, package.json and docs, and no tests", async () => {
  const built = walk(join(work, "dist")).map((path) => relative(work, path));
  assert.ok(built.some((path) => TEST_FILE.test(path)), "the build also emits the unit tests");

  const files = await packedFiles();
  for (const path of files) {
    assert.match(
      path,
      /^(package\.json|README\.md|LICENSE(\.\w+)?|dist\/src\/.+\.(js|d\.ts)|dist\/cli\/(node\/)?[^/]+\.js)$/,
      `unexpected file in the package: ${path}`,
    );
    assert.doesNotMatch(path, TEST_FILE, `test file in the package: ${path}`);
  }
  const expected = built.filter((path) =>
    !TEST_FILE.test(path) &&
    (/^dist\/src\/.+\.(js|d\.ts)$/.test(path) || /^dist\/cli\/(node\/)?[^/]+\.js$/.test(path))
  ).sort();
  assert.deepEqual(files.filter((path) => path.startsWith("dist/")), expected);
  assert.ok(files.includes("package.json"));

  const entries = [
    PACKAGE.main,
    PACKAGE.types,
    ...Object.values(PACKAGE.bin),
    ...JSON.stringify(PACKAGE.exports).match(/\.\/dist\/[^"]+/g) ?? [],
  ];
  for (const entry of entries) {
    assert.ok(files.includes(entry.replace(/^\.\//, "")), `package entry not shipped: ${entry}`);
  }
});

test("npm pack: every shipped module imports only shipped files, dependencies and node: modules", async () => {
  const files = new Set(await packedFiles());
  const dependencies = new Set(Object.keys(PACKAGE.dependencies));
  const specifier = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']([^"']+)["']/g;
  let relativeImports = 0;
  for (const path of files) {
    if (!path.endsWith(".js")) continue;
    // Comments hold examples that import the package itself: only code counts.
    const text = readFileSync(join(work, path), "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "");
    for (const [, target = ""] of text.matchAll(specifier)) {
      if (target.startsWith(".")) {
        const resolved = relative(work, resolve(dirname(join(work, path)), target));
        assert.ok(files.has(resolved), `${path} imports ${target}, which is not shipped`);
        relativeImports += 1;
      } else if (!target.startsWith("node:")) {
        const name = target.startsWith("@")
          ? target.split("/").slice(0, 2).join("/")
          : target.split("/")[0] ?? "";
        assert.ok(dependencies.has(name), `${path} imports "${target}", not a dependency`);
      }
    }
  }
  assert.ok(relativeImports > 50, `only ${relativeImports} relative imports found: scan is broken`);
});

/** A started Node webhook and the log lines it wrote. */
interface NodeWebhook {
  port: number;
  logs: string[];
  stdout: string[];
  exited: Promise<{ code: number | null; signal: string | null }>;
  pid: number;
}

function startNodeWebhook(env: Record<string, string>): Promise<NodeWebhook> {
  const child = spawn("node", [join(work, "dist", "cli", "node", "webhook.js")], {
    cwd: work,
    env: { PIGGY_SHUTDOWN_DELAY: "0s", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  const stdout: string[] = [];
  const exited = new Promise<{ code: number | null; signal: string | null }>((done) =>
    child.once("exit", (code, signal) => done({ code, signal }))
  );
  child.stdout.on("data", (chunk) => stdout.push(String(chunk)));
  return new Promise((done, fail) => {
    let buffer = "";
    child.stderr.on("data", (chunk) => {
      buffer += String(chunk);
      let index;
      while ((index = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, index);
        buffer = buffer.slice(index + 1);
        logs.push(line);
        const listening = /"message":"Listening on 127\.0\.0\.1:(\d+)"/.exec(line);
        if (listening) {
          done({ port: Number(listening[1]), logs, stdout, exited, pid: child.pid ?? 0 });
        }
      }
    });
    void exited.then((status) =>
      fail(new Error(`webhook exited early (${JSON.stringify(status)}):\n${logs.join("\n")}`))
    );
  });
}

function httpsRequest(
  port: number,
  ca: string,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; body: string; contentType: string }> {
  return new Promise((done, fail) => {
    const request = https.request({
      host: "127.0.0.1",
      port,
      method,
      path,
      ca,
      agent: false,
      headers: body === undefined ? {} : { "content-type": "application/json" },
    }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (text += chunk));
      response.on("end", () =>
        done({
          status: response.statusCode ?? 0,
          body: text,
          contentType: String(response.headers["content-type"] ?? ""),
        }));
      response.on("error", fail);
    });
    request.on("error", fail);
    request.end(body);
  });
}

function podReview(uid: string, containers: unknown[]) {
  return admissionReview(
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "app",
        namespace: "default",
        annotations: { "piggysec.com/aws-secret-name": "app/prod" },
      },
      spec: { containers: containers as Container[] },
    },
    "default",
    uid,
  );
}

/** A container with a literal reference: wrapped without any Kubernetes lookup. */
const LITERAL_CONTAINER = {
  name: "app",
  image: "registry.example/app:1",
  command: ["/bin/app", "--serve"],
  env: [{ name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" }],
};

/** A container whose decision needs a ConfigMap read from the Kubernetes API. */
const CONFIG_MAP_CONTAINER = {
  name: "worker",
  image: "registry.example/worker:1",
  command: ["/bin/worker"],
  env: [{
    name: "TOKEN",
    valueFrom: { configMapKeyRef: { name: "worker-settings", key: "TOKEN" } },
  }],
};

const PIGGY_ENV_IMAGE = "registry.example/piggy-env:test";

interface Review {
  apiVersion: string;
  kind: string;
  response: { uid: string; allowed: boolean; patchType?: string; patch?: string };
}

async function postReview(port: number, ca: string, containers: unknown[]) {
  const uid = crypto.randomUUID();
  const answer = await httpsRequest(
    port,
    ca,
    "POST",
    "/mutate",
    JSON.stringify(podReview(uid, containers)),
  );
  assert.equal(answer.status, 200, answer.body);
  assert.match(answer.contentType, /application\/json/);
  const review = JSON.parse(answer.body) as Review;
  assert.equal(review.kind, "AdmissionReview");
  assert.equal(review.apiVersion, "admission.k8s.io/v1");
  assert.equal(review.response.uid, uid);
  return review.response;
}

/**
 * Runs `body` against a Node webhook wired to a Kubernetes stand-in, then stops the webhook
 * with SIGTERM and checks it exits 0 with "Stopped" logged and nothing on stdout.
 */
async function withNodeWebhook(
  body: (context: {
    webhook: NodeWebhook;
    kube: KubeApiStandIn;
    ca: TestCa;
    stop: () => Promise<void>;
    serving: { certFile: string; keyFile: string };
  }) => Promise<void>,
  env: Record<string, string> = {},
): Promise<void> {
  let kube: KubeApiStandIn | undefined;
  let ca: TestCa | undefined;
  let webhook: NodeWebhook | undefined;
  try {
    kube = await startKubeApi();
    ca = createTestCa("piggy-npm");
    const serving = ca.issue("webhook");
    const started = await startNodeWebhook({
      PATH: process.env.PATH ?? "",
      HOME: work,
      LISTEN_ADDRESS: "127.0.0.1:0",
      TLS_CERT_FILE: serving.certFile,
      TLS_PRIVATE_KEY_FILE: serving.keyFile,
      KUBECONFIG: kube.kubeconfigPath,
      PIGGY_ENV_IMAGE,
      PIGGY_ADDRESS: "https://piggy-webhooks.piggy.svc",
      PIGGY_ALLOWED_ADDRESSES: "https://piggy-webhooks.piggy.svc",
      // Keep the AWS SDK on loopback should anything reach it.
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_ENDPOINT_URL: "http://127.0.0.1:9",
      AWS_REGION: "us-east-1",
      ...env,
    });
    webhook = started;
    let stopped = false;
    const stop = async () => {
      stopped = true;
      // node:child_process under Deno reports a child.kill()ed process as killed by the signal
      // even when it exits 0: send the signal with process.kill instead.
      process.kill(started.pid, "SIGTERM");
      const status = await started.exited;
      assert.deepEqual(status, { code: 0, signal: null }, started.logs.join("\n"));
    };
    await body({ webhook: started, kube, ca, stop, serving });
    if (!stopped) await stop();
    assert.ok(started.logs.some((line) => line.includes('"message":"Stopped"')));
    assert.deepEqual(started.stdout, [], "nothing on stdout");
    webhook = undefined;
  } finally {
    if (webhook) {
      process.kill(webhook.pid, "SIGKILL");
      await webhook.exited;
    }
    await kube?.close();
    if (ca) rmSync(ca.dir, { recursive: true, force: true });
  }
}

test("node piggy-webhooks serves /healthz, /readyz and /mutate over HTTPS, exits 0 on SIGTERM", {
  timeout: 60_000,
}, async () => {
  await withNodeWebhook(async ({ webhook, ca }) => {
    const health = await httpsRequest(webhook.port, ca.cert, "GET", "/healthz");
    assert.deepEqual([health.status, health.body], [200, "ok"]);
    const ready = await httpsRequest(webhook.port, ca.cert, "GET", "/readyz");
    assert.equal(ready.status, 200, "the Kubernetes stand-in is reachable from the Node build");

    const response = await postReview(webhook.port, ca.cert, [LITERAL_CONTAINER]);
    assert.equal(response.allowed, true);
    assert.equal(response.patchType, "JSONPatch");
    const patch = JSON.parse(atob(response.patch ?? "")) as unknown[];
    assert.ok(Array.isArray(patch) && patch.length > 0, "the pod is patched");
    assert.ok(JSON.stringify(patch).includes(LAUNCHER_PATH), "the command runs through piggy-env");
    assert.ok(JSON.stringify(patch).includes(PIGGY_ENV_IMAGE), "the installer is added");
  });
});

test("node piggy-webhooks finishes an in-flight /mutate after SIGTERM, then exits 0", {
  timeout: 60_000,
}, async () => {
  await withNodeWebhook(async ({ webhook, kube, ca, stop }) => {
    kube.setLatency(1_000);
    const inFlight = postReview(webhook.port, ca.cert, [LITERAL_CONTAINER, CONFIG_MAP_CONTAINER]);
    // The webhook opens its first Kubernetes connection while it handles this request: from then
    // on the request is in flight, waiting for the delayed ConfigMap read.
    while (kube.connections === 0) await new Promise((done) => setTimeout(done, 10));
    const stopped = stop();
    const response = await inFlight;
    assert.equal(response.allowed, true);
    assert.equal(response.patchType, "JSONPatch");
    assert.equal(kube.counts.configmaps, 1, "the ConfigMap read completed during the drain");
    await stopped;
  });
});

test("node piggy-webhooks and piggy-env answer --help and --version, exit 0, start nothing", async () => {
  const cases = [
    ["webhook.js", "piggy-webhooks", WEBHOOK_USAGE],
    ["piggy_env.js", "piggy-env", USAGE],
  ] as const;
  for (const [file, name, usage] of cases) {
    const entry = join(work, "dist", "cli", "node", file);
    // No certificate or Kubernetes settings: serving would fail or listen, not exit 0 at once.
    const env = { PATH: process.env.PATH ?? "", LISTEN_ADDRESS: "127.0.0.1:1" };
    const help = await run("node", [entry, "--help"], { cwd: work, env });
    assert.deepEqual(help, { code: 0, stdout: `${usage}\n`, stderr: "" }, name);
    const version = await run("node", [entry, "--version"], { cwd: work, env });
    assert.deepEqual(version, { code: 0, stdout: `${name} ${VERSION}\n`, stderr: "" }, name);
  }
});

/**
 * Runs the built Node piggy-env in standalone mode (secret `app/prod`, region us-east-1), wrapping
 * `sh -c script`, with `env` (the AWS stand-in's settings and any more) in its environment.
 */
function runNodeStandalone(script: string, env: Record<string, string>) {
  return run(
    "node",
    [join(work, "dist", "cli", "node", "piggy_env.js"), "--", "sh", "-c", script],
    {
      cwd: work,
      env: {
        ...env,
        PATH: process.env.PATH ?? "",
        PIGGY_STANDALONE: "true",
        PIGGY_AWS_SECRET_NAME: "app/prod",
        PIGGY_AWS_REGION: "us-east-1",
        DB_PASSWORD: "piggy:DB_PASSWORD",
      },
    },
  );
}

test("node piggy-env resolves references in standalone mode and returns the child's exit code", {
  timeout: 60_000,
}, async () => {
  const aws = await startAwsStandIn();
  try {
    aws.putSecret("app/prod", { string: JSON.stringify({ DB_PASSWORD: "from-aws" }) });
    const result = await runNodeStandalone(
      'test "$DB_PASSWORD" = from-aws && test -z "$PIGGY_AWS_SECRET_NAME" && exit 7',
      aws.env(),
    );
    assert.equal(result.code, 7, result.stderr);
    assert.equal(result.stdout, "");
    assert.equal(aws.count("GetSecretValue"), 1);
  } finally {
    await aws.close();
  }
});

test(
  "node piggy-env reads AWS with the light client (IRSA web identity, Web Crypto, node:http, size limit)",
  {
    timeout: 60_000,
  },
  async () => {
    const aws = await startAwsStandIn();
    try {
      aws.putSecret("app/prod", { string: JSON.stringify({ DB_PASSWORD: "from-aws" }) });
      const result = await runNodeStandalone('test "$DB_PASSWORD" = from-aws && exit 7', {
        ...aws.env({ credentials: "web-identity" }),
        HOME: work,
        PIGGY_DEBUG: "true",
      });
      assert.equal(result.code, 7, result.stderr);
      assert.match(result.stderr, /"aws_client":"light"/);
      assert.equal(aws.count("AssumeRoleWithWebIdentity"), 1);
      const read = aws.requests.find((r) => r.action === "GetSecretValue");
      assert.equal(read?.status, 200);
      assert.match(read?.accessKeyId ?? "", /^ASIA/);
      // An answer over PIGGY_AWS_MAX_ANSWER_BYTES: refused, naming it, the app not started.
      aws.resetCounters();
      aws.padNext("GetSecretValue", 4096);
      const refused = await runNodeStandalone("exit 7", {
        ...aws.env({ credentials: "static" }),
        HOME: work,
        PIGGY_AWS_MAX_ANSWER_BYTES: "2048",
      });
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /larger than 2048 bytes \(PIGGY_AWS_MAX_ANSWER_BYTES\)/);
      assert.equal(aws.count("GetSecretValue"), 1);
    } finally {
      await aws.close();
    }
  },
);

test(
  "node piggy-env reads AWS through HTTPS_PROXY (CONNECT, TLS to the AWS host) and HTTP_PROXY (absolute form)",
  { timeout: 60_000 },
  async () => {
    // AWS endpoints named under .piggy.test: Node never resolves them, the proxy stand-in connects
    // every request to 127.0.0.1 (loopback endpoints are never proxied).
    const ca = createTestCa("piggy-node-proxy");
    const leaf = ca.issue("aws", { serverNames: ["aws.piggy.test"] });
    const secure = await startAwsStandIn({ tls: { cert: leaf.cert, key: leaf.key } });
    const plain = await startAwsStandIn();
    const proxy = await startConnectProxy({ auth: { user: "node", password: "pr0xy" } });
    try {
      for (const aws of [secure, plain]) {
        aws.putSecret("app/prod", { string: JSON.stringify({ DB_PASSWORD: "via-proxy" }) });
      }
      const proxyUrl = `http://node:pr0xy@127.0.0.1:${proxy.port}`;
      const tunnelled = await runNodeStandalone('test "$DB_PASSWORD" = via-proxy && exit 7', {
        ...secure.env({ credentials: "static" }),
        AWS_ENDPOINT_URL: `https://aws.piggy.test:${new URL(secure.url).port}`,
        NODE_EXTRA_CA_CERTS: ca.certFile,
        HTTPS_PROXY: proxyUrl,
        HOME: work,
      });
      assert.equal(tunnelled.code, 7, tunnelled.stderr);
      assert.deepEqual(proxy.tunnels(), [`aws.piggy.test:${new URL(secure.url).port}`]);
      proxy.reset();
      const forwarded = await runNodeStandalone('test "$DB_PASSWORD" = via-proxy && exit 7', {
        ...plain.env({ credentials: "static" }),
        AWS_ENDPOINT_URL: `http://aws.piggy.test:${new URL(plain.url).port}`,
        http_proxy: proxyUrl,
        HOME: work,
      });
      assert.equal(forwarded.code, 7, forwarded.stderr);
      assert.deepEqual(
        proxy.records.map((r) => [r.method, r.target]),
        [["POST", `http://aws.piggy.test:${new URL(plain.url).port}/`]],
      );
      // Refused credentials: the start fails naming the proxy and the variable, not the password.
      proxy.reset();
      const refused = await runNodeStandalone("exit 7", {
        ...secure.env({ credentials: "static" }),
        AWS_ENDPOINT_URL: `https://aws.piggy.test:${new URL(secure.url).port}`,
        NODE_EXTRA_CA_CERTS: ca.certFile,
        HTTPS_PROXY: proxyUrl.replace("pr0xy", "wr0ng"),
        HOME: work,
      });
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /\(HTTPS_PROXY\) refused the tunnel .*407/);
      assert.doesNotMatch(refused.stderr, /wr0ng/);
    } finally {
      await proxy.close();
      await secure.close();
      await plain.close();
      rmSync(ca.dir, { recursive: true, force: true });
    }
  },
);

test("the built library imports under Node by package name and matches the Deno sources", async () => {
  const annotations = {
    "piggysec.com/aws-secret-name": "app/prod",
    "piggysec.com/piggy-ignore-no-env": "maybe",
  };
  const script = `
    import * as piggy from "piggy-webhooks";
    const logs = [];
    const app = piggy.createApp({
      kube: new piggy.FakeKubeClient(),
      secrets: new piggy.MemorySecretSource(),
      options: piggy.parseWebhookOptions(() => undefined),
      logger: new piggy.Logger({ sink: (line) => logs.push(line) }),
    });
    const health = await app.handler(new Request("http://piggy/healthz"));
    const resolved = piggy.resolveConfig(${JSON.stringify(annotations)}, () => undefined);
    console.log(JSON.stringify({
      health: [health.status, await health.text()],
      config: resolved.config,
      problems: resolved.problems.map((problem) => problem.key),
      signature: await piggy.commandSignature(["ls", "-la"]),
      settings: piggy.SETTINGS.length,
      status: piggy.toStatus(new piggy.AccessDeniedError("Cannot read secret")),
    }));
  `;
  const result = await run("node", ["--input-type=module", "-e", script], {
    cwd: work,
    env: { PATH: process.env.PATH ?? "" },
  });
  assert.equal(result.code, 0, result.stderr);
  const fromNode = JSON.parse(result.stdout) as Record<string, unknown>;
  const local = resolveConfig(annotations, () => undefined);
  assert.deepEqual(fromNode.health, [200, "ok"]);
  assert.deepEqual(fromNode.config, JSON.parse(JSON.stringify(local.config)));
  assert.deepEqual(fromNode.problems, local.problems.map((problem) => problem.key));
  assert.ok(local.problems.length > 0, "the bad value is reported on both runtimes");
  assert.equal(fromNode.signature, await commandSignature(["ls", "-la"]));
  assert.ok(Number(fromNode.settings) > 0);
  assert.equal(fromNode.status, 403);
});

test(
  "node piggy-webhooks closes silent connections at the handshake deadline and serves a renewed certificate without a restart",
  {
    timeout: 60_000,
  },
  async () => {
    await withNodeWebhook(async ({ webhook, ca, serving }) => {
      const silent = net.connect({ host: "127.0.0.1", port: webhook.port });
      const started = performance.now();
      await new Promise((done) => silent.once("close", done));
      const closedAfter = performance.now() - started;
      assert.ok(closedAfter < 5_000, `closed after ${closedAfter.toFixed(0)} ms (deadline 1 s)`);

      const renewed = ca.issue("renewed");
      writeFileSync(serving.certFile, renewed.cert);
      writeFileSync(serving.keyFile, renewed.key);
      const expected = new X509Certificate(renewed.cert).fingerprint256;
      let served = "";
      for (let i = 0; i < 100 && served !== expected; i++) {
        await new Promise((done) => setTimeout(done, 100));
        served = await new Promise<string>((resolve, reject) => {
          const socket = tls.connect({ host: "127.0.0.1", port: webhook.port, ca: ca.cert });
          socket.once("secureConnect", () => {
            resolve(socket.getPeerCertificate().fingerprint256);
            socket.end();
          });
          socket.once("error", reject);
        });
      }
      assert.equal(served, expected, "the renewed certificate is served to new connections");
      const health = await httpsRequest(webhook.port, ca.cert, "GET", "/healthz");
      assert.equal(health.status, 200, "still running");
    }, { PIGGY_CERT_POLL_INTERVAL: "100ms", PIGGY_TLS_HANDSHAKE_TIMEOUT: "1s" });
  },
);

/**
 * Runs `script` (ESM) under Node with the built sink at hand, its stderr a non-blocking pipe that
 * the parent starts reading after `readAfterMs` (or only after the child exited, when null), or
 * on /dev/full. Returns the child's stdout and the bytes that reached stderr.
 */
async function runNodeSink(
  script: string,
  stderr: { readAfterMs: number | null } | "full",
): Promise<{ stdout: string; stderrBytes: number }> {
  const dist = join(work, "dist", "src");
  const source = `
    import { batchedStderrSink } from ${JSON.stringify(join(dist, "runtime", "stderr_sink.js"))};
    import { Logger } from ${JSON.stringify(join(dist, "log.js"))};
    const logger = new Logger({ level: "debug", sink: batchedStderrSink() });
    ${script}
  `;
  const node = ["node", "--input-type=module", "-e", source];
  if (stderr === "full") {
    const result = await run("/bin/sh", ["-c", 'exec "$@" 2>/dev/full', "sh", ...node]);
    return { stdout: result.stdout, stderrBytes: 0 };
  }
  // The pipe's writing end is non-blocking, as a log collector may leave it: a full pipe answers
  // EAGAIN instead of blocking the writer.
  const python = `
import os, subprocess, sys, time
r, w = os.pipe()
os.set_blocking(w, False)
child = subprocess.Popen(sys.argv[2:], stderr=w, stdout=subprocess.PIPE)
os.close(w)
first = child.stdout.readline().decode()
delay = float(sys.argv[1])
if delay >= 0:
    time.sleep(delay)
else:
    child.wait()
total = 0
while True:
    chunk = os.read(r, 65536)
    if not chunk:
        break
    total += len(chunk)
out = child.stdout.read().decode()
child.wait()
sys.stdout.write(first + out + "stderr bytes: %d\\n" % total)
`;
  const delay = stderr.readAfterMs === null ? "-1" : String(stderr.readAfterMs / 1000);
  const result = await run("python3", ["-c", python, delay, ...node]);
  assert.equal(result.code, 0, result.stderr);
  const match = /stderr bytes: (\d+)\n$/.exec(result.stdout);
  assert.ok(match, result.stdout);
  return { stdout: result.stdout.slice(0, match.index), stderrBytes: Number(match[1]) };
}

/** A batch larger than a pipe holds (64 KiB), written at once. */
const BIG_BATCH = `
  console.log("{}");
  const started = Date.now();
  logger.info("x".repeat(200_000));
  console.log(JSON.stringify({ failures: logger.writeFailures(), ms: Date.now() - started }));
`;

test(
  "node log sink: a non-blocking stderr pipe that is full is retried until the reader catches up",
  {
    timeout: 60_000,
  },
  async () => {
    const { stdout, stderrBytes } = await runNodeSink(BIG_BATCH, { readAfterMs: 1_000 });
    const report = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
    assert.equal(report.failures, 0, stdout);
    assert.ok(report.ms >= 500, `the write waited for the reader (${report.ms} ms)`);
    assert.ok(stderrBytes > 200_000, `${stderrBytes} bytes reached stderr`);
  },
);

test("node log sink: a full pipe that stays full for 5 s loses the batch, counted and noticed", {
  timeout: 60_000,
}, async () => {
  const { stdout } = await runNodeSink(BIG_BATCH, { readAfterMs: null });
  const lines = stdout.trim().split("\n").slice(1).map((line) => JSON.parse(line));
  const report = lines.at(-1);
  assert.equal(report.failures, 1, stdout);
  assert.ok(report.ms >= 5_000, `gave up after ${report.ms} ms`);
  assert.match(String(lines[0].message), /Cannot write log lines to stderr/);
  assert.match(String(lines[0].error), /EAGAIN/);
});

test("node log sink: after a batch lost to a stalled reader, the next batch is not waited for", {
  timeout: 60_000,
}, async () => {
  const twice = `${BIG_BATCH}{${BIG_BATCH.replace('console.log("{}");', "")}}`;
  const { stdout } = await runNodeSink(twice, { readAfterMs: null });
  const reports = stdout.trim().split("\n").slice(1).map((line) => JSON.parse(line))
    .filter((line) => "ms" in line);
  assert.equal(reports.length, 2, stdout);
  assert.equal(reports[1].failures, 2, stdout);
  assert.ok(reports[0].ms >= 5_000, `the first batch waited ${reports[0].ms} ms`);
  assert.ok(reports[1].ms < 1_000, `the second batch waited ${reports[1].ms} ms`);
});

test("node log sink: stderr on /dev/full (ENOSPC) is counted and noticed on stdout", {
  timeout: 60_000,
}, async () => {
  const { stdout } = await runNodeSink(BIG_BATCH, "full");
  const lines = stdout.trim().split("\n").slice(1).map((line) => JSON.parse(line));
  assert.equal(lines.at(-1).failures, 1, stdout);
  assert.match(String(lines[0].error), /ENOSPC/);
});
