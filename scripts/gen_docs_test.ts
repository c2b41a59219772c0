/**
 * docs/annotations.md and the chart schema's env rules are what scripts/gen_docs.ts produces from
 * the settings and webhook options tables, and
 * `gen_docs.ts --check` tells a drifted file from a current one.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ANNOTATIONS_DOC,
  CHART_SCHEMA,
  generateAnnotationsDoc,
  generateChartSchema,
} from "./gen_docs.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const GEN_DOCS = join(ROOT, "scripts", "gen_docs.ts");

test("docs/annotations.md is what scripts/gen_docs.ts produces from the settings table", async () => {
  const expected = await generateAnnotationsDoc();
  const current = readFileSync(ANNOTATIONS_DOC, "utf8");
  assert.equal(
    current,
    expected,
    "docs/annotations.md is out of date: run `deno task docs` and commit the result",
  );
});

test("the chart schema's env rules are what scripts/gen_docs.ts produces from the tables", () => {
  assert.equal(
    readFileSync(CHART_SCHEMA, "utf8"),
    generateChartSchema(),
    "charts/piggy-webhooks/values.schema.json is out of date: run `deno task docs` and commit it",
  );
});

test("gen_docs.ts --check exits 1 for a drifted file and 0 for a current one", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piggy-docs-"));
  try {
    const file = join(dir, "annotations.md");
    const current = readFileSync(ANNOTATIONS_DOC, "utf8");
    const check = async () => {
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", GEN_DOCS, "--check", "--file", file],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
    };
    writeFileSync(file, current.replace("| `aws-region`", "| `aws-regions`"));
    const drifted = await check();
    assert.equal(drifted.code, 1, drifted.stderr);
    assert.match(drifted.stderr, /out of date/);
    writeFileSync(file, current);
    const fresh = await check();
    assert.equal(fresh.code, 0, fresh.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
