import { test } from "node:test";
import assert from "node:assert/strict";
import { formatUidAnnotation, parseUidAnnotation } from "./piggy_uid.ts";

test("parseUidAnnotation() reads the compact uid → signature map", () => {
  const { signatures, problem } = parseUidAnnotation('{"a":"sig-a","b":"sig-b"}');
  assert.deepEqual([...signatures], [["a", "sig-a"], ["b", "sig-b"]]);
  assert.equal(problem, undefined);
});

test("parseUidAnnotation() treats unusable text as an empty map with a problem", () => {
  for (const text of ["{bad", "[]", '"text"', "null"]) {
    const { signatures, problem } = parseUidAnnotation(text);
    assert.equal(signatures.size, 0, text);
    assert.match(problem ?? "", /piggy-uid/, text);
  }
  const mixed = parseUidAnnotation('{"a":"sig-a","b":1}');
  assert.deepEqual([...mixed.signatures], [["a", "sig-a"]]);
  assert.match(mixed.problem ?? "", /non-string/);
  assert.equal(parseUidAnnotation(undefined).signatures.size, 0);
});

test("parseUidAnnotation() reads an annotation written by Go Piggy's json.Marshal", () => {
  // Go escapes <, > and & as \u003c, \u003e, \u0026 and writes no spaces.
  const text = '{"0a1b":"1de700c2","u\\u003c1\\u0026":"sig"}';
  const { signatures, problem } = parseUidAnnotation(text);
  assert.deepEqual([...signatures], [["0a1b", "1de700c2"], ["u<1&", "sig"]]);
  assert.equal(problem, undefined);
  assert.equal(parseUidAnnotation("").signatures.size, 0);
  assert.equal(parseUidAnnotation("").problem, undefined);
});

test("formatUidAnnotation() writes what Go's json.Marshal writes: keys sorted, no spaces", () => {
  const text = formatUidAnnotation(new Map([["b2", "sig-b"], ["a1", "sig-a"]]));
  assert.equal(text, '{"a1":"sig-a","b2":"sig-b"}');
  assert.deepEqual([...parseUidAnnotation(text).signatures], [["a1", "sig-a"], ["b2", "sig-b"]]);
  assert.equal(formatUidAnnotation(new Map()), "{}");
});

/** The annotation read through `JSON.parse` alone: the oracle of the scan. */
function parsedByJson(text: string): { entries: [string, string][]; usable: boolean } {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return { entries: [], usable: false };
    }
    const entries = Object.entries(parsed).filter((entry): entry is [string, string] =>
      typeof entry[1] === "string"
    );
    return { entries, usable: entries.length === Object.keys(parsed).length };
  } catch {
    return { entries: [], usable: false };
  }
}

test("parseUidAnnotation() gives what JSON.parse gives, for 3,000 random annotations", () => {
  let seed = 7;
  const random = (below: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % below;
  };
  const keys = [
    "",
    "a",
    "0",
    "7",
    "12",
    "01",
    "4294967294",
    "4294967295",
    "__proto__",
    "constructor",
    'q"uote',
    "back\\slash",
    "line\nbreak",
    "é€🔑",
    "\u2028",
    "18fff879d9cf4a25a3cfee0c3b423ebb",
    "2d3d9beb05f2489982ad4507b1936a96",
  ];
  const values: unknown[] = ["sig", "", "6387d387b4c0", 'x"y', "é", 1, null, ["a"], { a: "b" }];
  const spaces = ["", "", "", " ", "\n"];
  let scanned = 0;
  for (let round = 0; round < 3000; round++) {
    const count = random(5);
    const entries = Array.from({ length: count }, () => {
      const key = JSON.stringify(keys[random(keys.length)]);
      const value = JSON.stringify(values[random(values.length)]);
      return `${spaces[random(5)]}${key}${spaces[random(5)]}:${spaces[random(5)]}${value}`;
    });
    let text = `{${entries.join(",")}}`;
    if (random(10) === 0) text = text.slice(0, -1);
    if (random(10) === 0) text = `${text.slice(0, -1)},}`;
    if (random(10) === 0) text = ` ${text}`;
    const expected = parsedByJson(text);
    const { signatures, problem } = parseUidAnnotation(text);
    assert.deepEqual([...signatures], expected.entries, text);
    assert.equal(problem === undefined, expected.usable, text);
    if (/^\{("[^"\\]*":"[^"\\]*",?)*\}$/.test(text)) scanned++;
  }
  assert.ok(scanned > 300, `only ${scanned} annotations in the plain form`);
});

test("formatUidAnnotation() and parseUidAnnotation() round-trip, escapes included", () => {
  const signatures = new Map([["b", 'x"y'], ["a\\", "é"], ["18fff879", "sig"], ["0", "zero"]]);
  const text = formatUidAnnotation(signatures);
  assert.deepEqual(
    [...parseUidAnnotation(text).signatures].sort(),
    [...signatures].sort(),
  );
  assert.equal(text, '{"0":"zero","18fff879":"sig","a\\\\":"é","b":"x\\"y"}');
});

test("formatUidAnnotation() quotes as JSON.stringify does, for 2,000 random maps", () => {
  let state = 7;
  const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const alphabet = [
    "a",
    "0",
    "f",
    '"',
    "\\",
    "\n",
    "\u0001",
    "\u007f",
    "é",
    "\u2028",
    "\ud83d",
    "\ude00",
    "🔑",
    "/",
  ];
  const text = () =>
    Array.from({ length: Math.floor(next() * 6) }, () => alphabet[Math.floor(next() * 14)]).join(
      "",
    );
  for (let round = 0; round < 2000; round++) {
    const signatures = new Map<string, string>();
    for (let count = Math.floor(next() * 4); count > 0; count--) signatures.set(text(), text());
    const expected = `{${
      [...signatures.keys()].sort().map((uid) =>
        `${JSON.stringify(uid)}:${JSON.stringify(signatures.get(uid))}`
      ).join(",")
    }}`;
    assert.equal(formatUidAnnotation(signatures), expected);
  }
});
