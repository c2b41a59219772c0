/**
 * A real OCI registry for tests: Debian's `docker-registry` (CNCF distribution 2.8) started on
 * loopback with TLS from the test PKI and either htpasswd (Basic) or token (Bearer) authentication,
 * a small token service that signs the registry's JWTs (the Bearer stand-in), OCI image layouts
 * written from a description (Entrypoint, Cmd, platforms) and pushed with `skopeo`, and the
 * registry's own request log to count round trips.
 *
 * Needs `docker-registry`, `skopeo` and `htpasswd` (apache2-utils): `.ci/run` installs them.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, createPrivateKey, sign, X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpsServer, type Server } from "node:https";
import { type AddressInfo, connect, createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { TestCa } from "./pki.ts";

/** Paths of the tools. */
export const REGISTRY_BINARY = "/usr/bin/docker-registry";
export const SKOPEO_BINARY = "/usr/bin/skopeo";

/** How the registry authenticates pulls and pushes. */
export type RegistryAuth =
  | { kind: "none" }
  | { kind: "htpasswd"; users: Record<string, string> }
  | { kind: "token"; users: Record<string, string>; allowAnonymousPull?: boolean };

/** Options of {@link startRegistry}. */
export interface StartRegistryOptions {
  /** CA issuing the registry's (and token service's) certificate. */
  ca: TestCa;
  auth: RegistryAuth;
  /** Extra DNS names of the registry's certificate (e.g. an ECR host reached by an override). */
  serverNames?: string[];
}

/** One request the registry served (from its log). */
export interface RegistryRequest {
  method: string;
  uri: string;
  status: number;
}

/** A running registry. */
export interface TestRegistry {
  /** `127.0.0.1:PORT`: the registry part of image names. */
  host: string;
  /** Requests the registry finished, in order (manifests, blobs, `/v2/` probes). */
  requests(): RegistryRequest[];
  /** Waits until the registry has logged nothing new for 200 ms (its log trails its answers). */
  settled(): Promise<void>;
  /** Requests the token service answered (Bearer mode), as `scope` values. */
  tokenRequests(): string[];
  /** Pushes an image (or a multi-platform index) as `repository:tag`. */
  push(repository: string, tag: string, image: TestImage): Promise<void>;
  /** Stops the registry and the token service, removes their files. */
  stop(): Promise<void>;
}

/** The config of one platform's image. */
export interface TestImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  os?: string;
  architecture?: string;
  variant?: string;
}

/** A single-platform image, or an index of several. */
export type TestImage = TestImageConfig | { index: TestImageConfig[] };

/** A free TCP port on 127.0.0.1 (closed again before returning). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function htpasswdLine(user: string, password: string): string {
  return execFileSync("htpasswd", ["-Bbn", user, password], { encoding: "utf8" }).trim();
}

function base64Url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

/** The token service: checks Basic credentials, signs ES256 JWTs the registry verifies via x5c. */
async function startTokenService(
  ca: TestCa,
  auth: Extract<RegistryAuth, { kind: "token" }>,
  service: string,
  issuer: string,
): Promise<{ server: Server; realm: string; scopes: string[] }> {
  const signer = ca.issue(`token-signer-${Date.now()}`, { serverNames: ["token-signer"] });
  const leafDer = new X509Certificate(signer.cert).raw;
  const key = createPrivateKey(signer.key);
  const tls = ca.issue(`token-service-${Date.now()}`);
  const scopes: string[] = [];
  const server = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const url = new URL(req.url ?? "/", "https://127.0.0.1");
    const scope = url.searchParams.get("scope") ?? "";
    scopes.push(scope);
    const header = req.headers.authorization ?? "";
    let user: string | undefined;
    if (header.startsWith("Basic ")) {
      const [name = "", password = ""] = Buffer.from(header.slice(6), "base64").toString().split(
        /:(.*)/s,
      );
      if (auth.users[name] === undefined || auth.users[name] !== password) {
        res.writeHead(401, { "content-type": "application/json" }).end('{"details":"bad creds"}');
        return;
      }
      user = name;
    } else if (!auth.allowAnonymousPull) {
      res.writeHead(401, { "content-type": "application/json" }).end('{"details":"no creds"}');
      return;
    }
    const access = scope === "" ? [] : [scope].map((text) => {
      const [type = "", name = "", actions = ""] = text.split(":");
      const granted = actions.split(",").filter((action) =>
        user !== undefined || action === "pull"
      );
      return { type, name, actions: granted };
    });
    const now = Math.floor(Date.now() / 1000);
    const jwtHeader = { typ: "JWT", alg: "ES256", x5c: [leafDer.toString("base64")] };
    const claims = {
      iss: issuer,
      sub: user ?? "",
      aud: service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: `${now}-${scopes.length}`,
      access,
    };
    const input = `${base64Url(JSON.stringify(jwtHeader))}.${base64Url(JSON.stringify(claims))}`;
    const signature = sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
    const token = `${input}.${base64Url(signature)}`;
    res.writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { server, realm: `https://127.0.0.1:${port}/token`, scopes };
}

