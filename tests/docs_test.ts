/**
 * The documentation stays true: every relative link of the READMEs and docs/ points at an existing
 * file (and heading, when it names one). scripts/gen_docs_test.ts checks the generated docs.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

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
