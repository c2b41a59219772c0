import assert from "node:assert/strict";
import { test } from "node:test";
import { commandSignature } from "../pod/signature.ts";
import { launcherSignature, webSignature } from "./fetch.ts";

const COMMANDS: string[][] = [
  ["ls", "-la"],
  [],
  [""],
  ["\u00a0ls", "-la\n"],
  ["\ufeffls", "-la"],
  ["\u3000\tsh", "-c", "echo $HOME ünïcödé 🐷\u2028"],
  ["sh", "-c", `a${" ".repeat(10_000)}b`],
];

for (const argv of COMMANDS) {
  test(`webSignature() equals commandSignature() for ${JSON.stringify(argv).slice(0, 60)}`, async () => {
    assert.equal(await webSignature(argv), commandSignature(argv));
  });
}

test("launcherSignature() without a template signs the command itself", async () => {
  assert.equal(
    await launcherSignature(["ls", "-la"], "", () => undefined),
    commandSignature(["ls", "-la"]),
  );
});
