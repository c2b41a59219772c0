import assert from "node:assert/strict";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import {
  DATA_MODE,
  defaultInstallSource,
  installLauncher,
  LAUNCHER_MODE,
  VERSION_PREFIX,
} from "./install.ts";

/** A launcher directory as the image keeps it: read-only, binary + lib/. */
function workspace(marker = "v1"): { dir: string; source: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "piggy-install-"));
  const source = join(dir, "source");
  mkdirSync(join(source, "lib"), { recursive: true });
  writeFileSync(join(source, "piggy-env"), `launcher ${marker}\n`);
  writeFileSync(join(source, "lib", "ld-linux-x86-64.so.2"), `loader ${marker}\n`);
  writeFileSync(join(source, "lib", "libc.so.6"), `libc ${marker}\n`);
  chmodSync(join(source, "piggy-env"), 0o555);
  chmodSync(join(source, "lib", "ld-linux-x86-64.so.2"), 0o555);
  chmodSync(join(source, "lib", "libc.so.6"), 0o444);
  chmodSync(join(source, "lib"), 0o555);
  chmodSync(source, 0o555);
  return {
    dir,
    source,
    cleanup: () => {
      chmodSync(source, 0o755);
      chmodSync(join(source, "lib"), 0o755);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test("defaultInstallSource() is lib/piggy-env beside the image's bin/", () => {
  assert.equal(defaultInstallSource("/usr/local/bin/piggy-env"), "/usr/local/lib/piggy-env");
});

test("installLauncher() installs the directory behind piggy-env and lib links", async () => {
  const { dir, source, cleanup } = workspace();
  try {
    const volume = join(dir, "piggy");
    mkdirSync(volume);
    assert.equal(await installLauncher(source, volume), join(volume, "piggy-env"));
    assert.equal(readFileSync(join(volume, "piggy-env"), "utf8"), "launcher v1\n");
    assert.equal(readFileSync(join(volume, "lib", "libc.so.6"), "utf8"), "libc v1\n");
    assert.ok(lstatSync(join(volume, "piggy-env")).isSymbolicLink());
    assert.match(
      readlinkSync(join(volume, "lib")),
      new RegExp(`^\\${VERSION_PREFIX}[0-9a-f]+/lib$`),
    );
    assert.equal(statSync(join(volume, "piggy-env")).mode & 0o777, LAUNCHER_MODE);
    assert.equal(statSync(join(volume, "lib", "ld-linux-x86-64.so.2")).mode & 0o777, LAUNCHER_MODE);
    assert.equal(statSync(join(volume, "lib", "libc.so.6")).mode & 0o777, DATA_MODE);
    assert.equal(statSync(join(volume, "lib")).mode & 0o777, LAUNCHER_MODE);
    assert.equal(readdirSync(volume).length, 3, readdirSync(volume).join(" "));
  } finally {
    cleanup();
  }
});

test("installLauncher() re-run replaces the version and removes the old one and leftovers", async () => {
  const first = workspace("v1");
  const second = workspace("v2");
  try {
    const volume = join(first.dir, "piggy");
    await installLauncher(first.source, volume);
    // An interrupted earlier run, and a launcher copied by an older piggy-env (a plain file).
    mkdirSync(join(volume, `${VERSION_PREFIX}000000000000`));
    writeFileSync(join(volume, "piggy-env.abc.tmp"), "");
    rmSync(join(volume, "piggy-env"));
    writeFileSync(join(volume, "piggy-env"), "old single binary");
    await installLauncher(second.source, volume);
    assert.equal(readFileSync(join(volume, "piggy-env"), "utf8"), "launcher v2\n");
    assert.equal(readFileSync(join(volume, "lib", "ld-linux-x86-64.so.2"), "utf8"), "loader v2\n");
    const names = readdirSync(volume).sort();
    assert.equal(names.length, 3, names.join(" "));
    assert.deepEqual(names.filter((name) => !name.startsWith(VERSION_PREFIX)), [
      "lib",
      "piggy-env",
    ]);
  } finally {
    first.cleanup();
    second.cleanup();
  }
});

test("installLauncher() refuses a source that is not a launcher directory", async () => {
  const { dir, cleanup } = workspace();
  try {
    const volume = join(dir, "piggy");
    mkdirSync(volume);
    const single = join(dir, "piggy-env-binary");
    writeFileSync(single, "binary");
    await assert.rejects(
      installLauncher(single, volume),
      /Cannot install ".*piggy-env-binary" to ".*piggy": Cannot use .* as the launcher directory/,
    );
    assert.deepEqual(readdirSync(volume), []);
  } finally {
    cleanup();
  }
});

test("installLauncher() reports an unwritable destination and leaves nothing behind", {
  skip: process.getuid?.() === 0 ? "root writes anywhere" : false,
}, async () => {
  const { dir, source, cleanup } = workspace();
  try {
    const volume = join(dir, "piggy");
    mkdirSync(volume);
    chmodSync(volume, 0o555);
    await assert.rejects(installLauncher(source, volume), /Cannot install .*EACCES/);
    chmodSync(volume, 0o755);
    assert.deepEqual(readdirSync(volume), []);
  } finally {
    cleanup();
  }
});
