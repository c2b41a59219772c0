import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer as createHttpServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { after, before, test } from "node:test";
import { startConnectProxy, unusedProxyUrl } from "../../testing/connect_proxy.ts";
import { createTestCa, type TestCa } from "../../testing/pki.ts";
import { type PostAnswer, type PostRequest, requestText } from "./http_post.ts";
import { postWithNodeHttp } from "./http_post_node.ts";
import { connectRequest, proxyAuthorization, type ProxyRoute } from "./http_proxy.ts";

type Post = (request: PostRequest) => Promise<PostAnswer>;

/** Deno's client (Deno.connect + startTls; node:http under Node) and node:http(s) itself. */
const IMPLEMENTATIONS: Array<[string, Post]> = [
  ["requestText", requestText],
  ["postWithNodeHttp", postWithNodeHttp],
];

/** The name the HTTPS server's certificate is for: reached only through the proxy. */
const AWS_HOST = "secretsmanager.aws.piggy.test";

let ca: TestCa;
let secure: Server;
let plain: Server;
let securePort: number;
let plainPort: number;
const seen: Array<{ host: string | undefined; url: string | undefined; auth: unknown }> = [];

function record(request: IncomingMessage, response: import("node:http").ServerResponse) {
  seen.push({
    host: request.headers.host,
    url: request.url,
    auth: request.headers["proxy-authorization"],
  });
  response.writeHead(200, { "Content-Type": "application/json" });
  response.end('{"ok":true}');
}

before(async () => {
  ca = createTestCa("piggy-proxy");
  const leaf = ca.issue("aws", { serverNames: [AWS_HOST] });
  secure = createHttpsServer({ cert: leaf.cert, key: leaf.key }, record);
  plain = createHttpServer(record);
  for (const server of [secure, plain]) {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  }
  securePort = (secure.address() as AddressInfo).port;
  plainPort = (plain.address() as AddressInfo).port;
});