/**
 * Starts `docker-registry` on 127.0.0.1 with TLS and the given authentication, and waits until it
 * answers.
 */
export async function startRegistry(options: StartRegistryOptions): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), "piggy-registry-"));
  const port = await freePort();
  const cert = options.ca.issue(`registry-${port}`, {
    serverNames: ["localhost", "127.0.0.1", "::1", ...(options.serverNames ?? [])],
  });
  const lines = [
    "version: 0.1",
    "log:",
    "  level: info",
    "  formatter: json",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${join(dir, "data")}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: 127.0.0.1:${port}`,
    "  secret: piggy-test-secret",
    "  tls:",
    `    certificate: ${cert.certFile}`,
    `    key: ${cert.keyFile}`,
  ];
  let token: Awaited<ReturnType<typeof startTokenService>> | undefined;
  if (options.auth.kind === "htpasswd") {
    const file = join(dir, "htpasswd");
    writeFileSync(
      file,
      Object.entries(options.auth.users).map(([u, p]) => htpasswdLine(u, p)).join("\n") + "\n",
    );
    lines.push("auth:", "  htpasswd:", "    realm: piggy-test", `    path: ${file}`);
  } else if (options.auth.kind === "token") {
    token = await startTokenService(options.ca, options.auth, "piggy-test-registry", "piggy-test");
    lines.push(
      "auth:",
      "  token:",
      `    realm: ${token.realm}`,
      "    service: piggy-test-registry",
      "    issuer: piggy-test",
      `    rootcertbundle: ${options.ca.certFile}`,
    );
  }
  const configFile = join(dir, "config.yml");
  writeFileSync(configFile, lines.join("\n") + "\n");
  const child: ChildProcess = spawn(REGISTRY_BINARY, ["serve", configFile], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  const requests: RegistryRequest[] = [];
  let pending = "";
  const onData = (chunk: Buffer) => {
    pending += chunk.toString();
    const parts = pending.split("\n");
    pending = parts.pop() ?? "";
    for (const line of parts) {
      logs.push(line);
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.msg === "response completed") {
          requests.push({
            method: String(entry["http.request.method"]),
            uri: String(entry["http.request.uri"]),
            status: Number(entry["http.response.status"]),
          });
        }
      } catch {
        // not JSON: start-up text
      }
    }
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const host = `127.0.0.1:${port}`;
  const stop = async () => {
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    if (token) await new Promise<void>((resolve) => token?.server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  };
  // Wait for the TLS port.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`docker-registry exited: ${logs.slice(-5).join("\n")}`);
    }
    const up = await new Promise<boolean>((resolve) => {
      const conn = connect(port, "127.0.0.1", () => {
        conn.destroy();
        resolve(true);
      });
      conn.on("error", () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not start: ${logs.slice(-5).join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const certDir = join(dir, "certs");
  mkdirSync(certDir);
  writeFileSync(join(certDir, "ca.crt"), options.ca.cert);
  const policy = join(dir, "policy.json");
  writeFileSync(policy, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  const pushUser = options.auth.kind === "none" ? undefined : Object.entries(options.auth.users)[0];
  const pushes = new Map<string, Promise<void>>();
  return {
    host,
    requests: () => [...requests],
    async settled() {
      let seen = -1;
      while (seen !== logs.length) {
        seen = logs.length;
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    tokenRequests: () => [...(token?.scopes ?? [])],
    push(repository, tag, image) {
      // One push at a time per repository: docker-registry's filesystem storage rewrites a
      // repository's blob link files in place (truncate, then write) on every push that commits
      // a blob, so a concurrent push of the same blob into the same repository can read an empty
      // link and fail with "digest invalid" / "manifest blob unknown" or a 500. Pushes into
      // different repositories touch different link files and still run concurrently.
      const previous = pushes.get(repository) ?? Promise.resolve();
      const next = previous.catch(() => {}).then(() => pushNow(repository, tag, image));
      pushes.set(repository, next);
      return next;
    },
    stop,
  };

  async function pushNow(repository: string, tag: string, image: TestImage): Promise<void> {
    const layout = writeOciLayout(
      join(dir, `layout-${repository.replace(/\//g, "_")}-${tag}`),
      tag,
      image,
    );
    const args = [
      "--policy",
      policy,
      "copy",
      "--quiet",
      ...("index" in image ? ["--all"] : []),
      "--dest-cert-dir",
      certDir,
      ...(pushUser ? ["--dest-creds", `${pushUser[0]}:${pushUser[1]}`] : []),
      `oci:${layout}:${tag}`,
      `docker://${host}/${repository}:${tag}`,
    ];
    await new Promise<void>((resolve, reject) => {
      const push = spawn(SKOPEO_BINARY, args, {
        stdio: ["ignore", "ignore", "pipe"],
        env: { PATH: "/usr/bin:/bin", HOME: dir, TMPDIR: dir },
      });
      let errors = "";
      push.stderr?.on("data", (chunk: Buffer) => (errors += chunk.toString()));
      push.on("error", reject);
      push.on(
        "exit",
        (code) =>
          code === 0 ? resolve() : reject(new Error(`skopeo copy failed (${code}): ${errors}`)),
      );
    });
  }
}

