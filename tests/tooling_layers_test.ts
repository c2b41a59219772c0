/**
 * Test tooling stays apart: scripts/ and tests/ do not import each other, and testing/ (the
 * stand-ins, process helpers and test PKI that both use) imports neither. Checked over the real
 * module graph (`deno info --json`), so comments and strings that name a path do not count, and
 * type-only and dynamic imports do.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Top-level folders and the folders each must not import. */
const FORBIDDEN: Readonly<Record<string, readonly string[]>> = {
  scripts: ["tests"],
  tests: ["scripts"],
  testing: ["scripts", "tests"],
};

interface InfoModule {
  specifier: string;
  dependencies?: {
    specifier: string;
    code?: { specifier: string };
    type?: { specifier: string };
  }[];
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => join(entry.parentPath, entry.name));
}

/** The top-level folder of a `file:` URL under `root`, or undefined outside it. */
function folderOf(root: string, url: string): string | undefined {
  if (!url.startsWith("file:")) return undefined;
  const path = relative(root, fileURLToPath(url));
  if (path.startsWith("..")) return undefined;
  return path.split(sep)[0];
}

/**
 * Every import under `root` that breaks {@link FORBIDDEN}, as `from → to` (paths relative to
 * `root`): one `deno info --json` over a module that imports every .ts file of the checked folders.
 */
async function forbiddenImports(root: string, config?: string): Promise<string[]> {
  const files = Object.keys(FORBIDDEN).flatMap((folder) => {
    try {
      return tsFiles(join(root, folder));
    } catch {
      return [];
    }
  });
  const scratch = mkdtempSync(join(tmpdir(), "piggy-graph-"));
  try {
    const entry = join(scratch, "all.ts");
    writeFileSync(
      entry,
      files.map((file) => `import ${JSON.stringify(pathToFileURL(file).href)};\n`).join(""),
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", ...(config ? ["--config", config] : ["--no-config"]), entry],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    const graph = JSON.parse(new TextDecoder().decode(output.stdout)) as { modules: InfoModule[] };
    const violations: string[] = [];
    let edges = 0;
    for (const module of graph.modules) {
      const from = folderOf(root, module.specifier);
      const forbidden = from === undefined ? undefined : FORBIDDEN[from];
      if (!forbidden) continue;
      for (const dependency of module.dependencies ?? []) {
        for (const target of [dependency.code?.specifier, dependency.type?.specifier]) {
          if (target === undefined) continue;
          edges++;
          const to = folderOf(root, target);
          if (to !== undefined && forbidden.includes(to)) {
            violations.push(
              `${relative(root, fileURLToPath(module.specifier))} → ${
                relative(root, fileURLToPath(target))
              }`,
            );
          }
        }
      }
    }
    assert.ok(edges > 0, "no imports found: the graph query is broken");
    return [...new Set(violations)].sort();
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

test("scripts/ and tests/ do not import each other; testing/ imports neither", async () => {
  assert.deepEqual(await forbiddenImports(ROOT, join(ROOT, "deno.json")), []);
});

test("the import rule catches static, type-only and dynamic imports, not comments", async () => {
  const root = mkdtempSync(join(tmpdir(), "piggy-layers-"));
  try {
    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    };
    write("src/core.ts", "export const core = 1;\n");
    write(
      "testing/helper.ts",
      'import type { Bench } from "../scripts/bench.ts";\nexport type T = Bench;\n',
    );
    write("scripts/bench.ts", 'import "../testing/ok.ts";\nexport type Bench = number;\n');
    write("scripts/demo.ts", 'export const f = () => import("../tests/a_test.ts");\n');
    write(
      "testing/ok.ts",
      'import { core } from "../src/core.ts";\n// see ../tests/a_test.ts\nexport const ok = core;\n',
    );
    write(
      "tests/a_test.ts",
      'import { ok } from "../testing/ok.ts";\nimport "../scripts/bench.ts";\nexport const a = ok;\n',
    );
    assert.deepEqual(await forbiddenImports(root), [
      `scripts${sep}demo.ts → tests${sep}a_test.ts`,
      `testing${sep}helper.ts → scripts${sep}bench.ts`,
      `tests${sep}a_test.ts → scripts${sep}bench.ts`,
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
