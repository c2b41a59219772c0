/**
 * `install` as the init container runs it: a read-only (0555) binary, copied by a non-root user
 * without capabilities into the shared volume. Needs root to switch users.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LAUNCHER_MODE } from "../src/launcher/install.ts";

function workspace(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "piggy-install-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test("installExecutable() installs a read-only (0555) binary as a non-root user", {
  skip: Deno.uid() !== 0 ? "needs root to run the installer as another user" : false,
}, async () => {
  // The piggy-env image ships /piggy-env as 0555 and the installer runs as uid 65532 without
  // capabilities: copyFile keeps 0555 on the temporary file, so it must never be opened for writing.
  const { dir, cleanup } = workspace();
  try {
    chmodSync(dir, 0o755);
    const source = join(dir, "piggy-env-image-binary");
    writeFileSync(source, "#!/bin/sh\necho launcher\n");
    chmodSync(source, 0o555);
    const volume = join(dir, "volume");
    mkdirSync(volume);
    chownSync(volume, 65532, 65532);
    // install.ts only needs node: built-ins, so a copy runs as another user without the project.
    const module = join(dir, "install.ts");
    copyFileSync(new URL("../src/launcher/install.ts", import.meta.url), module);
    const script = join(dir, "run.ts");
    writeFileSync(
      script,
      `import { installExecutable } from "./install.ts";\n` +
        `console.log(await installExecutable(${JSON.stringify(source)}, ${
          JSON.stringify(volume)
        }));\n`,
    );
    const result = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--allow-read", "--allow-write", script],
      uid: 65532,
      gid: 65532,
      env: { DENO_DIR: join(dir, "deno-dir"), NO_COLOR: "1" },
      clearEnv: true,
      cwd: dir,
    }).output();
    const stderr = new TextDecoder().decode(result.stderr);
    assert.equal(result.code, 0, stderr);
    const target = join(volume, "piggy-env");
    assert.equal(statSync(target).mode & 0o777, LAUNCHER_MODE);
    assert.equal(readFileSync(target, "utf8"), "#!/bin/sh\necho launcher\n");
  } finally {
    cleanup();
  }
});
