/**
 * piggy-env stays light in proxy mode: its module graph (as `deno run` and `deno compile` see it,
 * with the shipped flags) holds no npm package, the standalone AWS source is one bundled module
 * that imports only `node:` built-ins, the launcher bundle that `deno compile` embeds loads the
 * TLS warm-up first and then the launcher's two chunks on its way to `execve`, and works in every mode without reading the global `fetch` (a
 * preloaded guard, testing/no_fetch_preload.ts, ends a process that does), and a proxy start with
 * an empty Deno cache downloads nothing.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import { LAUNCHER_FLAGS } from "../cli/permissions.ts";
import { startAwsStandIn } from "../testing/aws.ts";
import { FETCH_READ_EXIT_CODE } from "../testing/no_fetch_preload.ts";
import { createTestCa } from "../testing/pki.ts";
import {
  DENO_BINARY,
  ensureStandaloneBundle,
  LAUNCHER_BUNDLE,
  LAUNCHER_ENTRY,
  parseReport,
  REPORT_APP,
  ROOT,
  runLauncher,
  startSecretResponder,
} from "../testing/launcher_process.ts";

interface ModuleInfo {
  specifier: string;
  dependencies?: Array<{
    specifier: string;
    isDynamic?: boolean;
    code?: { specifier: string };
  }>;
}

/** `deno info --json` of `entry` with the launcher's `--no-config`. */
function moduleGraph(
  entry: string,
): { roots: string[]; modules: ModuleInfo[]; npmPackages: object } {
  const result = spawnSync(DENO_BINARY, ["info", "--json", "--no-config", entry], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout);
}

test("piggy-env's module graph (proxy path) has no npm package and no AWS SDK", () => {
  assert.ok(LAUNCHER_FLAGS.includes("--no-config"), "the launcher runs without the import map");
  const graph = moduleGraph(LAUNCHER_ENTRY);
  const specifiers = graph.modules.map((module) => module.specifier);
  assert.ok(specifiers.some((s) => s.endsWith("/src/launcher/run.ts")), "graph was read");
  assert.deepEqual(Object.keys(graph.npmPackages ?? {}), []);
  for (const specifier of specifiers) {
    assert.ok(
      specifier.startsWith("file:") || specifier.startsWith("node:"),
      `unexpected module ${specifier}`,
    );
    // Relative to the checkout, whose own path may contain anything (a worktree named aws-…).
    const inRepository = specifier.replace(pathToFileURL(ROOT).href, "");
    assert.doesNotMatch(inRepository, /aws|standalone_/, `${specifier} is on the proxy path`);
  }
});

/**
 * Node built-ins whose Deno polyfills are loaded and compiled at run time (not part of Deno's
 * snapshot): `node:crypto` and `node:fs` alone pull in the Node stream layer. A proxy start on Deno
 * must load none of them on its way to `execve`; Node and the rare paths import them lazily.
 */
const HEAVY_NODE_MODULES = [
  "node:buffer",
  "node:child_process",
  "node:crypto",
  "node:fs",
  "node:fs/promises",
  "node:http",
  "node:https",
  "node:os",
  "node:stream",
];

/** The modules `entry` loads before it runs: its static imports, transitively. */
function staticallyLoaded(entry: string): Set<string> {
  const graph = moduleGraph(entry);
  const bySpecifier = new Map(graph.modules.map((module) => [module.specifier, module]));
  const reached = new Set<string>();
  const pending = [...graph.roots];
  while (pending.length > 0) {
    const specifier = pending.pop()!;
    if (reached.has(specifier)) continue;
    reached.add(specifier);
    for (const dependency of bySpecifier.get(specifier)?.dependencies ?? []) {
      if (!dependency.isDynamic && dependency.code) pending.push(dependency.code.specifier);
    }
  }
  return reached;
}

