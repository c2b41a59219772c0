import { test } from "node:test";
import assert from "node:assert/strict";
import { ecrRegistryOf } from "./ecr.ts";

test("ecrRegistryOf() accepts only anchored ECR hosts", () => {
  assert.deepEqual(ecrRegistryOf("123456789012.dkr.ecr.eu-west-1.amazonaws.com"), {
    registryId: "123456789012",
    region: "eu-west-1",
  });
  assert.deepEqual(
    ecrRegistryOf("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com")?.region,
    "us-gov-west-1",
  );
  assert.deepEqual(
    ecrRegistryOf("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn")?.region,
    "cn-north-1",
  );
  for (
    const host of [
      "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.com",
      "evil.com/123456789012.dkr.ecr.eu-west-1.amazonaws.com",
      "x123456789012.dkr.ecr.eu-west-1.amazonaws.com",
      "12345678901.dkr.ecr.eu-west-1.amazonaws.com",
      "123456789012.dkr.ecr.eu-west-1.amazonaws.com:443",
      "123456789012.dkr.ecr.EU-WEST-1.amazonaws.com",
      "ghcr.io",
    ]
  ) {
    assert.equal(ecrRegistryOf(host), undefined, host);
  }
});
