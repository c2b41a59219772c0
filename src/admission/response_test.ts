import { test } from "node:test";
import assert from "node:assert/strict";
import {
  allowReview,
  denyReview,
  encodeBase64,
  MAX_WARNING_LENGTH,
  MAX_WARNINGS_TOTAL,
  patchReview,
  reviewJson,
  sanitizeWarnings,
} from "./response.ts";
import { Buffer } from "node:buffer";

test("allowReview() sets apiVersion, kind and uid, with no patch fields", () => {
  assert.deepEqual(allowReview("u1"), {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    response: { uid: "u1", allowed: true },
  });
});

test("patchReview() sends patch and patchType together as base64 JSON", () => {
  const ops = [{ op: "add" as const, path: "/metadata/labels", value: { "é": "ü" } }];
  const review = patchReview("u2", ops);
  assert.equal(review.response.patchType, "JSONPatch");
  const bytes = Uint8Array.from(atob(review.response.patch ?? ""), (char) => char.charCodeAt(0));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(bytes)), ops);
});

test("patchReview() with an empty patch is a plain allow", () => {
  assert.deepEqual(patchReview("u3", []), allowReview("u3"));
});

test("denyReview() carries the code and message", () => {
  assert.deepEqual(denyReview("u4", 403, "Cannot do it").response, {
    uid: "u4",
    allowed: false,
    status: { code: 403, message: "Cannot do it" },
  });
});

test("sanitizeWarnings() keeps warnings short, single-line, unique and without prefix", () => {
  const long = "x".repeat(300);
  const out = sanitizeWarnings(["Warning: first", "first", "two\nlines", "", long]);
  assert.deepEqual(out.slice(0, 2), ["first", "two lines"]);
  assert.equal(out[2]?.length, MAX_WARNING_LENGTH);
  assert.ok(out[2]?.endsWith("…"));
});

test("sanitizeWarnings() stops before the total limit", () => {
  const many = Array.from({ length: 100 }, (_, i) => `${i}`.padEnd(100, "w"));
  const out = sanitizeWarnings(many);
  const total = out.reduce((sum, warning) => sum + warning.length, 0);
  assert.ok(total <= MAX_WARNINGS_TOTAL);
  assert.equal(out.length, Math.floor(MAX_WARNINGS_TOTAL / 100));
});

test("builders add warnings only when there are some", () => {
  assert.deepEqual(allowReview("u", { warnings: ["a"] }).response.warnings, ["a"]);
  assert.equal("warnings" in allowReview("u", { warnings: [] }).response, false);
});

test("encodeBase64() encodes UTF-8 and large inputs", () => {
  assert.equal(encodeBase64("piggy"), "cGlnZ3k=");
  const big = "é".repeat(100_000);
  const bytes = Uint8Array.from(atob(encodeBase64(big)), (char) => char.charCodeAt(0));
  assert.equal(new TextDecoder().decode(bytes), big);
});

test("encodeBase64() gives node:buffer's bytes for every size around its reused buffer", () => {
  // ASCII, 2-, 3- and 4-byte characters and a lone surrogate (written as U+FFFD by both).
  const alphabet = ["a", "é", "€", "😀", "\ud800", "\n", "\u0000"];
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (const length of [0, 1, 2, 3, 100, 5_000, 21_845, 21_846, 22_000, 70_000]) {
    let text = "";
    while (text.length < length) text += alphabet[Math.floor(random() * alphabet.length)];
    assert.equal(encodeBase64(text), Buffer.from(text, "utf8").toString("base64"), `${length}`);
  }
  // A short text after a long one: nothing of the long one's bytes is left over.
  encodeBase64("€".repeat(20_000));
  assert.equal(encodeBase64("piggy"), "cGlnZ3k=");
});

test("reviewJson() is JSON.stringify of the review, with the patch last", () => {
  const ops = [{ op: "add" as const, path: "/metadata/labels", value: { 'é"': "</script>" } }];
  const reviews = [
    patchReview('u-"1', ops),
    patchReview("u2", ops, { warnings: ['one "quoted" warning', "two"] }),
    allowReview("u3", { warnings: ["w"] }),
    denyReview("u4", 403, 'Cannot "do" it\n'),
  ];
  for (const review of reviews) {
    const text = reviewJson(review);
    assert.deepEqual(JSON.parse(text), review);
    assert.equal(text.length, JSON.stringify(review).length);
  }
  assert.match(reviewJson(reviews[1]!), /,"patch":"[A-Za-z0-9+/=]+"\}\}$/);
});

test("reviewJson() is exactly JSON.stringify for random UIDs, warnings and messages", () => {
  let seed = 2026;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  // Any UTF-16 code unit: quotes, backslashes, control characters, U+2028/9, lone surrogates.
  const special = ['"', "\\", "\n", "\u0000", "\u001f", "\u007f", "\u2028", "\u2029", "\ud800"];
  const text = () => {
    let out = "";
    for (let length = Math.floor(random() * 12); length > 0; length--) {
      out += random() < 0.5
        ? special[Math.floor(random() * special.length)]!
        : String.fromCharCode(Math.floor(random() * 0x10000));
    }
    return out;
  };
  for (let round = 0; round < 500; round++) {
    const uid = text();
    const warnings = random() < 0.5 ? { warnings: [text(), text()] } : {};
    const ops = [{ op: "add" as const, path: `/metadata/labels/${text()}`, value: text() }];
    const reviews = [patchReview(uid, ops, warnings), denyReview(uid, 400, text(), warnings)];
    for (const review of reviews) {
      const { patch, ...rest } = review.response;
      // JSON.stringify of the same review with `patch` (when there is one) as the last field.
      const expected = JSON.stringify({
        apiVersion: review.apiVersion,
        kind: review.kind,
        response: patch === undefined ? rest : { ...rest, patch },
      });
      assert.equal(reviewJson(review), expected);
    }
  }
});