test("piggy-env's statically imported graph loads no heavy node: module", () => {
  // The entry starts the TLS warm-up and imports the launcher (cli/piggy_env_main.ts) dynamically.
  const main = join(ROOT, "cli", "piggy_env_main.ts");
  const reached = new Set([...staticallyLoaded(LAUNCHER_ENTRY), ...staticallyLoaded(main)]);
  assert.ok([...reached].some((s) => s.endsWith("/src/launcher/proxy.ts")), "graph was walked");
  for (const heavy of HEAVY_NODE_MODULES) {
    assert.ok(!reached.has(heavy), `${heavy} is imported statically on the launcher's path`);
  }
});

test("the launcher bundle: the entry loads only the warm-up, then the launcher as one chunk", async () => {
  await ensureStandaloneBundle();
  const entryFiles = [...staticallyLoaded(LAUNCHER_BUNDLE)].filter((s) => s.startsWith("file:"));
  // The entry and the small chunks of the TLS warm-up: what V8 compiles before the seeding starts.
  const entryBytes = entryFiles.reduce((sum, file) => sum + statSync(new URL(file)).size, 0);
  assert.ok(entryBytes < 4096, `${entryBytes} bytes load before the warm-up starts`);
  const graph = moduleGraph(LAUNCHER_BUNDLE);
  const entry = graph.modules.find((module) => module.specifier === graph.roots[0]);
  const launcher = entry?.dependencies?.filter((dependency) => dependency.isDynamic) ?? [];
  assert.equal(launcher.length, 1, "the entry imports the launcher dynamically");
  // The warm-up is the entry's first statement, before the launcher is imported (run.ts no longer
  // starts one: the entry is the only place, for the Deno launcher and the compiled binary alike).
  const entryText = readFileSync(new URL(graph.roots[0]!), "utf8");
  assert.match(entryText, /^\s*void warmUpTlsRandom\(\);\s*await import\(/m);
  const launcherChunk = launcher[0]?.code?.specifier ?? "";
  const reached = new Set([
    ...staticallyLoaded(LAUNCHER_BUNDLE),
    ...staticallyLoaded(launcherChunk),
  ]);
  const files = [...reached].filter((specifier) => specifier.startsWith("file:"));
  // The launcher's chunk and the chunk it shares with the lazily loaded parts (install, Node
  // fallbacks), besides the entry's.
  assert.ok(files.length <= entryFiles.length + 2, files.join("\n"));
  for (const file of files) assert.match(file, /\/gen\/[\w-]+\.js$/);
  for (const specifier of reached) {
    assert.ok(specifier.startsWith("file:") || specifier.startsWith("node:"), specifier);
  }
  for (const heavy of HEAVY_NODE_MODULES) {
    assert.ok(!reached.has(heavy), `${heavy} is imported statically by the launcher bundle`);
  }
  assert.deepEqual(Object.keys(graph.npmPackages ?? {}), []);
  assert.ok(graph.modules.length > files.length, "the lazily loaded chunks are separate modules");
});

/** `deno run` flags that end the launcher (exit 97) when anything reads the global `fetch`. */
const NO_FETCH = ["--preload", join(ROOT, "testing", "no_fetch_preload.ts")];

test("the launcher bundle runs proxy mode (TLS verified, and the unverified fallback)", async () => {
  await ensureStandaloneBundle();
  const dir = mkdtempSync(join(tmpdir(), "piggy-bundle-"));
  const ca = createTestCa("piggy-bundle");
  const leaf = ca.issue("server");
  const responder = await startSecretResponder({
    tls: { cert: leaf.cert, key: leaf.key },
    secrets: { DB_PASS: "bundled-secret" },
  });
  try {
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "token\n");
    const env = {
      PIGGY_ADDRESS: responder.address,
      PIGGY_POD_NAME: "app-1",
      PIGGY_UID: "uid-1",
      PIGGY_TOKEN_FILE: tokenFile,
      DB_PASS: "piggy:DB_PASS",
    };
    // Verified with the CA, then without verification (the node:https chunk, loaded lazily);
    // neither reads fetch.
    for (const extra of [{ PIGGY_CA_BUNDLE: ca.cert }, { PIGGY_SKIP_VERIFY_TLS: "true" }]) {
      const result = await runLauncher({
        entry: LAUNCHER_BUNDLE,
        args: ["--", REPORT_APP],
        env: { ...env, ...extra },
        denoFlags: NO_FETCH,
      });
      assert.notEqual(result.code, FETCH_READ_EXIT_CODE, result.stderr);
      assert.equal(result.code, 0, result.stderr);
      const report = parseReport(result.stdout);
      assert.equal(report.pid, result.pid);
      assert.equal(new Map(report.env).get("DB_PASS"), "bundled-secret");
    }
    const refused = await runLauncher({ entry: LAUNCHER_BUNDLE, args: ["--", REPORT_APP], env });
    assert.equal(refused.code, 1, "no CA given: the test CA is not trusted");
    assert.equal(responder.requests.length, 2);
  } finally {
    await responder.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(ca.dir, { recursive: true, force: true });
  }
});

