/**
 * piggy-env runs in images that have nothing of ours: each root below holds only the installed
 * launcher directory (/piggy), /proc, and one app — (a) scratch + a static busybox, (b) an
 * Alpine-like musl root with a musl-gcc app, (c) a glibc app with its own glibc. The launcher
 * directory is installed from a read-only source by uid 65532, as the init container does; then
 * in each root the launcher fetches from the real webhook (proxy, stand-ins on loopback) and from
 * the AWS stand-in (standalone), replaces `piggy:` values and execs the app: same PID, a clean
 * environment (no PIGGY_*, no LD_*), and none of our loader or libraries mapped into the app.
 *
 * The launcher is the pinned `deno` binary patched as scripts/launcher_tree.ts patches denort
 * (same dynamic dependencies), running cli/piggy_env.ts with the compiled binary's flags. Needs
 * root (chroot, mount, switching users) and Debian's patchelf, busybox-static, musl-tools and gcc
 * (`.ci/run` installs them); skipped otherwise. (A process test beside the file it tests: tests/
 * does not import scripts/.)
 */

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { after, before, test } from "node:test";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { LAUNCHER_FLAGS } from "../cli/permissions.ts";
import { INSTALL_DIR, LAUNCHER_PATH } from "../src/constants.ts";
import type { AwsStandIn } from "../testing/aws.ts";
import { admitPod, launcherToken, persistPod } from "../testing/flow.ts";
import type { KubeApiStandIn } from "../testing/kube_api.ts";
import {
  DENO_BINARY,
  ensureStandaloneBundle,
  LAUNCHER_ENTRY,
  ROOT,
} from "../testing/launcher_process.ts";
import { type Stack, startStack } from "../testing/stack.ts";
import { kubeletExpand } from "../testing/kubelet_env.ts";
import type { WebhookProcess } from "../testing/webhook_process.ts";
import { buildLauncherTree } from "./launcher_tree.ts";

const TOOLS = ["patchelf", "musl-gcc", "gcc", "chroot", "mount"];

function whyNot(): string | false {
  if (process.getuid?.() !== 0) return "needs root (chroot, mount, uid 65532)";
  const missing = TOOLS.filter((tool) =>
    spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0
  );
  const busybox = spawnSync("sh", ["-c", "file -L /bin/busybox | grep -q static"]).status === 0;
  if (!busybox) missing.push("busybox-static");
  return missing.length > 0 ? `needs ${missing.join(", ")} (.ci/run installs them)` : false;
}

const skip = whyNot();

/** Where the launcher's sources sit inside each root (the compiled binary embeds them). */
const SOURCE_IN_ROOT = "/src";
const APP_IN_ROOT = "/app";
const INSTALLER_UID = 65532;
const BUSYBOX_SCRIPT = "echo ready; echo pid $$; " +
  "if /bin/busybox grep -q /piggy/ /proc/$$/maps; then echo maps_piggy 1; else echo maps_piggy 0; fi; " +
  "/bin/busybox tr '\\0' '\\n' < /proc/$$/environ | /bin/busybox sed 's/^/env /'";

interface RootSpec {
  name: string;
  /** The app's command inside the root. */
  command: string[];
  /** Files to place: [path inside the root, source on this machine]. */
  files: Array<[string, string]>;
}

let work: string;
let source: string;
let kube: KubeApiStandIn;
let aws: AwsStandIn;
let webhook: WebhookProcess;
let stack: Stack | undefined;
const roots = new Map<string, { dir: string; spec: RootSpec }>();
const mounted: string[] = [];

function run(command: string, args: string[]): { stdout: string } {
  const result = spawnSync(command, args, { encoding: "utf8" });
  assert.equal(result.status, 0, `${command} ${args.join(" ")}: ${result.stderr}`);
  return { stdout: result.stdout };
}

/** The app's own loader and libraries (for the glibc root). */
function dynamicFiles(binary: string): Array<[string, string]> {
  const interpreter = run("patchelf", ["--print-interpreter", binary]).stdout.trim();
  const files: Array<[string, string]> = [[interpreter, realpathSync(interpreter)]];
  for (const name of run("patchelf", ["--print-needed", binary]).stdout.split("\n")) {
    if (!name || name === interpreter.split("/").at(-1)) continue;
    const path = `/lib/${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux-gnu/${name}`;
    files.push([path, realpathSync(path)]);
  }
  return files;
}