interface Blob {
  digest: string;
  size: number;
}

function writeBlob(dir: string, data: Buffer | string): Blob {
  const bytes = Buffer.from(data);
  const hex = createHash("sha256").update(bytes).digest("hex");
  writeFileSync(join(dir, "blobs", "sha256", hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

function writeImage(dir: string, config: TestImageConfig): Blob & { mediaType: string } {
  const tar = Buffer.alloc(1024); // an empty tar archive
  const layer = writeBlob(dir, gzipSync(tar));
  const diffId = `sha256:${createHash("sha256").update(tar).digest("hex")}`;
  const inner: Record<string, unknown> = { Env: ["PATH=/usr/bin:/bin"] };
  if (config.entrypoint) inner.Entrypoint = config.entrypoint;
  if (config.cmd) inner.Cmd = config.cmd;
  const configBlob = writeBlob(
    dir,
    JSON.stringify({
      architecture: config.architecture ?? "amd64",
      os: config.os ?? "linux",
      ...(config.variant ? { variant: config.variant } : {}),
      config: inner,
      rootfs: { type: "layers", diff_ids: [diffId] },
    }),
  );
  const manifest = writeBlob(
    dir,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...configBlob },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...layer }],
    }),
  );
  return { ...manifest, mediaType: "application/vnd.oci.image.manifest.v1+json" };
}

/** Writes an OCI image layout holding `image` under `tag`; returns the directory. */
export function writeOciLayout(dir: string, tag: string, image: TestImage): string {
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  let top: Blob & { mediaType: string };
  if ("index" in image) {
    const manifests = image.index.map((config) => ({
      ...writeImage(dir, config),
      platform: {
        os: config.os ?? "linux",
        architecture: config.architecture ?? "amd64",
        ...(config.variant ? { variant: config.variant } : {}),
      },
    }));
    top = {
      ...writeBlob(
        dir,
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.index.v1+json",
          manifests,
        }),
      ),
      mediaType: "application/vnd.oci.image.index.v1+json",
    };
  } else {
    top = writeImage(dir, image);
  }
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...top, annotations: { "org.opencontainers.image.ref.name": tag } }],
    }),
  );
  return dir;
}
