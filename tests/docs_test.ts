/**
 * The documentation stays true: docs/annotations.md is what scripts/gen_docs.ts produces from the
 * settings table, and every relative link of the READMEs and docs/ points at an existing file (and
 * heading, when it names one).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SETTINGS } from "../src/config/settings.ts";
import { ENV } from "../src/constants.ts";
import { ANNOTATIONS_DOC, generateAnnotationsDoc } from "../scripts/gen_docs.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const GEN_DOCS = join(ROOT, "scripts", "gen_docs.ts");

/** The markdown files whose links are checked. */
function markdownFiles(): string[] {
  const docs = readdirSync(join(ROOT, "docs"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => join(ROOT, "docs", name));
  return [join(ROOT, "README.md"), join(ROOT, "demo", "README.md"), ...docs];
}

/** Markdown without fenced code blocks and inline code (links there are not links). */
function withoutCode(text: string): string {
  return text.replace(/^ *```[\s\S]*?^ *```/gm, "").replace(/`[^`\n]*`/g, "");
}

/** Targets of `[text](target)` links and `<img src>`, without titles. */
function linkTargets(text: string): string[] {
  const targets: string[] = [];
  for (const match of withoutCode(text).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    targets.push(match[1]!);
  }
  return targets;
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to `-`. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/`/g, "").replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

function anchorsOf(path: string): Set<string> {
  const text = readFileSync(path, "utf8").replace(/^ *```[\s\S]*?^ *```/gm, "");
  return new Set([...text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)].map((match) => slug(match[1]!)));
}

test("docs/annotations.md is what scripts/gen_docs.ts produces from the settings table", async () => {
  const expected = await generateAnnotationsDoc();
  const current = readFileSync(ANNOTATIONS_DOC, "utf8");
  assert.equal(
    current,
    expected,
    "docs/annotations.md is out of date: run `deno task docs` and commit the result",
  );
});

test("docs/annotations.md names every setting, its env fallback and every PIGGY_* variable", () => {
  const doc = readFileSync(ANNOTATIONS_DOC, "utf8");
  for (const setting of SETTINGS) {
    assert.ok(doc.includes(`\`${setting.key}\``), `missing setting ${setting.key}`);
    assert.ok(doc.includes(`\`${setting.env}\``), `missing env ${setting.env}`);
  }
  for (const name of Object.values(ENV)) {
    assert.ok(doc.includes(`\`${name}\``), `missing variable ${name}`);
  }
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

test("every relative link of README.md, demo/README.md and docs/*.md points at an existing file", () => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of markdownFiles()) {
    for (const target of linkTargets(readFileSync(file, "utf8"))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, …
      const [path = "", anchor] = target.split("#", 2);
      const resolved = path === "" ? file : resolve(dirname(file), decodeURIComponent(path));
      const where = `${relative(ROOT, file)}: ${target}`;
      checked++;
      if (!existsSync(resolved)) {
        broken.push(`${where} (no such file)`);
      } else if (anchor && resolved.endsWith(".md") && !anchorsOf(resolved).has(anchor)) {
        broken.push(`${where} (no heading "#${anchor}")`);
      }
    }
  }
  assert.deepEqual(broken, []);
  assert.ok(checked > 20, `only ${checked} links found: the link pattern is broken`);
});

test("the link checker finds broken links and anchors", () => {
  const dir = mkdtempSync(join(tmpdir(), "piggy-links-"));
  try {
    writeFileSync(join(dir, "a.md"), "# Title\n\n## Some `code` heading\n");
    const text =
      "[ok](a.md) [anchor](a.md#some-code-heading) [bad](b.md) [bad anchor](a.md#nope)\n" +
      "`[not a link](c.md)`\n```\n[not a link](d.md)\n```\n  ```\n  [not a link](e.md)\n  ```\n" +
      "[web](https://example.com)\n";
    assert.deepEqual(linkTargets(text), [
      "a.md",
      "a.md#some-code-heading",
      "b.md",
      "a.md#nope",
      "https://example.com",
    ]);
    assert.ok(anchorsOf(join(dir, "a.md")).has("some-code-heading"));
    assert.ok(!anchorsOf(join(dir, "a.md")).has("nope"));
    assert.equal(
      slug("Token audience: `PIGGY_TOKEN_AUDIENCES`"),
      "token-audience-piggy_token_audiences",
    );
    assert.equal(slug("Upgrading from Go Piggy's chart"), "upgrading-from-go-piggys-chart");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
