import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import {
  AnswerTooLargeError,
  osErrorCode,
  type PostAnswer,
  PostNetworkError,
  type PostRequest,
  postText,
} from "./http_post.ts";
import { postWithNodeHttp } from "./http_post_node.ts";

type Post = (request: PostRequest) => Promise<PostAnswer>;

/** Both implementations: Deno's client (this runtime) and node:http (Node, or TLS unverified). */
const IMPLEMENTATIONS: Array<[string, Post]> = [
  ["postText (Deno fetch)", postText],
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
