import assert from "node:assert/strict";
import { test } from "node:test";
import { Logger } from "../log.ts";
import { denoGlobal } from "./deno.ts";
import { execCommand, openLibc, spawnCommand } from "./exec.ts";

function quietLogger(lines: string[] = []): Logger {
  return new Logger({ level: "debug", sink: (line) => lines.push(line) });
}

test("spawnCommand() returns the child's exit code (spawn fallback)", async () => {
  const code = await spawnCommand("/bin/sh", ["sh", "-c", "exit 7"], [], quietLogger());
  assert.equal(code, 7);
});

test("spawnCommand() returns 128 + signal number when the child is killed", async () => {
  const code = await spawnCommand("/bin/sh", ["sh", "-c", "kill -TERM $$"], [], quietLogger());
  assert.equal(code, 128 + 15);
});

test("spawnCommand() passes exactly the given environment", async () => {
  const code = await spawnCommand(
    "/bin/sh",
    ["sh", "-c", 'test "$ONLY" = yes && test -z "$HOME"'],
    [["ONLY", "yes"]],
    quietLogger(),
  );
  assert.equal(code, 0);
});

test("execCommand() with forceSpawn exits 127 for a missing command and 126 for a directory", async () => {
  const lines: string[] = [];
  const logger = quietLogger(lines);
  assert.equal(
    await execCommand(["no-such-command"], [], { logger, searchPath: "/bin", forceSpawn: true }),
    127,
  );
  assert.equal(
    await execCommand(["/tmp"], [], { logger, searchPath: "/bin", forceSpawn: true }),
    126,
  );
  assert.match(lines.join("\n"), /Command not found \\"no-such-command\\"/);
  assert.match(lines.join("\n"), /Cannot execute \\"\/tmp\\"/);
});

test("execCommand() with forceSpawn runs the command found on PATH", async () => {
  const code = await execCommand(["sh", "-c", "exit 3"], [], {
    logger: quietLogger(),
    searchPath: "/usr/bin:/bin",
    forceSpawn: true,
  });
  assert.equal(code, 3);
});

const onDeno = { skip: denoGlobal() === undefined ? "needs Deno FFI" : false };

test(
  "openLibc() loads libc through FFI and checks execute permission like access(2)",
  onDeno,
  () => {
    const deno = denoGlobal();
    assert.ok(deno, "runs under Deno");
    const libc = openLibc(deno);
    assert.ok(
      "canExecute" in libc,
      `libc unavailable: ${"unavailable" in libc && libc.unavailable}`,
    );
    try {
      assert.equal(libc.canExecute("/bin/sh"), true);
      assert.equal(libc.canExecute("/no/such/file"), false);
    } finally {
      libc.close();
    }
  },
);

test(
  "preloadLibc() opens libc ahead: the next execCommand() replaces the process with it",
  onDeno,
  async () => {
    const deno = denoGlobal();
    assert.ok(deno, "runs under Deno");
    const exec = new URL("./exec.ts", import.meta.url).href;
    const log = new URL("../log.ts", import.meta.url).href;
    // A separate Deno process: execve replaces it, and the shell reports the same PID.
    const program = `
      import { execCommand, preloadLibc } from ${JSON.stringify(exec)};
      import { Logger } from ${JSON.stringify(log)};
      preloadLibc();
      console.log(Deno.pid);
      await execCommand(["sh", "-c", "echo $$"], [["PATH", "/usr/bin:/bin"]], {
        logger: new Logger({ level: "debug" }),
        searchPath: "/usr/bin:/bin",
      });
      console.log("not replaced");
    `;
    const output = await new Deno.Command(deno.execPath(), {
      args: ["eval", "--no-config", program],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const [pid, shellPid, ...rest] = new TextDecoder().decode(output.stdout).trim().split("\n");
    assert.equal(shellPid, pid);
    assert.deepEqual(rest, []);
  },
);
