import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { lookPath } from "./look_path.ts";
import { nodeAccessCheck, nodeFileKind } from "./look_path_node.ts";

function tree() {
  const dir = mkdtempSync(join(tmpdir(), "piggy-lookpath-"));
  const first = join(dir, "first");
  const second = join(dir, "second");
  mkdirSync(first);
  mkdirSync(second);
  const file = (path: string, mode: number) => {
    writeFileSync(path, "#!/bin/sh\n");
    chmodSync(path, mode);
    return path;
  };
  return { dir, first, second, file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

// A fake access check so the results do not depend on running as root (root may execute 0644
// files only if some x bit is set; the kernel check is exercised by the process tests).
const byMode = (executables: Set<string>) => (path: string) => executables.has(path);

test("lookPath() takes the first executable match in PATH order", () => {
  const t = tree();
  try {
    const a = t.file(join(t.first, "app"), 0o755);
    const b = t.file(join(t.second, "app"), 0o755);
    const check = byMode(new Set([a, b]));
    assert.deepEqual(lookPath("app", `${t.first}:${t.second}`, check, nodeFileKind), {
      found: true,
      path: a,
    });
    assert.deepEqual(lookPath("app", `${t.second}:${t.first}`, check, nodeFileKind), {
      found: true,
      path: b,
    });
  } finally {
    t.cleanup();
  }
});

test("lookPath() skips a non-executable match and continues like execvp", () => {
  const t = tree();
  try {
    const a = t.file(join(t.first, "app"), 0o644);
    const b = t.file(join(t.second, "app"), 0o755);
    const check = byMode(new Set([b]));
    assert.ok(a);
    assert.deepEqual(lookPath("app", `${t.first}:${t.second}`, check, nodeFileKind), {
      found: true,
      path: b,
    });
  } finally {
    t.cleanup();
  }
});

test("lookPath() returns 126 when only non-executable files or directories match", () => {
  const t = tree();
  try {
    t.file(join(t.first, "app"), 0o644);
    mkdirSync(join(t.second, "app"));
    const result = lookPath("app", `${t.first}:${t.second}`, byMode(new Set()), nodeFileKind);
    assert.equal(result.found, false);
    assert.equal(!result.found && result.exitCode, 126);
  } finally {
    t.cleanup();
  }
});

test("lookPath() returns 127 when nothing matches, and for an empty name", () => {
  const t = tree();
  try {
    const result = lookPath("app", `${t.first}:${t.second}`, () => true, nodeFileKind);
    assert.equal(!result.found && result.exitCode, 127);
    const empty = lookPath("", `${t.first}`, () => true, nodeFileKind);
    assert.equal(!empty.found && empty.exitCode, 127);
  } finally {
    t.cleanup();
  }
});

test("lookPath() uses a name with a slash as given", () => {
  const t = tree();
  try {
    const a = t.file(join(t.first, "app"), 0o755);
    assert.deepEqual(lookPath(a, "", () => true, nodeFileKind), { found: true, path: a });
    const missing = lookPath(join(t.first, "nope"), t.first, () => true, nodeFileKind);
    assert.equal(!missing.found && missing.exitCode, 127);
    const dir = lookPath(t.first, "", () => true, nodeFileKind);
    assert.equal(!dir.found && dir.exitCode, 126);
  } finally {
    t.cleanup();
  }
});

test("lookPath() treats an empty PATH entry as the current directory", () => {
  const result = lookPath("no-such-command-here", ":", () => true, nodeFileKind);
  assert.equal(!result.found && result.exitCode, 127);
  const found = lookPath("deno.json", ":", () => true, nodeFileKind);
  assert.deepEqual(found, { found: true, path: "./deno.json" });
});

test("lookPath() with the real access check finds /bin/sh", () => {
  const result = lookPath("sh", "/usr/bin:/bin", nodeAccessCheck, nodeFileKind);
  assert.equal(result.found, true);
});
