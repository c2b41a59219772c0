import assert from "node:assert/strict";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { installExecutable, installTarget, LAUNCHER_MODE } from "./install.ts";

function workspace(): { dir: string; source: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "piggy-install-"));
  const source = join(dir, "source-binary");
  writeFileSync(source, "#!/bin/sh\necho launcher\n");
  chmodSync(source, 0o700);
  return { dir, source, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test("installTarget() appends piggy-env to an existing directory, else uses the path", async () => {
  const { dir, cleanup } = workspace();
  try {
    assert.equal(await installTarget(dir), join(dir, "piggy-env"));
    assert.equal(await installTarget(join(dir, "custom")), join(dir, "custom"));
  } finally {
    cleanup();
  }
});

test("installExecutable() copies into a directory with mode 0755 and leaves no temp file", async () => {
  const { dir, source, cleanup } = workspace();
  try {
    const volume = join(dir, "piggy");
    mkdirSync(volume);
    const target = await installExecutable(source, volume);
    assert.equal(target, join(volume, "piggy-env"));
    assert.equal(readFileSync(target, "utf8"), readFileSync(source, "utf8"));
    assert.equal(statSync(target).mode & 0o777, LAUNCHER_MODE);
    assert.deepEqual(readdirSync(volume), ["piggy-env"]);
  } finally {
    cleanup();
  }
});

test("installExecutable() replaces an existing file by rename (a new inode)", async () => {
  const { dir, source, cleanup } = workspace();
  try {
    const target = join(dir, "piggy-env");
    writeFileSync(target, "old");
    const before = statSync(target).ino;
    await installExecutable(source, target);
    assert.notEqual(statSync(target).ino, before);
    assert.equal(readFileSync(target, "utf8"), readFileSync(source, "utf8"));
  } finally {
    cleanup();
  }
});

test("installExecutable() fails clearly for a missing source and cleans up", async () => {
  const { dir, cleanup } = workspace();
  try {
    await assert.rejects(
      installExecutable(join(dir, "missing"), dir),
      /Cannot install ".*missing" to ".*piggy-env"/,
    );
    assert.deepEqual(readdirSync(dir).filter((name) => name.endsWith(".tmp")), []);
  } finally {
    cleanup();
  }
});

test("installExecutable() fails clearly when the directory does not exist", async () => {
  const { dir, source, cleanup } = workspace();
  try {
    await assert.rejects(
      installExecutable(source, join(dir, "no", "such", "dir")),
      /Cannot install/,
    );
  } finally {
    cleanup();
  }
});
