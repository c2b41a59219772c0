import { test } from "node:test";
import assert from "node:assert/strict";
import { forbiddenAddressReason } from "./address_policy.ts";

test("metadata, link-local, unspecified, multicast and reserved addresses are refused", () => {
  for (
    const address of [
      "169.254.169.254",
      "169.254.0.1",
      "fd00:ec2::254",
      "fd00:ec2::23",
      "fe80::1",
      "fe80::1%eth0",
      "100.100.100.200",
      "192.0.0.192",
      "0.0.0.0",
      "::",
      "224.0.0.1",
      "ff02::1",
      "255.255.255.255",
      "240.0.0.1",
      // IPv4 inside IPv6: mapped (both spellings), NAT64, 6to4, compatible.
      "::ffff:169.254.169.254",
      "::ffff:a9fe:a9fe",
      "64:ff9b::169.254.169.254",
      "2002:a9fe:a9fe::1",
      "::169.254.169.254",
    ]
  ) {
    assert.notEqual(forbiddenAddressReason(address), undefined, address);
  }
  assert.match(forbiddenAddressReason("169.254.169.254") ?? "", /metadata/);
});

test("loopback only with the explicit allowance", () => {
  for (const address of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"]) {
    assert.match(forbiddenAddressReason(address) ?? "", /loopback/, address);
    assert.equal(forbiddenAddressReason(address, { allowLoopback: true }), undefined, address);
  }
  // The allowance does not open metadata addresses.
  assert.notEqual(forbiddenAddressReason("169.254.169.254", { allowLoopback: true }), undefined);
});

test("public and private registry addresses are allowed", () => {
  for (
    const address of [
      "10.0.0.1",
      "172.16.5.4",
      "192.168.1.1",
      "100.64.0.1",
      "8.8.8.8",
      "2001:db8::1",
      "fd12::1",
      "::ffff:10.0.0.1",
    ]
  ) {
    assert.equal(forbiddenAddressReason(address), undefined, address);
  }
});

test("text that is not an IP address is refused", () => {
  for (const text of ["example.com", "", "1.2.3", "1.2.3.256", "::g"]) {
    assert.notEqual(forbiddenAddressReason(text), undefined, text);
  }
});