after(async () => {
  for (const server of [secure, plain]) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

function request(url: string, proxy: ProxyRoute | undefined, extra: Partial<PostRequest> = {}) {
  return {
    url: new URL(url),
    headers: { "Content-Type": "application/json" },
    body: "{}",
    ca: ca.cert,
    skipVerifyTls: false,
    maxBytes: 1024,
    signal: AbortSignal.timeout(10_000),
    proxy,
    ...extra,
  } satisfies PostRequest;
}

function route(proxy: { url: string } | string, userinfo = ""): ProxyRoute {
  const url = new URL(typeof proxy === "string" ? proxy : proxy.url);
  if (userinfo) {
    const [user = "", password = ""] = userinfo.split(":");
    url.username = user;
    url.password = password;
  }
  return { url, variable: "HTTPS_PROXY" };
}

async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  assert.fail("the request succeeded");
}

test("proxyAuthorization() is Basic of the percent-decoded user and password; none without", () => {
  const url = new URL("http://proxy:3128");
  assert.equal(proxyAuthorization({ url, variable: "HTTPS_PROXY" }), undefined);
  url.username = "d%C3%A9v";
  url.password = "p%40ss%3Aw";
  assert.equal(
    proxyAuthorization({ url, variable: "HTTPS_PROXY" }),
    `Basic ${Buffer.from("dév:p@ss:w").toString("base64")}`,
  );
  url.password = "bad%zz";
  assert.throws(() => proxyAuthorization({ url, variable: "HTTPS_PROXY" }), (error: Error) => {
    assert.equal(error.name, "ProxyError");
    assert.doesNotMatch(error.message, /bad|d%C3|dév/);
    return true;
  });
  assert.equal(
    new TextDecoder().decode(connectRequest(new URL(`https://${AWS_HOST}/`), undefined)),
    `CONNECT ${AWS_HOST}:443 HTTP/1.1\r\nHost: ${AWS_HOST}:443\r\n\r\n`,
  );
});

for (const [name, send] of IMPLEMENTATIONS) {
  test(`${name} tunnels https through CONNECT, TLS verified against the target host`, async () => {
    const proxy = await startConnectProxy({ auth: { user: "piggy", password: "p@ss" } });
    try {
      seen.length = 0;
      const answer = await send(
        request(`https://${AWS_HOST}:${securePort}/`, route(proxy, "piggy:p%40ss")),
      );
      assert.equal(answer.status, 200);
      assert.equal(answer.text, '{"ok":true}');
      assert.deepEqual(proxy.tunnels(), [`${AWS_HOST}:${securePort}`]);
      assert.equal(
        proxy.records[0]?.authorization,
        `Basic ${Buffer.from("piggy:p@ss").toString("base64")}`,
      );
      // The server saw the AWS host, and no proxy credentials inside the tunnel.
      assert.deepEqual(seen, [{ host: `${AWS_HOST}:${securePort}`, url: "/", auth: undefined }]);
      // A name the certificate is not for is refused although the proxy opened the tunnel.
      const wrongName = await rejection(
        send(request(`https://other.aws.piggy.test:${securePort}/`, route(proxy, "piggy:p%40ss"))),
      );
      assert.equal(wrongName.name, "PostNetworkError", String(wrongName));
      assert.equal(seen.length, 1);
    } finally {
      await proxy.close();
    }
  });

  test(`${name} sends http in absolute form to the proxy, with its credentials`, async () => {
    const proxy = await startConnectProxy({ auth: { user: "piggy", password: "pw" } });
    try {
      seen.length = 0;
      const url = `http://169.254.170.2:${plainPort}/v2/credentials?id=1`;
      const answer = await send(
        request(url, route(proxy, "piggy:pw"), { method: "GET", body: "" }),
      );
      assert.equal(answer.status, 200);
      assert.deepEqual(proxy.records.map((r) => [r.method, r.target]), [["GET", url]]);
      assert.deepEqual(seen, [{
        host: `169.254.170.2:${plainPort}`,
        url: "/v2/credentials?id=1",
        auth: undefined,
      }]);
      // A 407 from the proxy is its refusal, not the server's answer.
      const refused = await rejection(
        send(request(url, route(proxy, "piggy:wrong"), { method: "GET", body: "" })),
      );
      assert.equal(refused.name, "ProxyError");
      assert.equal(refused.retryable, false);
      assert.match(refused.message, /407 Proxy Authentication Required/);
      assert.doesNotMatch(refused.message, /wrong|piggy:/);
    } finally {
      await proxy.close();
    }
  });

  test(`${name} names the proxy and its variable when it refuses, never its credentials`, async () => {
    const proxy = await startConnectProxy({ auth: { user: "piggy", password: "right" } });
    try {
      const target = `https://${AWS_HOST}:${securePort}/`;
      const cases: Array<[number | undefined, string, boolean, RegExp]> = [
        [undefined, "piggy:s3cret-wrong", false, /407 Proxy Authentication Required/],
        [403, "piggy:right", false, /403 Forbidden/],
        [502, "piggy:right", true, /502 Bad Gateway/],
        [503, "piggy:right", true, /503/],
      ];
      for (const [refuse, userinfo, retryable, reason] of cases) {
        proxy.setRefuse(refuse);
        const error = await rejection(send(request(target, route(proxy, userinfo))));
        assert.equal(error.name, "ProxyError", String(error));
        assert.equal(error.retryable, retryable, error.message);
        assert.match(error.message, reason);
        assert.ok(
          error.message.includes(`the proxy "127.0.0.1:${proxy.port}" (HTTPS_PROXY) refused`),
          error.message,
        );
        assert.ok(error.message.includes(`"${AWS_HOST}:${securePort}"`), error.message);
        assert.doesNotMatch(error.message, /s3cret|right|piggy:/);
      }
      assert.deepEqual(proxy.tunnels(), []);
    } finally {
      await proxy.close();
    }
  });

  test(`${name} reports an unreachable proxy as retryable, naming it`, async () => {
    const unreachable = await unusedProxyUrl();
    const error = await rejection(
      send(request(`https://${AWS_HOST}:${securePort}/`, route(unreachable, "u:secret-pw"))),
    );
    assert.equal(error.name, "ProxyError", String(error));
    assert.equal(error.retryable, true);
    assert.equal(error.code, "ECONNREFUSED");
    assert.match(error.message, /^cannot connect to the proxy "127\.0\.0\.1:\d+" \(HTTPS_PROXY\)/);
    assert.doesNotMatch(error.message, /secret-pw/);
  });

  test(`${name} refuses a proxy answer that is not HTTP, too long, or bytes before the TLS hello`, async () => {
    const replies = [
      "SSH-2.0-OpenSSH\r\n\r\n",
      "HTTP/1.1 200 OK\r\n\r\nhello",
      // A head over the 16 KiB read for a CONNECT answer.
      `HTTP/1.1 200 OK\r\nX-Padding: ${"a".repeat(20_000)}\r\n\r\n`,
    ];
    for (const reply of replies) {
      const server = createNetServer((socket) => {
        socket.once("data", () => socket.write(reply));
        socket.on("error", () => {});
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      try {
        const proxy = route(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
        const error = await rejection(send(request(`https://${AWS_HOST}:${securePort}/`, proxy)));
        assert.equal(error.name, "ProxyError", String(error));
        assert.equal(error.retryable, false);
        assert.match(error.message, /gave no usable answer/);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    }
  });

  test(`${name} bounds the tunnel by the request's own signal`, async () => {
    // Never answers (but reads, so it sees the client close).
    const server = createNetServer((socket) => socket.on("error", () => {}).resume());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const proxy = route(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      const signal = AbortSignal.timeout(200);
      const error = await rejection(
        send(request(`https://${AWS_HOST}:${securePort}/`, proxy, { signal })),
      );
      assert.equal(error.name, "TimeoutError", String(error));
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
}