test("the launcher bundle runs standalone mode (the standalone bundle beside it), no fetch", async () => {
  await ensureStandaloneBundle();
  const aws = await startAwsStandIn();
  try {
    aws.putSecret("bundle/app", { string: JSON.stringify({ DB_PASS: "from-aws" }) });
    const result = await runLauncher({
      entry: LAUNCHER_BUNDLE,
      denoFlags: NO_FETCH,
      args: ["--standalone", "--", REPORT_APP],
      env: {
        ...aws.env({ credentials: "static", region: "us-east-1" }),
        PIGGY_AWS_SECRET_NAME: "bundle/app",
        PIGGY_AWS_REGION: "us-east-1",
        DB_PASS: "piggy:DB_PASS",
      },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(new Map(parseReport(result.stdout).env).get("DB_PASS"), "from-aws");
  } finally {
    await aws.close();
  }
});

test("the bundled standalone source imports only node: built-ins", async () => {
  const bundle = await ensureStandaloneBundle();
  const graph = moduleGraph(bundle);
  const imports = graph.modules.flatMap((module) =>
    (module.dependencies ?? []).map((dependency) => dependency.specifier)
  );
  assert.ok(imports.length > 0, "the bundle imports node: modules");
  for (const specifier of imports) assert.match(specifier, /^node:/);
  assert.deepEqual(Object.keys(graph.npmPackages ?? {}), []);
});

test("the light standalone bundle imports neither the SDK nor its bundle, no heavy node: module", async () => {
  await ensureStandaloneBundle();
  const bundle = join(ROOT, "gen", "standalone_light.js");
  // Its transport is the launcher's own requestText, handed in: a copy bundled here would bring
  // the Node fallback's node:http and node:https as static imports.
  const reached = staticallyLoaded(bundle);
  for (const heavy of HEAVY_NODE_MODULES) {
    assert.ok(!reached.has(heavy), `${heavy} is imported statically by the light bundle`);
  }
  const graph = moduleGraph(bundle);
  assert.equal(graph.modules.length >= 1, true, "graph was read");
  for (const module of graph.modules) {
    assert.match(module.specifier, /^(file:.*\/gen\/standalone_light\.js|node:.*)$/);
    for (const dependency of module.dependencies ?? []) {
      assert.match(
        dependency.specifier,
        /^node:/,
        `the light bundle imports ${dependency.specifier}`,
      );
    }
  }
  assert.deepEqual(Object.keys(graph.npmPackages ?? {}), []);
});

test("piggy-env proxy start with an empty DENO_DIR downloads nothing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piggy-cold-"));
  const responder = await startSecretResponder({ secrets: { DB_PASS: "cold-secret" } });
  try {
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "token\n");
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: {
        DENO_DIR: join(dir, "deno"),
        PIGGY_ADDRESS: responder.address,
        PIGGY_POD_NAME: "app-1",
        PIGGY_UID: "uid-1",
        PIGGY_TOKEN_FILE: tokenFile,
        DB_PASS: "piggy:DB_PASS",
      },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(new Map(parseReport(result.stdout).env).get("DB_PASS"), "cold-secret");
    assert.doesNotMatch(result.stderr, /Download/);
    assert.deepEqual(result.plainStderr, []);
  } finally {
    await responder.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
