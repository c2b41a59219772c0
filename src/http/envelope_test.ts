import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AccessDeniedError,
  AdmissionDecodeError,
  KubeApiError,
  KubeUnavailableError,
  MethodNotAllowedError,
  SecretSourceError,
  toStatus,
  UnsupportedMediaTypeError,
} from "../errors.ts";
import {
  acceptJsonPost,
  decodeJson,
  errorResponse,
  jsonResponse,
  readJsonBody,
} from "./envelope.ts";

function post(body: string, contentType = "application/json", method = "POST"): Request {
  return new Request("https://piggy/x", {
    method,
    headers: { "content-type": contentType },
    ...(method === "GET" ? {} : { body }),
  });
}

test("acceptJsonPost() refuses other methods with one wording", () => {
  assert.throws(() => acceptJsonPost(post("", "application/json", "GET")), (error: unknown) => {
    assert.ok(error instanceof MethodNotAllowedError);
    assert.equal(error.message, 'Cannot accept method "GET": only POST is allowed');
    return true;
  });
});

test("acceptJsonPost() accepts application/json with parameters and refuses other types", () => {
  acceptJsonPost(post("{}", "Application/JSON; charset=utf-8"));
  for (const type of ["text/plain", "application/jsonx", ""]) {
    assert.throws(() => acceptJsonPost(post("{}", type)), (error: unknown) => {
      assert.ok(error instanceof UnsupportedMediaTypeError);
      assert.match(error.message, /only application\/json is supported/);
      return true;
    });
  }
});

test("decodeJson() names the subject and never quotes the body", () => {
  assert.deepEqual(decodeJson('{"a":1}', "request"), { a: 1 });
  assert.throws(() => decodeJson('{"secret-canary', "request"), (error: unknown) => {
    assert.ok(error instanceof AdmissionDecodeError);
    assert.equal(error.message, "Cannot decode request: body is not valid JSON");
    return true;
  });
});

test("readJsonBody() reads and decodes within the limit", async () => {
  assert.deepEqual(await readJsonBody(post('{"a":[1]}'), "request", { limit: 100 }), { a: [1] });
  await assert.rejects(readJsonBody(post('{"a":[1]}'), "request", { limit: 3 }), /larger than 3/);
});

test("errorResponse() answers the declared status, one body shape, Allow on 405", async () => {
  const cases: [unknown, number, string][] = [
    [new AdmissionDecodeError("bad"), 400, "BadRequest"],
    [new AccessDeniedError("no"), 403, "AccessDenied"],
    [new MethodNotAllowedError("m"), 405, "MethodNotAllowed"],
    [
      new SecretSourceError("aws", { code: "ResourceNotFoundException" }),
      502,
      "ResourceNotFoundException",
    ],
    [new KubeUnavailableError("down"), 503, "KubernetesUnavailable"],
    [new Error("boom with details"), 500, "InternalError"],
  ];
  for (const [error, status, code] of cases) {
    const response = errorResponse(error);
    assert.equal(response.status, status);
    assert.equal(response.headers.get("content-type"), "application/json");
    assert.equal(response.headers.get("cache-control"), "no-store");
    assert.equal(response.headers.get("allow"), status === 405 ? "POST" : null);
    const body = await response.json() as { error: string; message: string };
    assert.equal(body.error, code);
    assert.doesNotMatch(body.message, /details/);
  }
});

test("errorResponse() redacts the message", async () => {
  const response = errorResponse(
    new AccessDeniedError("token abc123 refused"),
    (message) => message.replaceAll("abc123", "[token]"),
  );
  assert.equal((await response.json() as { message: string }).message, "token [token] refused");
});

test("toStatus() reads the status we answer, not the upstream one", () => {
  // A Kubernetes API 403 (our RBAC) is a 502 from us; an upstream 503 stays data on the error.
  assert.equal(toStatus(new KubeApiError("rbac", 403)), 502);
  assert.equal(new KubeApiError("rbac", 403).status, 403);
  assert.equal(toStatus(new SecretSourceError("aws 400")), 502);
  assert.equal(toStatus(new TypeError("x")), 500);
  assert.equal(toStatus("text"), 500);
});

test("jsonResponse() sets the JSON headers and extra ones", async () => {
  const response = jsonResponse(201, { ok: true }, { "x-extra": "1" });
  assert.equal(response.status, 201);
  assert.equal(response.headers.get("x-content-type-options"), "nosniff");
  assert.equal(response.headers.get("x-extra"), "1");
  assert.deepEqual(await response.json(), { ok: true });
});