/** Installs the launcher directory into `<root>/piggy` as uid 65532 from the read-only source. */
function install(rootDir: string): void {
  const volume = join(rootDir, INSTALL_DIR);
  mkdirSync(volume);
  chownSync(volume, INSTALLER_UID, INSTALLER_UID);
  const denoDir = join(work, `deno-installer-${roots.size}`);
  mkdirSync(denoDir);
  chownSync(denoDir, INSTALLER_UID, INSTALLER_UID);
  const result = spawnSync(
    DENO_BINARY,
    ["run", ...LAUNCHER_FLAGS, LAUNCHER_ENTRY, "install", "--from", source, volume],
    {
      uid: INSTALLER_UID,
      gid: INSTALLER_UID,
      env: { DENO_DIR: denoDir, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      encoding: "utf8",
      cwd: "/",
    },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /Installed piggy-env to/);
}

function buildRoot(spec: RootSpec): string {
  const dir = join(work, `root-${spec.name}`);
  mkdirSync(join(dir, "proc"), { recursive: true });
  mkdirSync(join(dir, "tmp"));
  chmodSync(join(dir, "tmp"), 0o1777);
  for (const [inside, from] of spec.files) {
    mkdirSync(dirname(join(dir, inside)), { recursive: true });
    copyFileSync(from, join(dir, inside));
    chmodSync(join(dir, inside), 0o755);
  }
  // deno run needs the launcher's sources; the compiled binary carries them.
  for (const folder of ["cli", "src", "gen"]) {
    cpSync(join(ROOT, folder), join(dir, SOURCE_IN_ROOT, folder), {
      recursive: true,
      filter: (path) => !path.endsWith("_test.ts"),
    });
  }
  install(dir);
  run("mount", ["-t", "proc", "proc", join(dir, "proc")]);
  mounted.push(join(dir, "proc"));
  return dir;
}

interface RootRun {
  code: number | null;
  pid: number;
  stdout: string;
  stderr: string;
  appPid: number;
  mapsPiggy: number;
  env: Map<string, string>;
  envNames: string[];
}

/** Runs `chroot <root> /piggy/piggy-env run … -- <app>` with exactly `env`. */
function launchIn(root: string, command: string[], env: Record<string, string>): Promise<RootRun> {
  const entry = `${SOURCE_IN_ROOT}/cli/piggy_env.ts`;
  // An absolute chroot: the launcher's env (PATH=/bin) is not the test machine's.
  const chroot = spawnSync("sh", ["-c", "command -v chroot"], { encoding: "utf8" }).stdout.trim();
  const child = spawn(
    chroot,
    [root, LAUNCHER_PATH, "run", ...LAUNCHER_FLAGS, entry, "--", ...command],
    { env: { ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const lines = stdout.split("\n");
      const field = (name: string) =>
        Number(lines.find((line) => line.startsWith(`${name} `))?.slice(name.length + 1));
      const entries = lines.filter((line) => line.startsWith("env ")).map((line) => {
        const text = line.slice(4);
        const equals = text.indexOf("=");
        return [text.slice(0, equals), text.slice(equals + 1)] as [string, string];
      });
      resolve({
        code,
        pid: child.pid ?? -1,
        stdout,
        stderr,
        appPid: field("pid"),
        mapsPiggy: field("maps_piggy"),
        env: new Map(entries),
        envNames: entries.map(([name]) => name),
      });
    });
  });
}

/** What every app must see: its own PID, a resolved value, nothing of the launcher. */
function assertCleanStart(result: RootRun, given: Record<string, string>, value: string): void {
  assert.equal(result.code, 0, `${result.stderr}\n${result.stdout}`);
  assert.equal(result.appPid, result.pid, "the app runs with the launcher's PID");
  assert.equal(result.mapsPiggy, 0, "none of /piggy/ is mapped into the app");
  assert.equal(result.env.get("DB_PASS"), value);
  const expected = Object.keys(given).filter((name) => !name.startsWith("PIGGY_")).sort();
  assert.deepEqual(
    [...result.envNames].sort(),
    expected,
    "exactly the launcher's env, minus PIGGY_*",
  );
  assert.deepEqual(result.envNames.filter((name) => name.startsWith("LD_")), []);
  assert.doesNotMatch(result.stderr, new RegExp(value));
}

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), "piggy-roots-"));
  chmodSync(work, 0o755);
  await ensureStandaloneBundle();
  // The image's read-only launcher directory.
  source = join(work, "image", "usr", "local", "lib", "piggy-env");
  buildLauncherTree(DENO_BINARY, source);
  run("chmod", ["-R", "a-w", join(work, "image")]);

  const muslApp = join(work, "app-musl");
  const glibcApp = join(work, "app-glibc");
  const app = join(ROOT, "testing", "apps", "report.c");
  run("musl-gcc", ["-O2", "-o", muslApp, app]);
  run("gcc", ["-O2", "-o", glibcApp, app]);
  const muslLoader = run("patchelf", ["--print-interpreter", muslApp]).stdout.trim();
  const specs: RootSpec[] = [
    {
      name: "scratch-busybox",
      command: ["/bin/busybox", "sh", "-c", BUSYBOX_SCRIPT],
      files: [["/bin/busybox", "/bin/busybox"]],
    },
    {
      name: "musl",
      command: [APP_IN_ROOT],
      files: [[APP_IN_ROOT, muslApp], [muslLoader, realpathSync(muslLoader)]],
    },
    {
      name: "glibc",
      command: [APP_IN_ROOT],
      files: [[APP_IN_ROOT, glibcApp], ...dynamicFiles(glibcApp)],
    },
  ];
  for (const spec of specs) roots.set(spec.name, { dir: buildRoot(spec), spec });

  stack = await startStack({ caLabel: "piggy-roots", allowOwnAddress: true });
  ({ kube, aws, webhook } = stack);
  aws.putSecret("roots/app", { string: JSON.stringify({ DB_PASS: "from-aws-standin" }) });
});

