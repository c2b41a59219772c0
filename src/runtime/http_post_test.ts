import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer as createNetServer, type Socket } from "node:net";
import { test } from "node:test";
import { createTestCa } from "../../testing/pki.ts";
import {
  AnswerBodyError,
  AnswerTooLargeError,
  osErrorCode,
  type PostAnswer,
  PostNetworkError,
  type PostRequest,
  postText,
  requestText,
} from "./http_post.ts";
import { postWithNodeHttp } from "./http_post_node.ts";
import { exchange, HttpFormatError, MAX_HEAD_BYTES } from "./http1.ts";

type Post = (request: PostRequest) => Promise<PostAnswer>;

/** Both implementations: Deno's client (this runtime) and node:http (Node, or TLS unverified). */
const IMPLEMENTATIONS: Array<[string, Post]> = [
  ["requestText (Deno.connect)", requestText],
  ["postWithNodeHttp", postWithNodeHttp],
];

async function withServer(
  handler: (request: IncomingMessage, response: ServerResponse, body: string) => void,
  run: (url: URL) => Promise<void>,
): Promise<void> {
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => handler(request, response, Buffer.concat(chunks).toString("utf8")));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await run(new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/secret`));
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

function post(url: URL, extra: Partial<PostRequest> = {}): PostRequest {
  return {
    url,
    headers: { "Content-Type": "application/json", "X-Token": "t" },
    body: '{"a":"é"}',
    ca: "",
    skipVerifyTls: false,
    maxBytes: 1024,
    signal: new AbortController().signal,
    ...extra,
  };
}

test("osErrorCode() names the errno of a Deno client error", () => {
  assert.equal(
    osErrorCode("tcp connect error: Connection refused (os error 111)"),
    "ECONNREFUSED",
  );
  assert.equal(osErrorCode("connection reset (os error 104)"), "ECONNRESET");
  assert.equal(osErrorCode("os error 111"), undefined);
  assert.equal(osErrorCode("invalid peer certificate: UnknownIssuer"), undefined);
});

for (const [name, implementation] of IMPLEMENTATIONS) {
  test(`${name} POSTs the body with its headers and returns status and text`, async () => {
    await withServer((request, response, body) => {
      response.writeHead(418, { "Content-Type": "text/plain" });
      response.end(
        JSON.stringify({
          method: request.method,
          url: request.url,
          type: request.headers["content-type"],
          token: request.headers["x-token"],
          length: request.headers["content-length"],
          body,
        }),
      );
    }, async (url) => {
      const answer = await implementation(post(url));
      assert.equal(answer.status, 418);
      assert.deepEqual(JSON.parse(answer.text), {
        method: "POST",
        url: "/secret",
        type: "application/json",
        token: "t",
        length: "10",
        body: '{"a":"é"}',
      });
    });
  });

  test(`${name} GETs without a body and returns the answer's header fields`, async () => {
    await withServer((request, response, body) => {
      response.setHeader("X-Amzn-ErrorType", "Throttling");
      response.setHeader("X-Twice", ["a", "b"]);
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(JSON.stringify({
        method: request.method,
        url: request.url,
        length: request.headers["content-length"] ?? null,
        encoding: request.headers["transfer-encoding"] ?? null,
        authorization: request.headers.authorization,
        body,
      }));
    }, async (url) => {
      const answer = await implementation(
        post(new URL("/v1/credentials?x=1", url), {
          method: "GET",
          headers: { Authorization: "token" },
          body: "",
        }),
      );
      assert.equal(answer.status, 200);
      assert.deepEqual(JSON.parse(answer.text), {
        method: "GET",
        url: "/v1/credentials?x=1",
        length: null,
        encoding: null,
        authorization: "token",
        body: "",
      });
      assert.equal(answer.headers.get("x-amzn-errortype"), "Throttling");
      assert.equal(answer.headers.get("x-twice"), "a, b");
      assert.equal(answer.headers.get("content-type"), "application/json");
    });
  });

  test(`${name} does not follow a redirect`, async () => {
    await withServer((request, response) => {
      if (request.url === "/secret") {
        response.writeHead(307, { Location: "/elsewhere" });
        response.end("moved");
      } else {
        response.writeHead(200);
        response.end("followed");
      }
    }, async (url) => {
      const answer = await implementation(post(url));
      assert.equal(answer.status, 307);
      assert.equal(answer.text, "moved");
    });
  });

  test(`${name} refuses an answer larger than maxBytes`, async () => {
    await withServer((_, response) => {
      response.writeHead(200);
      response.end("x".repeat(5000));
    }, async (url) => {
      await assert.rejects(implementation(post(url)), AnswerTooLargeError);
    });
  });

  test(`${name} rejects with the signal's reason when aborted`, async () => {
    await withServer(() => {
      // never answers
    }, async (url) => {
      const controller = new AbortController();
      const reason = new Error("attempt timed out");
      setTimeout(() => controller.abort(reason), 100);
      await assert.rejects(implementation(post(url, { signal: controller.signal })), (error) => {
        assert.equal(error, reason);
        return true;
      });
    });
  });

  test(`${name} reports a refused connection as a network error with its code`, async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    await assert.rejects(
      implementation(post(new URL(`http://127.0.0.1:${port}/secret`))),
      (error: unknown) => {
        assert.ok(error instanceof PostNetworkError);
        assert.equal(error.code, "ECONNREFUSED");
        return true;
      },
    );
  });
}

