import assert from "node:assert/strict";
import { test } from "node:test";
import { ENV, RESERVED_KEYS } from "../constants.ts";
import { allowedServiceAccounts, withoutReservedKeys } from "./filter.ts";

test("withoutReservedKeys() drops every reserved key and keeps the rest", () => {
  const values: Record<string, string> = { NORMAL_VAR: "kept", PIGGY_UID: "not reserved" };
  for (const key of RESERVED_KEYS) values[key] = "reserved";
  const kept = withoutReservedKeys(values);
  assert.deepEqual(kept, { NORMAL_VAR: "kept", PIGGY_UID: "not reserved" });
  assert.equal(values[ENV.ALLOWED_SA], "reserved", "the input is not mutated");
});

test("withoutReservedKeys() drops PIGGY_ALLOWED_SA and PIGGY_AWS_SECRET_VERSION", () => {
  assert.deepEqual(
    withoutReservedKeys({
      MY_VAR: "val1",
      PIGGY_ALLOWED_SA: "default:test-sa",
      PIGGY_AWS_SECRET_NAME: "x",
      PIGGY_AWS_SECRET_VERSION: "AWSCURRENT",
    }),
    { MY_VAR: "val1" },
  );
});

test("withoutReservedKeys() matches keys case-sensitively", () => {
  assert.deepEqual(withoutReservedKeys({ piggy_allowed_sa: "x" }), { piggy_allowed_sa: "x" });
});

test("allowedServiceAccounts() parses PIGGY_ALLOWED_SA", () => {
  const cases: [string, string[]][] = [
    ["default:test-sa,other:sa", ["default:test-sa", "other:sa"]],
    ["ns:a, ns:b", ["ns:a", "ns:b"]],
    [" ns:a ,\tns:b\n", ["ns:a", "ns:b"]],
    ["ns:a,,ns:b,", ["ns:a", "ns:b"]],
    ["ns:a", ["ns:a"]],
    ["", []],
    [" , ", []],
  ];
  for (const [raw, expected] of cases) {
    assert.deepEqual(allowedServiceAccounts({ [ENV.ALLOWED_SA]: raw }), expected, raw);
  }
});

test("allowedServiceAccounts() returns undefined when the key is absent", () => {
  assert.equal(allowedServiceAccounts({ MY_VAR: "ns:a" }), undefined);
  assert.equal(allowedServiceAccounts({}), undefined);
});
