import { test } from "node:test";
import assert from "node:assert/strict";
import { pathOf } from "./app.ts";

test("pathOf() gives what URL's pathname gives, for routes and for anything else", () => {
  const paths = [
    "/mutate",
    "/secret",
    "/healthz",
    "/readyz",
    "/metrics",
    "/mutate?dryRun=1",
    "/mutate#x",
    "/mutate/",
    "/./mutate",
    "/a/../secret",
    "/%6Dutate",
    "//mutate",
    "/",
    "/MUTATE",
    "/mutate%20",
  ];
  for (const origin of ["http://127.0.0.1:40123", "https://[::1]:8443", "https://piggy"]) {
    for (const path of paths) {
      const url = `${origin}${path}`;
      assert.equal(pathOf(url), new URL(url).pathname, url);
    }
    assert.equal(pathOf(origin), "/");
  }
});
