import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import { readFileSync, rmSync } from "node:fs";
import { Buffer } from "node:buffer";
import { createTestCa } from "./pki.ts";
import { API_AUDIENCE, type KubeApiStandIn, startKubeApi } from "./kube_api.ts";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  text: string;
}

interface CallOptions {
  method?: string;
  token?: string;
  body?: unknown;
  cert?: string;
  key?: string;
  ca?: string;
}

let api: KubeApiStandIn;

before(async () => {
  api = await startKubeApi();
});

after(async () => {
  await api.close();
});

function call(path: string, options: CallOptions = {}): Promise<Answer> {
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = { Accept: "application/json" };
  if (options.token !== undefined) headers.Authorization = `Bearer ${options.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return new Promise((resolve, reject) => {
    const req = https.request(`${api.url}${path}`, {
      method: options.method ?? (body === undefined ? "GET" : "POST"),
      headers,
      ca: options.ca ?? api.caCert,
      agent: false,
      ...(options.cert ? { cert: options.cert, key: options.key } : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown = undefined;
        try {
          parsed = JSON.parse(text);
        } catch {
          // plain-text body
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

function review(token: string, audiences?: string[]): Promise<Answer> {
  return call("/apis/authentication.k8s.io/v1/tokenreviews", {
    token: api.adminToken,
    body: {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      spec: { token, ...(audiences ? { audiences } : {}) },
    },
  });
}

function putPod(namespace: string, name: string, extra: Record<string, unknown> = {}) {
  return api.put("pods", {
    metadata: { namespace, name, ...extra },
    spec: { serviceAccountName: "app", nodeName: "node-1", containers: [] },
  });
}

test("startKubeApi() serves /version to the admin token", async () => {
  const answer = await call("/version", { token: api.adminToken });
  assert.equal(answer.status, 200);
  const info = answer.body as Record<string, string>;
  assert.equal(info.major, "1");
  assert.match(info.gitVersion ?? "", /^v1\.\d+/);
});

test("startKubeApi() answers 401 Status without credentials or with a wrong token", async () => {
  const expected = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: "Unauthorized",
    reason: "Unauthorized",
    code: 401,
  };
  const none = await call("/version");
  assert.equal(none.status, 401);
  assert.deepEqual(none.body, expected);
  const wrong = await call("/api/v1/namespaces/ns/configmaps/x", { token: "not-a-token" });
  assert.equal(wrong.status, 401);
  assert.deepEqual(wrong.body, expected);
});

test("startKubeApi() authenticates a client certificate from its CA and rejects others", async () => {
  const good = await call("/version", { cert: api.clientCert.cert, key: api.clientCert.key });
  assert.equal(good.status, 200);
  const last = api.requests.at(-1);
  assert.equal(last?.auth, "clientCert");
  assert.equal(last?.user, "kubernetes-admin");

  const other = createTestCa("kube-api-other");
  const stranger = other.issue("stranger", { clientAuth: true, cn: "kubernetes-admin" });
  rmSync(other.dir, { recursive: true, force: true });
  const bad = await call("/version", { cert: stranger.cert, key: stranger.key });
  assert.equal(bad.status, 401);
  assert.equal((bad.body as { reason?: string }).reason, "Unauthorized");
});

test("startKubeApi() returns stored objects with kind, apiVersion and uid", async () => {
  api.put("configmaps", { metadata: { namespace: "ns1", name: "settings" }, data: { a: "1" } });
  const answer = await call("/api/v1/namespaces/ns1/configmaps/settings", {
    token: api.adminToken,
  });
  assert.equal(answer.status, 200);
  const object = answer.body as {
    kind: string;
    apiVersion: string;
    metadata: { uid: string; name: string };
    data: Record<string, string>;
  };
  assert.equal(object.kind, "ConfigMap");
  assert.equal(object.apiVersion, "v1");
  assert.equal(object.metadata.name, "settings");
  assert.match(object.metadata.uid, /^[0-9a-f-]{36}$/);
  assert.deepEqual(object.data, { a: "1" });
});

test("startKubeApi() answers 404 NotFound Status exactly as kube-apiserver", async () => {
  const answer = await call("/api/v1/namespaces/ns1/configmaps/x", { token: api.adminToken });
  assert.equal(answer.status, 404);
  assert.deepEqual(answer.body, {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: 'configmaps "x" not found',
    reason: "NotFound",
    details: { name: "x", kind: "configmaps" },
    code: 404,
  });
});

test("startKubeApi() delete() removes an object", async () => {
  api.put("secrets", { metadata: { namespace: "ns1", name: "gone" }, data: {} });
  assert.equal(api.delete("secrets", "ns1", "gone"), true);
  assert.equal(api.delete("secrets", "ns1", "gone"), false);
  const answer = await call("/api/v1/namespaces/ns1/secrets/gone", { token: api.adminToken });
  assert.equal(answer.status, 404);
});

test("startKubeApi() decodes percent-encoded path segments", async () => {
  api.put("configmaps", { metadata: { namespace: "ns1", name: "a:b" }, data: {} });
  const answer = await call("/api/v1/namespaces/ns1/configmaps/a%3Ab", { token: api.adminToken });
  assert.equal(answer.status, 200);
  assert.equal(api.requests.at(-1)?.path, "/api/v1/namespaces/ns1/configmaps/a%3Ab");
});

test("startKubeApi() forbids service-account users everything but /version", async () => {
  const token = api.issueToken({ namespace: "ns1", serviceAccount: "app" });
  const version = await call("/version", { token });
  assert.equal(version.status, 200);
  assert.equal(api.requests.at(-1)?.user, "system:serviceaccount:ns1:app");

  const secret = await call("/api/v1/namespaces/ns1/secrets/db", { token });
  assert.equal(secret.status, 403);
  assert.deepEqual(secret.body, {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: 'secrets "db" is forbidden: User "system:serviceaccount:ns1:app" cannot get ' +
      'resource "secrets" in API group "" in the namespace "ns1"',
    reason: "Forbidden",
    details: { name: "db", kind: "secrets" },
    code: 403,
  });

  const reviewAnswer = await call("/apis/authentication.k8s.io/v1/tokenreviews", {
    token,
    body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } },
  });
  assert.equal(reviewAnswer.status, 403);
  assert.match(
    (reviewAnswer.body as { message: string }).message,
    /cannot create resource "tokenreviews" in API group "authentication.k8s.io"/,
  );
});

test("startKubeApi() token reviews a pod-bound token with the requested audience", async () => {
  const pod = putPod("ns2", "web-0");
  const token = api.issueToken({
    namespace: "ns2",
    serviceAccount: "app",
    podName: "web-0",
    audiences: ["piggy.test"],
  });
  const answer = await review(token, ["piggy.test", "other"]);
  assert.equal(answer.status, 201);
  const body = answer.body as {
    kind: string;
    spec: { token: string };
    status: {
      authenticated: boolean;
      audiences: string[];
      error?: string;
      user: {
        username: string;
        uid: string;
        groups: string[];
        extra: Record<string, string[]>;
      };
    };
  };
  assert.equal(body.kind, "TokenReview");
  assert.equal(body.spec.token, token);
  assert.equal(body.status.authenticated, true);
  assert.equal(body.status.error, undefined);
  assert.deepEqual(body.status.audiences, ["piggy.test"]);
  assert.equal(body.status.user.username, "system:serviceaccount:ns2:app");
  assert.deepEqual(body.status.user.groups, [
    "system:serviceaccounts",
    "system:serviceaccounts:ns2",
    "system:authenticated",
  ]);
  assert.deepEqual(body.status.user.extra["authentication.kubernetes.io/pod-name"], ["web-0"]);
  assert.deepEqual(body.status.user.extra["authentication.kubernetes.io/pod-uid"], [
    pod.metadata?.uid,
  ]);
  assert.deepEqual(body.status.user.extra["authentication.kubernetes.io/node-name"], ["node-1"]);
  assert.match(
    body.status.user.extra["authentication.kubernetes.io/credential-id"]?.[0] ?? "",
    /^JTI=/,
  );
});

test("startKubeApi() token review without audiences uses the API server audience", async () => {
  const apiToken = api.issueToken({ namespace: "ns2", serviceAccount: "app" });
  const ok = await review(apiToken);
  const okStatus = (ok.body as { status: { authenticated?: boolean; audiences?: string[] } })
    .status;
  assert.equal(okStatus.authenticated, true);
  assert.deepEqual(okStatus.audiences, [API_AUDIENCE]);

  const piggyToken = api.issueToken({
    namespace: "ns2",
    serviceAccount: "app",
    audiences: ["piggy.test"],
  });
  const rejected = await review(piggyToken);
  const status = (rejected.body as { status: { authenticated?: boolean; error?: string } }).status;
  assert.equal(status.authenticated, undefined);
  assert.match(status.error ?? "", /invalid bearer token, token audiences/);
  const wrongAudience = await review(apiToken, ["piggy.test"]);
  assert.equal(
    (wrongAudience.body as { status: { authenticated?: boolean } }).status.authenticated,
    undefined,
  );
});

test("startKubeApi() token review rejects expired, revoked, unknown and unbound-pod tokens", async () => {
  putPod("ns3", "api-0");
  const expired = api.issueToken({ namespace: "ns3", serviceAccount: "app", expired: true });
  const revoked = api.issueToken({ namespace: "ns3", serviceAccount: "app" });
  api.revokeToken(revoked);
  const bound = api.issueToken({ namespace: "ns3", serviceAccount: "app", podName: "api-0" });
  const cases: Array<[string, string, RegExp]> = [
    ["expired", expired, /expired/],
    ["revoked", revoked, /invalidated/],
    ["unknown", "abc.def.ghi", /invalid bearer token/],
  ];
  for (const [label, token, error] of cases) {
    const status = (await review(token)).body as {
      status: { authenticated?: boolean; error?: string };
    };
    assert.equal(status.status.authenticated, undefined, label);
    assert.match(status.status.error ?? "", error, label);
  }

  // The pod is recreated under the same name: the old token no longer matches its UID.
  putPod("ns3", "api-0", { uid: "11111111-2222-3333-4444-555555555555" });
  const recreated = (await review(bound)).body as { status: { error?: string } };
  assert.match(recreated.status.error ?? "", /does not match the UID/);

  api.delete("pods", "ns3", "api-0");
  const deleted = (await review(bound)).body as { status: { error?: string } };
  assert.match(deleted.status.error ?? "", /pods "api-0" not found/);
});

test("startKubeApi() keeps a pod-bound token valid for 60 s after deletionTimestamp", async () => {
  putPod("ns4", "job-0");
  const token = api.issueToken({ namespace: "ns4", serviceAccount: "app", podName: "job-0" });
  const uid = api.put("pods", {
    metadata: { namespace: "ns4", name: "job-0" },
  }).metadata?.uid;
  assert.ok(uid);
  const fresh = api.issueToken({ namespace: "ns4", serviceAccount: "app", podName: "job-0" });
  api.put("pods", {
    metadata: { namespace: "ns4", name: "job-0", uid, deletionTimestamp: new Date().toISOString() },
  });
  const graced = (await review(fresh)).body as { status: { authenticated?: boolean } };
  assert.equal(graced.status.authenticated, true);
  api.put("pods", {
    metadata: {
      namespace: "ns4",
      name: "job-0",
      uid,
      deletionTimestamp: new Date(Date.now() - 61_000).toISOString(),
    },
  });
  const late = (await review(fresh)).body as { status: { error?: string } };
  assert.match(late.status.error ?? "", /being deleted/);
  // The first token was bound to the pod's earlier incarnation.
  const stale = (await review(token)).body as { status: { authenticated?: boolean } };
  assert.equal(stale.status.authenticated, undefined);
});

test("startKubeApi() issueToken() needs the bound pod to exist", () => {
  assert.throws(
    () => api.issueToken({ namespace: "ns5", serviceAccount: "app", podName: "missing" }),
    TypeError,
  );
  assert.throws(
    () => api.issueToken({ namespace: "ns5", serviceAccount: "app", podUid: "x" }),
    TypeError,
  );
});

test("startKubeApi() rejects a TokenReview without a token with 400", async () => {
  const answer = await review("");
  assert.equal(answer.status, 400);
  assert.equal((answer.body as { reason: string }).reason, "BadRequest");
  assert.equal(
    (answer.body as { message: string }).message,
    "token is required for TokenReview in authentication",
  );
});

test("startKubeApi() failNext() injects failures for a target, a number of times", async () => {
  api.put("pods", { metadata: { namespace: "ns6", name: "p" } });
  api.failNext("pods", { status: 500, times: 2 });
  const path = "/api/v1/namespaces/ns6/pods/p";
  const first = await call(path, { token: api.adminToken });
  const second = await call(path, { token: api.adminToken });
  const third = await call(path, { token: api.adminToken });
  assert.deepEqual([first.status, second.status, third.status], [500, 500, 200]);
  assert.equal((first.body as { reason: string }).reason, "InternalError");
  assert.equal((first.body as { kind: string }).kind, "Status");

  api.failNext("configmaps", { status: 403, reason: "Forbidden", message: "nope" });
  const pod = await call(path, { token: api.adminToken });
  assert.equal(pod.status, 200, "a failure for configmaps does not hit pods");

  api.failNext("*", { status: 429 });
  const throttled = await call("/version", { token: api.adminToken });
  assert.equal(throttled.status, 429);
  assert.equal(throttled.headers["retry-after"], "1");
  assert.equal((throttled.body as { reason: string }).reason, "TooManyRequests");

  api.failNext("version", { status: 502, body: "<html>bad gateway</html>" });
  const gateway = await call("/version", { token: api.adminToken });
  assert.equal(gateway.status, 502);
  assert.equal(gateway.text, "<html>bad gateway</html>");

  const forbidden = await call("/api/v1/namespaces/ns6/configmaps/c", { token: api.adminToken });
  assert.equal(forbidden.status, 403);
  assert.equal((forbidden.body as { message: string }).message, "nope");
});

test("startKubeApi() answers unknown paths with 404 Status and wrong methods with 405", async () => {
  const unknown = await call("/apis/apps/v1/namespaces/ns/deployments/x", {
    token: api.adminToken,
  });
  assert.equal(unknown.status, 404);
  assert.equal((unknown.body as { kind: string }).kind, "Status");
  assert.equal(
    (unknown.body as { message: string }).message,
    "the server could not find the requested resource",
  );
  const post = await call("/api/v1/namespaces/ns/configmaps/x", {
    token: api.adminToken,
    body: {},
  });
  assert.equal(post.status, 405);
  assert.equal((post.body as { reason: string }).reason, "MethodNotAllowed");
});

test("startKubeApi() counts requests per target and never logs tokens", async () => {
  const before = { ...api.counts };
  const token = api.issueToken({ namespace: "ns7", serviceAccount: "app" });
  await call("/version", { token });
  await review(token);
  assert.equal(api.counts.version, before.version + 1);
  assert.equal(api.counts.tokenreviews, before.tokenreviews + 1);
  const log = JSON.stringify(api.requests);
  assert.equal(log.includes(token), false);
  assert.equal(log.includes(api.adminToken), false);
});

test("startKubeApi() writes a usable kubeconfig with inline or file certificates", () => {
  const inline = readFileSync(api.kubeconfigPath, "utf8");
  assert.match(inline, /certificate-authority-data/);
  assert.match(inline, new RegExp(api.url.replace(/[.]/g, "\\.")));
  const files = readFileSync(
    api.writeKubeconfig({ auth: "clientCert", certificates: "file" }),
    "utf8",
  );
  assert.match(files, /"certificate-authority": "ca.crt"/);
  assert.match(files, /"client-certificate": "client.crt"/);
});

test("startKubeApi() stop() refuses connections and restart() serves on the same port", async () => {
  const local = await startKubeApi({ ca: api.ca });
  try {
    const port = local.port;
    await local.stop();
    await assert.rejects(
      new Promise((resolve, reject) => {
        const req = https.request(`${local.url}/version`, { ca: local.caCert, agent: false });
        req.on("response", resolve);
        req.on("error", reject);
        req.end();
      }),
      (error: { code?: string }) => error.code === "ECONNREFUSED",
    );
    await local.restart();
    assert.equal(local.port, port);
    const answer = await new Promise<number>((resolve, reject) => {
      const req = https.request(`${local.url}/version`, {
        ca: local.caCert,
        agent: false,
        headers: { Authorization: `Bearer ${local.adminToken}` },
      }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(answer, 200);
  } finally {
    await local.close();
  }
});
