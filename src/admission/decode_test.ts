import { test } from "node:test";
import assert from "node:assert/strict";
import { AdmissionDecodeError } from "../errors.ts";
import { decodeJson } from "../http/envelope.ts";
import { decodeReview, readReviewUid } from "./decode.ts";

test("decodeReview() accepts a review without apiVersion and kind", () => {
  const review = decodeReview({ request: { uid: "test-uid", object: {} } });
  assert.equal(review.request.uid, "test-uid");
});

test("decodeReview() accepts an admission.k8s.io/v1 review", () => {
  const review = decodeReview({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: { uid: "u", namespace: "ns", operation: "CREATE", dryRun: true },
  });
  assert.equal(review.request.namespace, "ns");
  assert.equal(review.request.dryRun, true);
});

const BAD: [string, string, RegExp][] = [
  ["malformed JSON", "{invalid", /Cannot decode AdmissionReview/],
  ["a JSON array", "[]", /expecting a JSON object/],
  ["a null request", JSON.stringify({ request: null }), /request is missing/],
  ["a missing request", JSON.stringify({ kind: "AdmissionReview" }), /request is missing/],
  ["a missing uid", JSON.stringify({ request: {} }), /request\.uid is missing/],
  ["a numeric uid", JSON.stringify({ request: { uid: 5 } }), /request\.uid is missing/],
  [
    "v1beta1",
    JSON.stringify({ apiVersion: "admission.k8s.io/v1beta1", request: { uid: "u" } }),
    /version "admission\.k8s\.io\/v1beta1"/,
  ],
  ["another kind", JSON.stringify({ kind: "Pod", request: { uid: "u" } }), /kind "Pod"/],
  ["a numeric namespace", JSON.stringify({ request: { uid: "u", namespace: 1 } }), /namespace/],
  ["a string dryRun", JSON.stringify({ request: { uid: "u", dryRun: "true" } }), /dryRun/],
];

for (const [what, body, message] of BAD) {
  test(`decodeReview() rejects ${what} with an AdmissionDecodeError`, () => {
    assert.throws(() => decodeReview(decodeJson(body, "AdmissionReview")), (error: unknown) => {
      assert.ok(error instanceof AdmissionDecodeError);
      assert.match(error.message, message);
      return true;
    });
  });
}

test("readReviewUid() reads the uid of a rejected review when it can", () => {
  assert.equal(readReviewUid({ apiVersion: "x", request: { uid: "u1" } }), "u1");
  assert.equal(readReviewUid("{invalid"), undefined);
  assert.equal(readReviewUid({ request: null }), undefined);
  assert.equal(readReviewUid({ request: { uid: 3 } }), undefined);
});
