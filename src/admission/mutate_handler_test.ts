import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUid } from "./mutate_handler.ts";

test("randomUid() makes 32 lowercase hex characters, different each time (MU-2)", () => {
  const uids = new Set(Array.from({ length: 100 }, () => randomUid()));
  assert.equal(uids.size, 100);
  for (const uid of uids) assert.match(uid, /^[0-9a-f]{32}$/);
});
