/**
 * The first run after `npm ci`: Deno takes npm packages from the node_modules that npm installed
 * (`nodeModulesDir: "manual"`), so an empty Deno cache downloads nothing, and nothing prints colour
 * codes into a pipe. The import map must name the versions package.json pins, or Deno and Node would
 * run different code.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

function readJson(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(ROOT, name), "utf8"));
}

/** `npm:name@version` or `npm:/name@version/` → [name, version]. */
function npmSpecifier(target: string): [string, string] | undefined {
  const match = /^npm:\/?(@?[^@]+)@([^/]+)\/?$/.exec(target);
  return match ? [match[1] as string, match[2] as string] : undefined;
}

test("deno.json uses npm's node_modules and imports the versions package.json pins", () => {
  const deno = readJson("deno.json");
  assert.equal(deno.nodeModulesDir, "manual");
  const pkg = readJson("package.json");
  const pinned: Record<string, string> = {
    ...(pkg.devDependencies as Record<string, string>),
    ...(pkg.dependencies as Record<string, string>),
  };
  const imports = Object.values(deno.imports as Record<string, string>);
  assert.ok(imports.length > 0);
  for (const target of imports) {
    const parsed = npmSpecifier(target);
    assert.ok(parsed, `"${target}" is an npm specifier with a version`);
    const [name, version] = parsed;
    assert.equal(pinned[name], version, `package.json pins ${name} at the version deno.json uses`);
  }
});

test("npm run demo with an empty Deno cache downloads nothing and prints no colour codes", async () => {
  const denoDir = mkdtempSync(join(tmpdir(), "piggy-cold-deno-dir-"));
  try {
    const env: Record<string, string> = { ...Deno.env.toObject(), DENO_DIR: denoDir };
    delete env.NO_COLOR;
    delete env.FORCE_COLOR;
    const started = performance.now();
    const child = new Deno.Command("npm", {
      args: ["run", "demo"],
      cwd: ROOT,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 180_000);
    const output = await child.output();
    clearTimeout(timer);
    const seconds = (performance.now() - started) / 1000;
    const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, text);
    assert.match(text, /demo finished/);
    const downloads = text.split("\n").filter((line) => /\bDownload\b/.test(line));
    assert.deepEqual(downloads, [], "no Download line on a cold Deno cache");
    assert.ok(!text.includes("\x1b["), "no colour codes when the output is a pipe");
    // The target is 15 s (about 7 s measured); the bound is generous for a loaded machine.
    assert.ok(seconds < 90, `npm run demo took ${seconds.toFixed(1)} s`);
  } finally {
    rmSync(denoDir, { recursive: true, force: true });
  }
});
