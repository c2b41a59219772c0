import { test } from "node:test";
import assert from "node:assert/strict";
import { RequestFraming } from "./request_framing.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

/** Feeds `text` one byte at a time and in one piece; both must agree. */
function feed(text: string, options = {}) {
  const whole = new RequestFraming(options);
  const wholeResult = whole.push(bytes(text));
  const split = new RequestFraming(options);
  let completed = 0;
  let error;
  for (const byte of bytes(text)) {
    const result = split.push(Uint8Array.of(byte));
    completed += result.completed;
    error ??= result.error;
  }
  assert.equal(split.phase, whole.phase, "byte-wise and whole feeding agree on the phase");
  assert.equal(completed, wholeResult.completed, "byte-wise and whole feeding agree on requests");
  assert.deepEqual(error, wholeResult.error);
  return { phase: whole.phase, ...wholeResult };
}

test("RequestFraming follows requests through headers, bodies and keep-alive", () => {
  const cases: [string, string, number, string][] = [
    ["nothing", "", 0, "between"],
    ["half a request line", "GET /heal", 0, "headers"],
    ["headers without the empty line", "GET / HTTP/1.1\r\nHost: x\r\n", 0, "headers"],
    ["a GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, "between"],
    ["LF-only line ends", "GET / HTTP/1.1\nHost: x\n\n", 1, "between"],
    ["a leading empty line", "\r\nGET / HTTP/1.1\r\n\r\n", 1, "between"],
    ["a POST body still coming", "POST /s HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", 0, "body"],
    ["a POST", "POST /s HTTP/1.1\r\ncontent-length: 5\r\n\r\nabcde", 1, "between"],
    [
      "two pipelined POSTs and half a third",
      "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabPOST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nxGET",
      2,
      "headers",
    ],
    [
      "a chunked POST with extensions and trailers",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n",
      1,
      "between",
    ],
    [
      "chunked wins over Content-Length",
      "POST / HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
      1,
      "between",
    ],
    [
      "a chunked body in progress",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
      0,
      "body",
    ],
    ["repeated equal lengths", "POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nz", 1, "between"],
  ];
  for (const [label, text, completed, phase] of cases) {
    const result = feed(text);
    assert.equal(result.error, undefined, label);
    assert.equal(result.completed, completed, label);
    assert.equal(result.phase, phase, label);
  }
});

test("RequestFraming rejects what it cannot frame safely", () => {
  const cases: [string, string, number, RegExp][] = [
    ["an HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, /request line/],
    ["garbage", "\x16\x03\x01\x02\x00\r\n\r\n", 400, /request line/],
    [
      "conflicting lengths",
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      400,
      /Content-Length/,
    ],
    ["a negative length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, /Content-Length/],
    [
      "a coding other than chunked last",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      400,
      /chunked/,
    ],
    [
      "a space before the colon",
      "GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
      400,
      /header field/,
    ],
    [
      "a bad chunk size",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      400,
      /chunk size/,
    ],
    [
      "data overrunning its chunk",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n",
      400,
      /chunked/,
    ],
  ];
  for (const [label, text, status, message] of cases) {
    const result = feed(text);
    assert.equal(result.error?.status, status, label);
    assert.match(result.error?.message ?? "", message, label);
  }
});

test("RequestFraming answers 431 naming the setting when the header block is too large", () => {
  const result = feed(`GET / HTTP/1.1\r\nX: ${"a".repeat(200)}\r\n\r\n`, { maxHeaderBytes: 100 });
  assert.equal(result.error?.status, 431);
  assert.match(result.error?.message ?? "", /PIGGY_MAX_HEADER_BYTES \(100 bytes\)/);
  // A block just under the limit passes, and the count restarts for the next request.
  const framing = new RequestFraming({ maxHeaderBytes: 100 });
  const request = bytes(`GET / HTTP/1.1\r\nX: ${"a".repeat(70)}\r\n\r\n`);
  for (let i = 0; i < 5; i++) assert.equal(framing.push(request).completed, 1);
});

test("RequestFraming stays failed after an error", () => {
  const framing = new RequestFraming();
  assert.ok(framing.push(bytes("BAD\r\n\r\n")).error);
  const after = framing.push(bytes("GET / HTTP/1.1\r\n\r\n"));
  assert.equal(after.completed, 0);
  assert.ok(after.error);
});
