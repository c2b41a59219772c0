import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { SecretSourceError } from "../errors.ts";
import {
  decodeSecretAnswer,
  isRetryableStatus,
  MAX_ANSWER_BYTES,
  type ProxyRequest,
  requestSecrets,
  secretUrl,
} from "./proxy.ts";

const urls: Array<[string, string]> = [
  ["https://piggy.piggy.svc", "https://piggy.piggy.svc/secret"],
  ["https://piggy.piggy.svc/", "https://piggy.piggy.svc/secret"],
  ["https://piggy.piggy.svc:8443//", "https://piggy.piggy.svc:8443/secret"],
  ["http://127.0.0.1:8080/prefix/", "http://127.0.0.1:8080/prefix/secret"],
  [" https://h ", "https://h/secret"],
];

for (const [address, expected] of urls) {
  test(`secretUrl() of ${JSON.stringify(address)} is ${expected}`, () => {
    assert.equal(secretUrl(address).href, expected);
  });
}

for (
  const address of ["", "piggy.svc", "ftp://h", "https://u:p@h", "https://h/?a=1", "https://h/#x"]
) {
  test(`secretUrl() rejects ${JSON.stringify(address)}`, () => {
    assert.throws(() => secretUrl(address), TypeError);
  });
}

test("isRetryableStatus() retries 408, 429 and 5xx only", () => {
  assert.deepEqual(
    [400, 401, 403, 404, 405, 408, 415, 429, 500, 502, 503].filter(isRetryableStatus),
    [408, 429, 500, 502, 503],
  );
});

test("decodeSecretAnswer() returns a flat string map", () => {
  assert.deepEqual(decodeSecretAnswer('{"A":"1","B":""}'), { A: "1", B: "" });
});

for (const body of ["not json", "[]", "null", '"x"', '{"A":1}', '{"A":{"B":"c"}}']) {
  test(`decodeSecretAnswer() rejects ${body} without quoting values`, () => {
    assert.throws(() => decodeSecretAnswer(body), (error: unknown) => {
      assert.ok(error instanceof SecretSourceError);
      assert.equal(error.retryable, false);
      assert.doesNotMatch(error.message, /\{/);
      return true;
    });
  });
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

async function withServer(
  handler: (request: IncomingMessage, response: ServerResponse, body: string) => void,
  run: (address: string, seen: Seen[]) => Promise<void>,
): Promise<void> {
  const seen: Seen[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Uint8Array[] = [];
    request.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    request.on("end", () => {
      const body = new TextDecoder().decode(
        chunks.reduce((all, chunk) => new Uint8Array([...all, ...chunk]), new Uint8Array()),
      );
      seen.push({
        method: request.method ?? "",
        url: request.url ?? "",
        headers: request.headers,
        body,
      });
      handler(request, response, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, seen);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

function request(address: string, extra: Partial<ProxyRequest> = {}): ProxyRequest {
  return {
    address,
    token: "token-abc",
    body: { resources: "pods", name: "app-1", uid: "u1", signature: "s".repeat(64) },
    ca: "",
    skipVerifyTls: false,
    timeoutMs: 5000,
    ...extra,
  };
}

test("requestSecrets() POSTs Go Piggy's request and returns the map", async () => {
  await withServer((_, response) => {
    response.writeHead(200, { "Content-Type": "application/json" });
    response.end('{"DB_PASS":"secret123"}');
  }, async (address, seen) => {
    const values = await requestSecrets(request(address));
    assert.deepEqual(values, { DB_PASS: "secret123" });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.method, "POST");
    assert.equal(seen[0]?.url, "/secret");
    assert.equal(seen[0]?.headers["content-type"], "application/json");
    assert.equal(seen[0]?.headers["x-token"], "token-abc");
    assert.equal(
      seen[0]?.body,
      `{"resources":"pods","name":"app-1","uid":"u1","signature":"${"s".repeat(64)}"}`,
    );
  });
});

const failures: Array<[number, string, RegExp, string, boolean]> = [
  [
    403,
    '{"error":"AccessDenied","message":"Service account not allowed"}',
    /403: Service account not allowed/,
    "AccessDenied",
    false,
  ],
  [400, "could not get secret: pod x not found", /400: could not get secret/, "HTTP400", false],
  [
    503,
    '{"error":"KubernetesUnavailable","message":"try later"}',
    /503: try later/,
    "KubernetesUnavailable",
    true,
  ],
  [429, "", /429: \(no message\)/, "HTTP429", true],
];

for (const [status, body, message, code, retryable] of failures) {
  test(`requestSecrets() turns a ${status} answer into a SecretSourceError (retryable: ${retryable})`, async () => {
    await withServer((_, response) => {
      response.writeHead(status);
      response.end(body);
    }, async (address) => {
      await assert.rejects(requestSecrets(request(address)), (error: unknown) => {
        assert.ok(error instanceof SecretSourceError);
        assert.match(error.message, message);
        assert.equal(error.code, code);
        assert.equal(error.retryable, retryable);
        return true;
      });
    });
  });
}

test("requestSecrets() bounds the error text it keeps", async () => {
  await withServer((_, response) => {
    response.writeHead(500);
    response.end("x".repeat(10_000));
  }, async (address) => {
    await assert.rejects(requestSecrets(request(address)), (error: unknown) => {
      assert.ok(error instanceof Error && error.message.length < 400);
      return true;
    });
  });
});

test("requestSecrets() refuses an answer larger than the limit", async () => {
  await withServer((_, response) => {
    response.writeHead(200);
    response.end(`{"A":"${"x".repeat(MAX_ANSWER_BYTES)}"}`);
  }, async (address) => {
    await assert.rejects(requestSecrets(request(address)), /larger than/);
  });
});

test("requestSecrets() gives up after the per-attempt timeout (retryable)", async () => {
  const pending: ServerResponse[] = [];
  await withServer((_, response) => {
    pending.push(response);
  }, async (address) => {
    await assert.rejects(requestSecrets(request(address, { timeoutMs: 200 })), (error: unknown) => {
      assert.ok(error instanceof SecretSourceError);
      assert.equal(error.code, "Timeout");
      assert.equal(error.retryable, true);
      return true;
    });
  });
  for (const response of pending) response.destroy();
});

test("requestSecrets() reports a refused connection as retryable", async () => {
  let closedAddress = "";
  await withServer(() => {}, (address) => {
    closedAddress = address;
    return Promise.resolve();
  });
  await assert.rejects(requestSecrets(request(closedAddress)), (error: unknown) => {
    assert.ok(error instanceof SecretSourceError);
    assert.equal(error.retryable, true);
    assert.match(error.message, /Cannot reach the webhook/);
    return true;
  });
});
