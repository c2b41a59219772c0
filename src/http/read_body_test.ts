import { test } from "node:test";
import assert from "node:assert/strict";
import { AdmissionDecodeError, PayloadTooLargeError, RequestTimeoutError } from "../errors.ts";
import { readBodyText } from "./read_body.ts";

function streamed(chunks: string[], options: { endless?: boolean } = {}): Request {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      if (!options.endless) controller.close();
    },
  });
  return new Request(
    "https://piggy/mutate",
    { method: "POST", body, duplex: "half" } as RequestInit,
  );
}

test("readBodyText() reads a streamed body", async () => {
  assert.equal(await readBodyText(streamed(['{"a":', "1}"]), { limit: 100 }), '{"a":1}');
});

test("readBodyText() refuses a declared or streamed body over the limit", async () => {
  const declared = new Request("https://piggy/", {
    method: "POST",
    body: "x".repeat(20),
    headers: { "content-length": "20" },
  });
  await assert.rejects(readBodyText(declared, { limit: 10 }), PayloadTooLargeError);
  await assert.rejects(
    readBodyText(streamed(["x".repeat(6), "x".repeat(6)]), { limit: 10 }),
    PayloadTooLargeError,
  );
});

test("readBodyText() gives up on a client that stops sending", async () => {
  await assert.rejects(
    readBodyText(streamed(['{"partial":'], { endless: true }), { limit: 100, timeoutMs: 50 }),
    RequestTimeoutError,
  );
});

test("readBodyText() refuses a body that is not UTF-8", async () => {
  const request = new Request("https://piggy/", {
    method: "POST",
    body: new Uint8Array([0xff, 0xfe]),
  });
  await assert.rejects(readBodyText(request, { limit: 10 }), AdmissionDecodeError);
});

test("readBodyText() reads a body of a declared length, and an empty one", async () => {
  const text = '{"é":"€"}';
  const bytes = new TextEncoder().encode(text);
  const declared = new Request("https://piggy/", {
    method: "POST",
    body: bytes,
    headers: { "content-length": String(bytes.byteLength) },
  });
  assert.equal(await readBodyText(declared, { limit: 100 }), text);
  const empty = new Request("https://piggy/", {
    method: "POST",
    headers: { "content-length": "0" },
  });
  assert.equal(await readBodyText(empty, { limit: 100 }), "");
  assert.equal(
    await readBodyText(new Request("https://piggy/", { method: "POST" }), { limit: 1 }),
    "",
  );
});

test("readBodyText() gives up on a client that declares a length and stops sending", async () => {
  const request = streamed(['{"partial":'], { endless: true });
  request.headers.set("content-length", "40");
  await assert.rejects(readBodyText(request, { limit: 100, timeoutMs: 50 }), RequestTimeoutError);
});
