import { test } from "node:test";
import assert from "node:assert/strict";
import {
  expandKubeletReferences,
  NO_FACTS,
  type PodFacts,
  referencedSecretKeys,
} from "./container_refs.ts";

test("expandKubeletReferences() follows the kubelet's $(NAME) rules", () => {
  const defined = new Map([["STAGE", "prod"], ["EMPTY", ""]]);
  const cases: [string, string][] = [
    ["piggy:$(STAGE)-db", "piggy:prod-db"],
    ["$(UNKNOWN)-x", "$(UNKNOWN)-x"],
    ["$$(STAGE)", "$(STAGE)"],
    ["a$$b", "a$b"],
    ["$(STAGE", "$(STAGE"],
    ["x$(EMPTY)y", "xy"],
    ["cost $5", "cost $5"],
  ];
  for (const [input, expected] of cases) {
    assert.equal(expandKubeletReferences(input, defined), expected, input);
  }
});

test("referencedSecretKeys() sees references as the launcher does, after $(NAME) expansion", () => {
  const keys = referencedSecretKeys({
    name: "app",
    env: [
      { name: "STAGE", value: "prod" },
      { name: "DB_PASS", value: "piggy:$(STAGE)-db-pass" },
      { name: "TOKEN", value: "piggy:API_TOKEN\n" },
      { name: "FROM_CM", valueFrom: { configMapKeyRef: { name: "cm", key: "k" } } },
      { name: "LATER", value: "piggy:$(FROM_CM)" },
      { name: "PLAIN", value: "hello" },
    ],
  }, NO_FACTS);
  assert.deepEqual([...keys].sort(), ["$(FROM_CM)", "API_TOKEN", "prod-db-pass"]);
});

test("referencedSecretKeys() adds the references held by valueFrom and envFrom objects", () => {
  const facts: PodFacts = {
    configMaps: new Map([["cm", new Map([["k", "FROM_CONFIGMAP"]])], ["gone", null]]),
    secrets: new Map([["refs", new Map([["a", "A"], ["b", "B"]])]]),
  };
  const keys = referencedSecretKeys({
    name: "app",
    env: [
      { name: "X", valueFrom: { configMapKeyRef: { name: "cm", key: "k" } } },
      { name: "Y", valueFrom: { configMapKeyRef: { name: "gone", key: "k" } } },
    ],
    envFrom: [{ secretRef: { name: "refs" } }],
  }, facts);
  assert.deepEqual([...keys].sort(), ["A", "B", "FROM_CONFIGMAP"]);
});
