import { test } from "node:test";
import assert from "node:assert/strict";
import { parseListenAddress } from "./listen_address.ts";

test("parseListenAddress() reads Go-style addresses", () => {
  const cases: [string, string, number][] = [
    ["127.0.0.1:0", "127.0.0.1", 0],
    ["[::1]:8080", "::1", 8080],
    ["localhost:9000", "localhost", 9000],
  ];
  for (const [input, hostname, port] of cases) {
    assert.deepEqual(parseListenAddress(input), { hostname, port }, input);
  }
});

test("parseListenAddress() binds every interface for an empty host, IPv4 only as a fallback", () => {
  assert.deepEqual(parseListenAddress(":8443"), {
    hostname: "::",
    fallbackHostname: "0.0.0.0",
    port: 8443,
  });
});

test("parseListenAddress() rejects addresses without a valid port", () => {
  for (const input of ["8443", "host", ":", ":99999", "[::1]", "a:b"]) {
    assert.throws(() => parseListenAddress(input), SyntaxError, input);
  }
});
