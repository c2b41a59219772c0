/**
 * The HTTP/1.1 client's body reading (src/runtime/http1.ts) holds an answer that comes in many
 * small pieces in bounded memory: a separate process with a small heap reads answers up to the
 * default limit (1 MiB) sent in 1-byte chunks, or a byte per read with a Content-Length; so does
 * the `node:http` path (src/runtime/http_post_node.ts: Node, and Deno without TLS verification)
 * for 1-byte chunks from a real socket. Keeping each piece as its own array took ~200 bytes of
 * heap per byte of such an answer (the process ran out of memory).
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { test } from "node:test";

const HTTP1 = new URL("../src/runtime/http1.ts", import.meta.url).href;
const HTTP_POST_NODE = new URL("../src/runtime/http_post_node.ts", import.meta.url).href;

/** Runs `code` in a Deno process whose old generation is 48 MB. */
function runInSmallHeap(code: string) {
  return spawnSync(
    process.execPath,
    ["eval", "--no-config", "--v8-flags=--max-old-space-size=48", code],
    { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } },
  );
}

/** Reads, in a process with a 48 MB old generation, `pieces` bytes as the framing says. */
function readInSmallHeap(framing: "chunked" | "length", pieces: number) {
  const code = `
    import { exchange } from ${JSON.stringify(HTTP1)};
    const framing = ${JSON.stringify(framing)};
    const pieces = ${pieces};
    const encoder = new TextEncoder();
    const head = encoder.encode(framing === "chunked"
      ? "HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n"
      : \`HTTP/1.1 200 OK\\r\\nContent-Length: \${pieces}\\r\\n\\r\\n\`);
    // chunked: 4096 chunks of one byte per read; length: one byte per read.
    const unit = encoder.encode(framing === "chunked" ? "1\\r\\nx\\r\\n".repeat(4096) : "x");
    const reads = framing === "chunked" ? pieces / 4096 : pieces;
    const end = encoder.encode(framing === "chunked" ? "0\\r\\n\\r\\n" : "");
    let read = 0;
    let part = head;
    let offset = 0;
    const stream = {
      write: (data) => Promise.resolve(data.byteLength),
      read(buffer) {
        if (offset === part.byteLength) {
          read++;
          part = read <= reads ? unit : read === reads + 1 ? end : new Uint8Array(0);
          offset = 0;
        }
        const count = Math.min(buffer.byteLength, part.byteLength - offset);
        if (count === 0) return Promise.resolve(null);
        buffer.set(part.subarray(offset, offset + count));
        offset += count;
        return Promise.resolve(count);
      },
    };
    const answer = await exchange(stream, new Uint8Array(1), 1024 * 1024);
    console.log(answer.body.byteLength, answer.body.every((byte) => byte === 120));
  `;
  return runInSmallHeap(code);
}

test("exchange() reads 1 MiB sent in 1-byte chunks within a 48 MB heap", () => {
  const result = readInSmallHeap("chunked", 1024 * 1024);
  assert.equal(result.status, 0, result.stderr.slice(-2000));
  assert.equal(result.stdout.trim(), `${1024 * 1024} true`);
});

test("exchange() reads 512 KiB with a Content-Length, a byte per read, within a 48 MB heap", () => {
  const result = readInSmallHeap("length", 512 * 1024);
  assert.equal(result.status, 0, result.stderr.slice(-2000));
  assert.equal(result.stdout.trim(), `${512 * 1024} true`);
});

test("postWithNodeHttp() reads 1 MiB sent in 1-byte chunks within a 48 MB heap", () => {
  const result = runInSmallHeap(`
    import { createServer } from "node:net";
    import { postWithNodeHttp } from ${JSON.stringify(HTTP_POST_NODE)};
    const pieces = 1024 * 1024;
    const server = createServer((socket) => {
      socket.once("data", () => {
        socket.write("HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n");
        const unit = "1\\r\\nx\\r\\n".repeat(4096);
        let sent = 0;
        const pump = () => {
          while (sent < pieces / 4096) {
            sent++;
            if (!socket.write(unit)) return void socket.once("drain", pump);
          }
          socket.end("0\\r\\n\\r\\n");
        };
        pump();
      });
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    const answer = await postWithNodeHttp({
      url: new URL(\`http://127.0.0.1:\${server.address().port}/\`),
      headers: {},
      body: "",
      ca: "",
      skipVerifyTls: false,
      maxBytes: 1024 * 1024,
      signal: AbortSignal.timeout(60_000),
    });
    server.close();
    console.log(answer.text.length, /^x*$/.test(answer.text));
  `);
  assert.equal(result.status, 0, result.stderr.slice(-2000));
  assert.equal(result.stdout.trim(), `${1024 * 1024} true`);
});