/**
 * A raw TCP server: `answer` gets each connection and the request bytes received so far each time
 * more arrive (to write answers no HTTP server library would).
 */
async function withRawServer(
  answer: (socket: Socket, received: string) => void,
  run: (url: URL, requests: string[]) => Promise<void>,
): Promise<void> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      requests.push(received);
      answer(socket, received);
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await run(
      new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/secret`),
      requests,
    );
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Answers once the request's body (10 bytes) is in. */
function onceComplete(write: (socket: Socket) => void) {
  return (socket: Socket, received: string) => {
    if (received.endsWith('{"a":"é"}') || received.endsWith('{"a":"\xc3\xa9"}')) write(socket);
  };
}

for (const [name, implementation] of IMPLEMENTATIONS) {
  test(`${name} reads a chunked answer`, async () => {
    await withServer((_, response) => {
      response.writeHead(200, { "Content-Type": "application/json" });
      response.write('{"A":');
      setTimeout(() => response.end('"b"}'), 20);
    }, async (url) => {
      const answer = await implementation(post(url));
      assert.equal(answer.status, 200);
      assert.equal(answer.text, '{"A":"b"}');
    });
  });

  test(`${name} reads chunks with extensions, upper-case sizes and trailers`, async () => {
    const body = "x".repeat(0x1a) + "é".repeat(10);
    await withRawServer(
      onceComplete((socket) =>
        socket.end(
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
            "1A;name=value\r\n" + "x".repeat(0x1a) + "\r\n" +
            "14\r\n" + "é".repeat(10) + "\r\n" +
            "0\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n",
        )
      ),
      async (url) => {
        const answer = await implementation(post(url));
        assert.equal(answer.status, 200);
        assert.equal(answer.text, body);
      },
    );
  });

  test(`${name} reads a large chunked answer written a few bytes at a time`, async () => {
    // 40 KiB in chunks of 3000 bytes, sent in 7-byte writes: chunk-size lines, chunk data and
    // their CRLFs arrive split at every place, and the reader's buffer has to grow.
    const chunks: string[] = [];
    for (let i = 0; i < 40 * 1024; i += 3000) {
      chunks.push(String.fromCharCode(65 + (i / 3000) % 26).repeat(Math.min(3000, 40 * 1024 - i)));
    }
    let wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (const chunk of chunks) wire += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
    wire += "0\r\n\r\n";
    await withRawServer(
      onceComplete(async (socket) => {
        for (let i = 0; i < wire.length; i += 7 * 200) {
          for (let j = i; j < Math.min(wire.length, i + 7 * 200); j += 7) {
            socket.write(wire.slice(j, j + 7));
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
        socket.end();
      }),
      async (url) => {
        const answer = await implementation(post(url, { maxBytes: 64 * 1024 }));
        assert.equal(answer.status, 200);
        assert.equal(answer.text, chunks.join(""));
      },
    );
  });

  test(`${name} refuses a malformed chunked answer`, async () => {
    for (
      const wire of [
        "zz\r\nok\r\n0\r\n\r\n", // not a hex size
        "2\r\nokXY0\r\n\r\n", // no CRLF after the chunk data
        "-2\r\nok\r\n0\r\n\r\n", // negative size
      ]
    ) {
      await withRawServer(
        onceComplete((socket) =>
          socket.end(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${wire}`)
        ),
        async (url) => {
          await assert.rejects(
            implementation(post(url)),
            (error: unknown) =>
              error instanceof PostNetworkError || error instanceof AnswerBodyError,
            JSON.stringify(wire),
          );
        },
      );
    }
  });

  test(`${name} reports a chunked answer cut inside a chunk`, async () => {
    await withRawServer(
      onceComplete((socket) =>
        socket.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nonly-8by")
      ),
      async (url) => {
        await assert.rejects(implementation(post(url)), AnswerBodyError);
      },
    );
  });

  test(`${name} reads an answer without length up to the end of the connection`, async () => {
    await withRawServer(
      onceComplete((socket) => socket.end("HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nuntil the end")),
      async (url) => {
        const answer = await implementation(post(url));
        assert.equal(answer.status, 200);
        assert.equal(answer.text, "until the end");
        assert.equal(answer.headers.get("x-a"), "b");
      },
    );
  });

  test(`${name} skips an interim 100 answer`, async () => {
    await withRawServer(
      onceComplete((socket) =>
        socket.end(
          "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno",
        )
      ),
      async (url) => {
        const answer = await implementation(post(url));
        assert.deepEqual([answer.status, answer.text], [403, "no"]);
      },
    );
  });

  test(`${name} refuses a chunked answer larger than maxBytes`, async () => {
    await withServer((_, response) => {
      response.writeHead(200);
      for (let i = 0; i < 10; i++) response.write("y".repeat(500));
      response.end();
    }, async (url) => {
      await assert.rejects(implementation(post(url)), AnswerTooLargeError);
    });
  });

  test(`${name} reports an answer cut before its Content-Length`, async () => {
    await withRawServer(
      onceComplete((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"cut')),
      async (url) => {
        await assert.rejects(implementation(post(url)), AnswerBodyError);
      },
    );
  });

  test(`${name} reports an answer that is not HTTP as a network error`, async () => {
    await withRawServer(
      onceComplete((socket) => socket.end("SSH-2.0-OpenSSH\r\n\r\n")),
      async (url) => {
        await assert.rejects(implementation(post(url)), PostNetworkError);
      },
    );
  });

  test(`${name} refuses an answer framed by both Transfer-Encoding and Content-Length`, async () => {
    await withRawServer(
      onceComplete((socket) =>
        socket.end(
          "HTTP/1.1 200 OK\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n" +
            "2\r\nok\r\n0\r\n\r\n",
        )
      ),
      async (url) => {
        await assert.rejects(implementation(post(url)), PostNetworkError);
      },
    );
  });

  test(`${name} refuses an answer header whose value holds a bare CR or a NUL`, async () => {
    for (const value of ["a\rb", "a\0b", "a\x1bb"]) {
      await withRawServer(
        onceComplete((socket) =>
          socket.end(`HTTP/1.1 200 OK\r\nX-A: ${value}\r\nContent-Length: 2\r\n\r\nok`, "latin1")
        ),
        async (url) => {
          await assert.rejects(implementation(post(url)), PostNetworkError, JSON.stringify(value));
        },
      );
    }
  });

  test(`${name} reports a chunked answer cut inside its trailer section`, async () => {
    await withRawServer(
      onceComplete((socket) =>
        socket.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n")
      ),
      async (url) => {
        await assert.rejects(implementation(post(url)), AnswerBodyError);
      },
    );
  });

  test(`${name} refuses a header value with a line break and sends nothing`, async () => {
    await withRawServer(() => {}, async (url, requests) => {
      await assert.rejects(
        implementation(post(url, { headers: { "X-Token": "t\r\nX-Evil: 1" } })),
        TypeError,
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(requests, []);
    });
  });
}

test("postText over TLS trusts the given CA, verifies the server name and refuses other CAs", async () => {
  const ca = createTestCa("http-post");
  const other = createTestCa("http-post-other");
  const good = ca.issue("good", { serverNames: ["127.0.0.1"] });
  const misnamed = ca.issue("misnamed", { serverNames: ["other.example"] });
  for (const [leaf, expect] of [[good, "ok"], [misnamed, "name"]] as const) {
    const server = createHttpsServer({ cert: leaf.cert, key: leaf.key }, (_, response) => {
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end('{"K":"v"}');
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}/secret`);
    try {
      if (expect === "ok") {
        const answer = await postText(post(url, { ca: ca.cert }));
        assert.deepEqual([answer.status, answer.text], [200, '{"K":"v"}']);
        await assert.rejects(postText(post(url, { ca: other.cert })), PostNetworkError);
        await assert.rejects(postText(post(url)), PostNetworkError);
      } else {
        await assert.rejects(postText(post(url, { ca: ca.cert })), (error: unknown) => {
          assert.ok(error instanceof PostNetworkError);
          assert.match(error.message, /NotValidForName|not valid for|name/i);
          return true;
        });
      }
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }
});

test("postText reaches an IPv6 loopback address ([::1])", async (t) => {
  const server: Server = createServer((_, response) => response.end("six"));
  const listening = await new Promise<boolean>((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(0, "::1", () => resolve(true));
  });
  if (!listening) {
    t.skip("no IPv6 loopback here");
    return;
  }
  try {
    const url = new URL(`http://[::1]:${(server.address() as AddressInfo).port}/secret`);
    const answer = await postText(post(url));
    assert.deepEqual([answer.status, answer.text], [200, "six"]);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A stream that answers `text` to any request (in one read). */
function answering(text: string) {
  let bytes: Uint8Array | undefined = new TextEncoder().encode(text);
  return {
    read(buffer: Uint8Array) {
      if (bytes === undefined) return Promise.resolve(null);
      buffer.set(bytes);
      const count = bytes.byteLength;
      bytes = undefined;
      return Promise.resolve(count);
    },
    write: (data: Uint8Array) => Promise.resolve(data.byteLength),
  };
}

test("exchange() quotes at most a bounded part of a malformed header in its error", async () => {
  const junk = "x".repeat(5000);
  for (const field of [`Content-Length: ${junk}`, `Transfer-Encoding: ${junk}`]) {
    await assert.rejects(
      exchange(answering(`HTTP/1.1 200 OK\r\n${field}\r\n\r\nok`), new Uint8Array(1), 1024),
      (error: unknown) => {
        assert.ok(error instanceof HttpFormatError);
        assert.ok(error.message.length < 200, `${error.message.length} characters`);
        return true;
      },
    );
  }
});

test("exchange() reads a long head line sent a byte at a time in linear time", async () => {
  // A server (or a stall) feeding one byte per read: the search for the line end must not start
  // over from the line's beginning each time (quadratic: ~6 s of CPU for a 64 KiB line here).
  // Measured against the same bytes in short lines, which cost the same reads either way.
  const size = MAX_HEAD_BYTES - 200;
  const oneLine = `X-Long: ${"a".repeat(size - 10)}\r\n`;
  const shortLines = `X-Short: ${"a".repeat(52)}\r\n`.repeat(Math.floor(size / 63));
  const timeOf = async (fields: string) => {
    const bytes = new TextEncoder().encode(
      `HTTP/1.1 200 OK\r\n${fields}Content-Length: 2\r\n\r\nok`,
    );
    let at = 0;
    const stream = {
      read(buffer: Uint8Array) {
        if (at >= bytes.length) return Promise.resolve(null);
        buffer[0] = bytes[at++]!;
        return Promise.resolve(1);
      },
      write: (data: Uint8Array) => Promise.resolve(data.byteLength),
    };
    const started = performance.now();
    const answer = await exchange(stream, new Uint8Array(1), 1024);
    assert.equal(new TextDecoder().decode(answer.body), "ok");
    return performance.now() - started;
  };
  const short = await timeOf(shortLines);
  const long = await timeOf(oneLine);
  assert.ok(
    long < 5 * short + 500,
    `one line ${Math.round(long)} ms, short lines ${Math.round(short)} ms`,
  );
});
