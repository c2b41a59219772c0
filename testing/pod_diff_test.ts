import { test } from "node:test";
import assert from "node:assert/strict";
import { collapseInstaller, diffLines, formatDiff, yamlLines } from "./pod_diff.ts";

test("diffLines() and formatDiff() show only the changed lines with context", () => {
  const before = yamlLines({
    metadata: { name: "a" },
    spec: { containers: [{ name: "c", command: ["x"] }] },
  });
  const after = yamlLines({
    metadata: { name: "a" },
    spec: { containers: [{ name: "c", command: ["/piggy/piggy-env"], args: ["--", "x"] }] },
  });
  const diff = diffLines(before, after);
  assert.deepEqual(
    diff.filter((line) => line.kind !== " ").map((line) => `${line.kind}${line.text.trim()}`),
    ["-command: [x]", "+command: [/piggy/piggy-env]", "+args: [--, x]"],
  );
  assert.deepEqual(diff.filter((line) => line.kind !== "+").map((line) => line.text), before);
  assert.deepEqual(diff.filter((line) => line.kind !== "-").map((line) => line.text), after);
  const shown = formatDiff(diff, 0);
  assert.equal(shown.length, 3);
  assert.ok(shown.every((line) => !line.includes("\x1b[")), "no colours unless asked");
  const painted = formatDiff(diff, 0, {
    added: (text) => `+[${text}]`,
    removed: (text) => `-[${text}]`,
    unchanged: (text) => text,
  });
  assert.deepEqual(painted.map((line) => line[0]), ["-", "+", "+"]);
});

test("collapseInstaller() folds an added install-piggy-env container into one line", () => {
  const lines = diffLines(
    yamlLines({ spec: { containers: [] } }),
    yamlLines({
      spec: {
        initContainers: [{ name: "install-piggy-env", image: "i", args: ["install", "/piggy"] }],
        containers: [],
      },
    }),
  );
  const collapsed = collapseInstaller(lines);
  assert.deepEqual(collapsed.map((line) => line.text.trim()), [
    "spec:",
    "initContainers:",
    "- name: install-piggy-env",
    "# … the same 2 lines as above",
    "containers: []",
  ]);
});
