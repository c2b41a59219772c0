import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { createNodeListener, type NodeListenerOptions, type WebHandler } from "./http_adapter.ts";

interface Served {
  url: string;
  server: http.Server;
  close(): Promise<void>;
}

async function serve(handler: WebHandler, options: NodeListenerOptions = {}): Promise<Served> {
  const server = http.createServer(createNodeListener(handler, options));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    async close() {
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}

/** One request over a fresh, non-keep-alive connection; resolves with status, headers, body. */
function request(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    body?: string[];
    agent?: http.Agent;
  } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: options.method ?? "GET",
      headers: options.headers ?? {},
      agent: options.agent ?? false,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }));
      res.on("error", reject);
    });
    req.on("error", reject);
    for (const chunk of options.body ?? []) req.write(chunk);
    req.end();
  });
}

test("createNodeListener() passes method, path, query and headers to the handler", async () => {
  const seen: { method: string; url: URL; header: string | null }[] = [];
  const served = await serve((req) => {
    seen.push({ method: req.method, url: new URL(req.url), header: req.headers.get("x-test") });
    return Promise.resolve(new Response(null, { status: 204 }));
  });
  try {
    const answer = await request(`${served.url}/healthz?a=1&b=two`, {
      method: "DELETE",
      headers: { "X-Test": "value" },
    });
    assert.equal(answer.status, 204);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.method, "DELETE");
    assert.equal(seen[0]?.url.pathname, "/healthz");
    assert.equal(seen[0]?.url.searchParams.get("b"), "two");
    assert.equal(seen[0]?.url.protocol, "http:");
    assert.equal(seen[0]?.header, "value");
  } finally {
    await served.close();
  }
});

test("createNodeListener() streams a chunked request body to the handler", async () => {
  const served = await serve(async (req) => {
    const text = await req.text();
    return new Response(`${req.method} ${text.length} ${text}`, { status: 200 });
  });
  try {
    const answer = await request(`${served.url}/mutate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: ['{"a":', '"b"', "}"],
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'POST 9 {"a":"b"}');
  } finally {
    await served.close();
  }
});

test("createNodeListener() writes status, headers, repeated Set-Cookie and a streamed body", async () => {
  const served = await serve(() => {
    const parts = ["one ", "two ", "three"];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const part = parts.shift();
        if (part === undefined) controller.close();
        else controller.enqueue(new TextEncoder().encode(part));
      },
    });
    const headers = new Headers({ "content-type": "text/plain", "x-reply": "yes" });
    headers.append("set-cookie", "a=1");
    headers.append("set-cookie", "b=2");
    return Promise.resolve(new Response(body, { status: 418, headers }));
  });
  try {
    const answer = await request(`${served.url}/anything`);
    assert.equal(answer.status, 418);
    assert.equal(answer.headers["content-type"], "text/plain");
    assert.equal(answer.headers["x-reply"], "yes");
    assert.deepEqual(answer.headers["set-cookie"], ["a=1", "b=2"]);
    assert.equal(answer.body, "one two three");
  } finally {
    await served.close();
  }
});

test("createNodeListener() answers 500 and reports the error when the handler throws", async () => {
  const errors: unknown[] = [];
  const served = await serve(() => Promise.reject(new Error("boom")), {
    onError: (error) => errors.push(error),
  });
  try {
    const answer = await request(`${served.url}/x`);
    assert.equal(answer.status, 500);
    assert.equal(answer.body, "internal error");
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as Error).message, "boom");
  } finally {
    await served.close();
  }
});

test("createNodeListener() adds Connection: close while the server drains", async () => {
  let draining = false;
  const served = await serve(() => Promise.resolve(new Response("ok")), {
    closing: () => draining,
  });
  const agent = new http.Agent({ keepAlive: true });
  try {
    const before = await request(`${served.url}/`, { agent });
    assert.equal(before.headers.connection, "keep-alive");
    draining = true;
    const after = await request(`${served.url}/`, { agent });
    assert.equal(after.headers.connection, "close");
    assert.equal(after.body, "ok");
  } finally {
    agent.destroy();
    await served.close();
  }
});

test("createNodeListener() aborts the request signal when the client disconnects", {
  timeout: 10_000,
}, async () => {
  let started!: () => void;
  const handlerStarted = new Promise<void>((resolve) => (started = resolve));
  let aborted!: (reason: unknown) => void;
  const handlerAborted = new Promise<unknown>((resolve) => (aborted = resolve));
  const served = await serve((req) => {
    started();
    return new Promise((resolve) => {
      req.signal.addEventListener("abort", () => {
        aborted(req.signal.aborted);
        resolve(new Response("too late"));
      });
    });
  });
  try {
    const client = http.request(`${served.url}/slow`, { agent: false });
    client.on("error", () => {});
    client.end();
    await handlerStarted;
    client.destroy();
    assert.equal(await handlerAborted, true);
  } finally {
    await served.close();
  }
});
