/**
 * `install` as the init container runs it: piggy-env copies the image's read-only launcher
 * directory (0555 directories and files) into the shared volume as uid 65532 without capabilities.
 * Needs root to switch users. (tests/launcher_roots_test.ts installs the real, patched directory.)
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { LAUNCHER_FLAGS } from "../cli/permissions.ts";
import { LAUNCHER_MODE } from "../src/launcher/install.ts";
import { DENO_BINARY, LAUNCHER_ENTRY } from "../testing/launcher_process.ts";

test("piggy-env install copies a read-only launcher directory as a non-root user", {
  skip: process.getuid?.() !== 0 ? "needs root to run the installer as another user" : false,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), "piggy-install-"));
  try {
    chmodSync(dir, 0o755);
    const source = join(dir, "image", "lib", "piggy-env");
    mkdirSync(join(source, "lib"), { recursive: true });
    writeFileSync(join(source, "piggy-env"), "launcher\n", { mode: 0o555 });
    writeFileSync(join(source, "lib", "ld-linux-x86-64.so.2"), "loader\n", { mode: 0o555 });
    chmodSync(join(source, "lib"), 0o555);
    chmodSync(source, 0o555);
    const volume = join(dir, "volume");
    mkdirSync(volume);
    chownSync(volume, 65532, 65532);
    const denoDir = join(dir, "deno-dir");
    mkdirSync(denoDir);
    chownSync(denoDir, 65532, 65532);
    const result = new Deno.Command(DENO_BINARY, {
      args: ["run", ...LAUNCHER_FLAGS, LAUNCHER_ENTRY, "install", "--from", source, volume],
      uid: 65532,
      gid: 65532,
      env: { DENO_DIR: denoDir, NO_COLOR: "1" },
      clearEnv: true,
      cwd: "/",
    }).outputSync();
    const stderr = new TextDecoder().decode(result.stderr);
    assert.equal(result.code, 0, stderr);
    const target = join(volume, "piggy-env");
    assert.equal(statSync(target).mode & 0o777, LAUNCHER_MODE);
    assert.equal(readFileSync(target, "utf8"), "launcher\n");
    assert.equal(statSync(join(volume, "lib", "ld-linux-x86-64.so.2")).uid, 65532);
  } finally {
    chmodSync(join(dir, "image", "lib", "piggy-env"), 0o755);
    chmodSync(join(dir, "image", "lib", "piggy-env", "lib"), 0o755);
    rmSync(dir, { recursive: true, force: true });
  }
});
