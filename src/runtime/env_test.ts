import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { denoGlobal } from "./deno.ts";
import { environmentEntries, environOrder } from "./env.ts";

const onDeno = { skip: denoGlobal() === undefined ? "needs Deno FFI" : false };

test("environOrder() reads every variable name from libc's environ through FFI", onDeno, () => {
  const deno = denoGlobal();
  assert.ok(deno);
  const names = environOrder(deno);
  assert.ok(names, "FFI available under deno test --allow-all");
  assert.deepEqual(new Set(names), new Set(Object.keys(process.env)));
});

test("environmentEntries() lists each variable once with its value", () => {
  const entries = environmentEntries();
  const names = entries.map(([name]) => name);
  assert.equal(new Set(names).size, names.length);
  assert.deepEqual(Object.fromEntries(entries), { ...process.env });
});
