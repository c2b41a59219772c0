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
import { runDemo, survivors } from "../testing/demo_run.ts";

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
    const run = await runDemo({ command: "npm", args: ["run", "demo"], env, clearEnv: true });
    const text = run.stdout + run.stderr;
    assert.equal(run.code, 0, text);
    assert.match(text, /demo finished/);
    const downloads = text.split("\n").filter((line) => /\bDownload\b/.test(line));
    assert.deepEqual(downloads, [], "no Download line on a cold Deno cache");
    assert.ok(!text.includes("\x1b["), "no colour codes when the output is a pipe");
    // The target is 15 s (about 7 s measured); the bound is generous for a loaded machine.
    assert.ok(run.seconds < 90, `npm run demo took ${run.seconds.toFixed(1)} s`);
    assert.deepEqual(survivors(run.pids), []);
  } finally {
    rmSync(denoDir, { recursive: true, force: true });
  }
});
