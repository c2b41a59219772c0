import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { commandSignature } from "./signature.ts";
import { signatureText } from "./signature_text.ts";

// Test vectors computed by Go Piggy.
const VECTORS: [string[], string][] = [
  [[], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
  [["sh", "-c", "echo hello"], "2dd7e5fd4cee0bfad2b0f0ef8ec72a608873636f7bf71ad416d18317939b3222"],
  [["python", "app.py"], "c933fbddcaf73b7f6028b45404b1e81b7ee91915588d41940eea1dd6d686469f"],
  [["ls", "-la"], "1de700c29687cae34561545f50d3c8b3d9afe88e04cc11069f8a6dc6e4ce9464"],
  [["/demo"], "c918c7721b18fd83a8f9aab9b52a131f2ff72a3ea3c8f1b4df822b4029b7443a"],
];

for (const [argv, expected] of VECTORS) {
  test(`commandSignature() of ${JSON.stringify(argv)} matches Go Piggy`, () => {
    assert.equal(commandSignature(argv), expected);
  });
}

test("commandSignature() trims Unicode whitespace at both ends as Go TrimSpace", () => {
  const plain = commandSignature(["ls", "-la"]);
  assert.equal(commandSignature(["\u00a0ls", "-la\n"]), plain);
  assert.equal(commandSignature(["", "ls", "-la", ""]), plain);
  assert.equal(commandSignature(["\u3000\tls", "-la\u2028"]), plain);
});

test("commandSignature() keeps inner spaces and a byte order mark (Go does not trim U+FEFF)", () => {
  const plain = commandSignature(["ls", "-la"]);
  assert.notEqual(commandSignature(["ls ", "-la"]), plain);
  assert.notEqual(commandSignature(["\ufeffls", "-la"]), plain);
});

test("commandSignature() is ambiguous across argument boundaries, as in Go Piggy", () => {
  assert.equal(commandSignature(["a b"]), commandSignature(["a", "b"]));
});

test("commandSignature() trims in linear time on hostile whitespace", () => {
  // A regex trim backtracks quadratically here (seconds for 200k spaces); a scan does not.
  const argv = ["sh", "-c", `a${" ".repeat(200_000)}b`, " ".repeat(200_000)];
  const started = performance.now();
  const signature = commandSignature(argv);
  assert.ok(performance.now() - started < 1000, "trimming took more than a second");
  assert.equal(signature, commandSignature(["sh", "-c", `a${" ".repeat(200_000)}b`]));
});

test("commandSignature() gives the same answer from its memory of recent commands", () => {
  // More distinct commands than it remembers, twice over, and one too long to remember.
  const commands = Array.from({ length: 600 }, (_, index) => ["app", `--shard=${index}`]);
  commands.push(["app", "x".repeat(5000)]);
  const first = commands.map((argv) => commandSignature(argv));
  for (let index = commands.length - 1; index >= 0; index--) {
    assert.equal(
      commandSignature(commands[index]!),
      createHash("sha256").update(signatureText(commands[index]!)).digest("hex"),
    );
    assert.equal(commandSignature(commands[index]!), first[index]);
  }
  assert.equal(new Set(first).size, commands.length);
});
