import { test } from "node:test";
import assert from "node:assert/strict";
import {
  expandKubeletReferences,
  expandTemplate,
  formatCommandTemplate,
  hasKubeletSyntax,
  literalVariables,
  matchesTemplate,
  parseCommandTemplate,
  referencedNames,
} from "./command_template.ts";

const ENV: Record<string, string> = { PORT: "8080", HOST: "db", EMPTY: "" };
const lookup = (name: string) => ENV[name];

// The kubelet's third_party/forked/golang/expansion cases, plus a few more.
const EXPANSIONS: Array<[string, string]> = [
  ["$(PORT)", "8080"],
  ["--port=$(PORT)", "--port=8080"],
  ["$(HOST):$(PORT)", "db:8080"],
  ["$(EMPTY)x", "x"],
  ["$(UNSET)", "$(UNSET)"],
  ["$$(PORT)", "$(PORT)"],
  ["$$$(PORT)", "$8080"],
  ["$$", "$"],
  ["$$$$", "$$"],
  ["$", "$"],
  ["x$", "x$"],
  ["$x", "$x"],
  ["$(", "$("],
  ["$(PORT", "$(PORT"],
  ["$()", "$()"],
  ["$(PORT))", "8080)"],
  ["é$(PORT)€", "é8080€"],
  ["no reference", "no reference"],
];

for (const [input, expected] of EXPANSIONS) {
  test(`expandKubeletReferences() turns ${JSON.stringify(input)} into ${JSON.stringify(expected)}`, () => {
    assert.equal(expandKubeletReferences(input, lookup), expected);
  });
}

test("referencedNames() lists $(NAME) references, not escaped ones", () => {
  assert.deepEqual(referencedNames("$(A)-$$(B)-$(C"), ["A"]);
  assert.deepEqual(referencedNames("$(A)$(B)"), ["A", "B"]);
  assert.equal(hasKubeletSyntax(["/app", "--port=8080"]), false);
  assert.equal(hasKubeletSyntax(["$HOME", "a$b"]), false);
  assert.equal(hasKubeletSyntax(["$$HOME"]), true);
  assert.equal(hasKubeletSyntax(["--port=$(PORT)"]), true);
});

test("literalVariables() keeps literal values that refer only to literal variables before them", () => {
  const literal = literalVariables({
    env: [
      { name: "PORT", value: "8080" },
      { name: "ADDR", value: "0.0.0.0:$(PORT)" },
      { name: "CM", valueFrom: { configMapKeyRef: { name: "cm", key: "k" } } },
      { name: "FROM_CM", value: "$(CM)" },
      { name: "LATER", value: "$(AFTER)" },
      { name: "AFTER", value: "x" },
      { name: "POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      { name: "EMPTY" },
      { name: "REDEFINED", value: "1" },
      { name: "REDEFINED", valueFrom: { secretKeyRef: { name: "s", key: "k" } } },
      { name: "PIGGY_COMMAND_TEMPLATE", value: "{}" },
    ],
  }, { ignore: "PIGGY_COMMAND_TEMPLATE" });
  assert.deepEqual([...literal].sort(), ["ADDR", "AFTER", "EMPTY", "PORT"]);
});

test("formatCommandTemplate() doubles $ so that the kubelet's env expansion gives it back", () => {
  const text = formatCommandTemplate(["--port=$(PORT)", "$$HOME"], ["PORT"]);
  assert.equal(text, '{"argv":["--port=$$(PORT)","$$$$HOME"],"vars":["PORT"]}');
  const kubelet = expandKubeletReferences(text, lookup);
  assert.deepEqual(parseCommandTemplate(kubelet), {
    argv: ["--port=$(PORT)", "$$HOME"],
    vars: ["PORT"],
  });
});

test("parseCommandTemplate() refuses anything but string arrays", () => {
  for (const text of ["", "[]", '{"argv":["a"]}', '{"argv":[1],"vars":[]}', "null"]) {
    assert.throws(() => parseCommandTemplate(text), SyntaxError, text);
  }
});

test("matchesTemplate() accepts exactly the expansion with the template's variables", () => {
  const template = { argv: ["/app", "--port=$(PORT)", "--host=$(HOST)", "$$x"], vars: ["PORT"] };
  assert.deepEqual(expandTemplate(template, lookup), [
    "/app",
    "--port=8080",
    "--host=$(HOST)",
    "$x",
  ]);
  assert.equal(
    matchesTemplate(["/app", "--port=8080", "--host=$(HOST)", "$x"], template, lookup),
    true,
  );
  // HOST is not a template variable: its expansion is not the admitted command.
  assert.equal(
    matchesTemplate(["/app", "--port=8080", "--host=db", "$x"], template, lookup),
    false,
  );
  assert.equal(matchesTemplate(["/app", "--port=8080", "--host=$(HOST)"], template, lookup), false);
  assert.equal(
    matchesTemplate(["/app", "--port=8080", "--host=$(HOST)", "$x", "sh"], template, lookup),
    false,
  );
});