after(async () => {
  if (skip) return;
  for (const path of mounted) spawnSync("umount", ["-l", path]);
  await stack?.stop();
  if (work && existsSync(work)) {
    spawnSync("chmod", ["-R", "u+w", work]);
    rmSync(work, { recursive: true, force: true });
  }
});

/** Launcher environment shared by both modes: where deno run caches, and the reference. */
function baseEnv(): Record<string, string> {
  return {
    PATH: "/bin",
    HOME: "/tmp",
    DENO_DIR: "/tmp/deno",
    NO_COLOR: "1",
    DB_PASS: "piggy:DB_PASS",
  };
}

test("install from a read-only image as uid 65532 gives a self-contained /piggy", { skip }, () => {
  for (const { dir } of roots.values()) {
    const launcher = join(dir, LAUNCHER_PATH);
    assert.equal(
      run("patchelf", ["--print-interpreter", launcher]).stdout.trim(),
      `${INSTALL_DIR}/lib/${
        process.arch === "arm64" ? "ld-linux-aarch64.so.1" : "ld-linux-x86-64.so.2"
      }`,
    );
    assert.ok(existsSync(join(dir, INSTALL_DIR, "lib", "libc.so.6")));
  }
});

test("proxy mode in scratch, musl and glibc roots: webhook values, same PID, clean env", {
  skip,
}, async () => {
  const pod: Pod = {
    metadata: {
      generateName: "roots-",
      annotations: {
        "piggysec.com/piggy-address": webhook.url,
        "piggysec.com/aws-secret-name": "roots/app",
      },
    },
    spec: {
      serviceAccountName: "app",
      containers: [...roots.values()].map(({ spec }) => ({
        name: spec.name,
        image: `${spec.name}:1`,
        command: spec.command,
        env: [{ name: "DB_PASS", value: "piggy:DB_PASS" }],
      })),
    },
  };
  const admitted = await admitPod(webhook, pod, "roots");
  const stored = persistPod(kube, admitted.pod, "roots", "roots-0");
  const token = launcherToken(kube, stored);
  for (const { dir, spec } of roots.values()) {
    writeFileSync(join(dir, "token"), token);
    const container = stored.spec!.containers.find((c) => c.name === spec.name)!;
    assert.equal(container.command?.[0], LAUNCHER_PATH, "the webhook wrapped the container");
    const env: Record<string, string> = baseEnv();
    for (const entry of container.env ?? []) {
      // Literal values as the kubelet gives them: `$$` becomes `$` (the command template doubles
      // each `$` for that).
      if (entry.value !== undefined && entry.name !== "DB_PASS") {
        env[entry.name] = kubeletExpand(entry.value, new Map(Object.entries(env)));
      }
    }
    env.PIGGY_POD_NAME = "roots-0";
    env.PIGGY_TOKEN_FILE = "/token";
    const result = await launchIn(dir, spec.command, env);
    assertCleanStart(result, env, "from-aws-standin");
  }
});

test("standalone mode in scratch, musl and glibc roots: AWS values, same PID, clean env", {
  skip,
}, async () => {
  for (const { dir, spec } of roots.values()) {
    const env: Record<string, string> = {
      ...baseEnv(),
      ...aws.env({ credentials: "static", region: "us-east-1" }),
      PIGGY_STANDALONE: "true",
      PIGGY_AWS_SECRET_NAME: "roots/app",
    };
    const result = await launchIn(dir, spec.command, env);
    assertCleanStart(result, env, "from-aws-standin");
  }
});
