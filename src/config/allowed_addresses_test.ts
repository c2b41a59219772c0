import { test } from "node:test";
import assert from "node:assert/strict";
import { addressRefusal, normalizeAddress, parseAllowedAddresses } from "./allowed_addresses.ts";

test("normalizeAddress() lower-cases the host, drops the default port and trailing slashes", () => {
  const cases: Array<[string, string]> = [
    ["https://Piggy.SVC", "https://piggy.svc"],
    ["https://piggy.svc:443/", "https://piggy.svc"],
    ["https://piggy.svc:8443//", "https://piggy.svc:8443"],
    ["https://piggy.svc/base/", "https://piggy.svc/base"],
    ["https://piggy.svc/a/../b", "https://piggy.svc/b"],
    ["https://[::1]:8443", "https://[::1]:8443"],
  ];
  for (const [text, normal] of cases) assert.equal(normalizeAddress(text), normal, text);
});

test("normalizeAddress() refuses other schemes, user info, queries and fragments", () => {
  const cases: Array<[string, RegExp]> = [
    ["http://piggy.svc", /not an https URL/],
    ["piggy.svc", /not a URL/],
    ["https://u:p@piggy.svc", /user info/],
    ["https://u@piggy.svc", /user info/],
    ["https://piggy.svc/?", /query or a fragment/],
    ["https://piggy.svc#x", /query or a fragment/],
  ];
  for (const [text, reason] of cases) assert.throws(() => normalizeAddress(text), reason, text);
});

test("parseAllowedAddresses() normalises and deduplicates the list", () => {
  assert.deepEqual(parseAllowedAddresses(" https://a.svc/ , https://A.svc:443,,https://b.svc "), [
    "https://a.svc",
    "https://b.svc",
  ]);
  assert.throws(() => parseAllowedAddresses("https://a.svc,http://b.svc"), /not an https URL/);
});

test("addressRefusal() names PIGGY_ALLOWED_ADDRESSES for every refusal", () => {
  const allowed = ["https://piggy.svc"];
  assert.equal(addressRefusal("https://PIGGY.svc:443/", allowed), undefined);
  for (const address of ["https://other.svc", "http://piggy.svc", "not a url", ""]) {
    assert.match(addressRefusal(address, allowed) ?? "", /PIGGY_ALLOWED_ADDRESSES/, address);
  }
  assert.match(addressRefusal("https://piggy.svc", []) ?? "", /PIGGY_ALLOWED_ADDRESSES is not set/);
});

test("addressRefusal() answers the same for an address asked again, after others in between", () => {
  const allowed = parseAllowedAddresses("https://piggy.svc,https://other.svc:8443/base");
  const addresses = [
    "https://PIGGY.svc:443/",
    "https://piggy.svc",
    "http://piggy.svc",
    "https://piggy.svc",
    "https://other.svc:8443/base/",
    "not a url",
    "https://evil.svc",
    "https://PIGGY.svc:443/",
  ];
  const fresh = (address: string) => {
    try {
      return allowed.includes(normalizeAddress(address)) ? "allowed" : "refused";
    } catch {
      return "invalid";
    }
  };
  for (let round = 0; round < 3; round++) {
    for (const address of addresses) {
      const refusal = addressRefusal(address, allowed);
      const expected = fresh(address);
      assert.equal(refusal === undefined, expected === "allowed", address);
      if (expected === "invalid") assert.match(refusal ?? "", /Cannot use piggy-address:/);
    }
  }
});
