/**
 * piggy-env's standalone mode through an egress proxy, as real processes on loopback: the
 * bundled launcher (`gen/piggy_env.js`) reads AWS over HTTPS (the stand-in behind TLS, trusted
 * through `DENO_CERT`) through `HTTPS_PROXY` (the CONNECT proxy stand-in, testing/connect_proxy.ts),
 * the proxy sees exactly the tunnels to the AWS hosts, `NO_PROXY` sends hosts direct (exact name,
 * suffix, `*`), and a proxy that refuses or cannot be reached fails the start with a message
 * naming it and its variable, never its credentials, before the app starts.
 *
 * The AWS endpoints are names under `.piggy.test`: loopback addresses are never proxied, so the
 * endpoints must look remote. The proxy stand-in connects every tunnel to 127.0.0.1, and a preload
 * (testing/test_hosts_preload.ts) resolves those names to 127.0.0.1 for the requests `NO_PROXY`
 * sends direct; nothing leaves the machine.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type AwsStandIn, startAwsStandIn } from "../testing/aws.ts";
import { type ConnectProxy, startConnectProxy, unusedProxyUrl } from "../testing/connect_proxy.ts";
import { FETCH_READ_EXIT_CODE } from "../testing/no_fetch_preload.ts";
import { createTestCa, type TestCa } from "../testing/pki.ts";
import {
  ensureStandaloneBundle,
  LAUNCHER_BUNDLE,
  type LauncherResult,
  parseReport,
  REPORT_APP,
  ROOT,
  runLauncher,
} from "../testing/launcher_process.ts";

const STS_HOST = "sts.aws.piggy.test";
const SECRETS_HOST = "secretsmanager.aws.piggy.test";
const CREDENTIALS_HOST = "pod-identity.aws.piggy.test";
const USER = "piggy";
const PASSWORD = "pr0xy-p@ss";

const PRELOADS = [
  "--preload",
  join(ROOT, "testing", "test_hosts_preload.ts"),
  "--preload",
  join(ROOT, "testing", "no_fetch_preload.ts"),
];

let ca: TestCa;
let aws: AwsStandIn;
let proxy: ConnectProxy;
let port: number;

before(async () => {
  await ensureStandaloneBundle();
  ca = createTestCa("piggy-aws-proxy");
  const leaf = ca.issue("aws", { serverNames: [STS_HOST, SECRETS_HOST, CREDENTIALS_HOST] });
  aws = await startAwsStandIn({ tls: { cert: leaf.cert, key: leaf.key } });
  aws.putSecret("proxied/app", { string: JSON.stringify({ DB_PASS: "through-the-proxy" }) });
  port = Number(new URL(aws.url).port);
  proxy = await startConnectProxy({ auth: { user: USER, password: PASSWORD } });
});

after(async () => {
  await proxy?.close();
  await aws?.close();
  if (ca) rmSync(ca.dir, { recursive: true, force: true });
});

/** The proxy URL with the user and password, percent-encoded as a proxy URL carries them. */
function proxyUrl(password = PASSWORD): string {
  return `http://${USER}:${encodeURIComponent(password)}@127.0.0.1:${proxy.port}`;
}

function env(
  extra: Record<string, string | undefined> = {},
  credentials: "web-identity" | "container" = "web-identity",
): Record<string, string | undefined> {
  const vars: Record<string, string | undefined> = {
    ...aws.env({ credentials, region: null, perService: true }),
    AWS_ENDPOINT_URL_STS: `https://${STS_HOST}:${port}`,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: `https://${SECRETS_HOST}:${port}`,
    DENO_CERT: ca.certFile,
    HTTPS_PROXY: proxyUrl(),
    PIGGY_STANDALONE: "true",
    PIGGY_AWS_REGION: "eu-west-1",
    PIGGY_AWS_SECRET_NAME: "proxied/app",
    PIGGY_DEBUG: "true",
    PIGGY_NUMBER_OF_RETRY: "1",
    DB_PASS: "piggy:DB_PASS",
  };
  if (credentials === "container") {
    vars.AWS_CONTAINER_CREDENTIALS_FULL_URI =
      `https://${CREDENTIALS_HOST}:${port}/container-credentials/v1/credentials`;
  }
  return { ...vars, ...extra };
}

function launch(vars: Record<string, string | undefined>): Promise<LauncherResult> {
  proxy.reset();
  aws.resetCounters();
  return runLauncher({
    args: ["--", REPORT_APP],
    env: vars,
    entry: LAUNCHER_BUNDLE,
    denoFlags: PRELOADS,
  });
}

function dbPass(result: LauncherResult): string | undefined {
  assert.notEqual(result.code, FETCH_READ_EXIT_CODE, result.stderr);
  assert.equal(result.code, 0, result.stderr);
  return new Map(parseReport(result.stdout).env).get("DB_PASS");
}

/** Nothing of the proxy's credentials in the launcher's output, in any encoding. */
function assertNoCredentials(result: LauncherResult): void {
  for (const text of [result.stderr, result.stdout]) {
    for (
      const secret of [
        PASSWORD,
        encodeURIComponent(PASSWORD),
        Buffer.from(`${USER}:${PASSWORD}`).toString("base64"),
        `${USER}:`,
      ]
    ) {
      assert.ok(!text.includes(secret), `the output holds ${JSON.stringify(secret)}`);
    }
  }
}

test("standalone through HTTPS_PROXY: STS and Secrets Manager each through one CONNECT tunnel", async () => {
  const result = await launch(env());
  assert.equal(dbPass(result), "through-the-proxy");
  assert.deepEqual(proxy.tunnels(), [`${STS_HOST}:${port}`, `${SECRETS_HOST}:${port}`]);
  const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`;
  assert.deepEqual(proxy.records.map((r) => r.authorization), [basic, basic]);
  assert.equal(aws.count("AssumeRoleWithWebIdentity"), 1);
  assert.equal(aws.count("GetSecretValue"), 1);
  const choice = result.logs.find((line) => line.message === "AWS client chosen");
  assert.equal(
    choice?.aws_client,
    "light",
    "a proxy variable no longer sends the launcher to the SDK",
  );
  assert.equal(choice?.proxy_variables, "HTTPS_PROXY");
  assertNoCredentials(result);
});

test("standalone through HTTPS_PROXY: EKS Pod Identity credentials from an https: URI, tunnelled too", async () => {
  const result = await launch(env({}, "container"));
  assert.equal(dbPass(result), "through-the-proxy");
  assert.deepEqual(proxy.tunnels(), [`${CREDENTIALS_HOST}:${port}`, `${SECRETS_HOST}:${port}`]);
  assert.equal(aws.count("ContainerCredentials"), 1);
});

test("NO_PROXY sends hosts direct: an exact name, a suffix with or without a dot, and *", async () => {
  const cases: Array<[Record<string, string>, string[]]> = [
    [{ NO_PROXY: SECRETS_HOST }, [`${STS_HOST}:${port}`]],
    [{ no_proxy: `other.example, ${STS_HOST}:${port}` }, [`${SECRETS_HOST}:${port}`]],
    [{ NO_PROXY: ".aws.piggy.test" }, []],
    [{ NO_PROXY: "piggy.test" }, []],
    [{ NO_PROXY: "*" }, []],
    // A port that is not the request's leaves the host proxied.
    [{ NO_PROXY: `${SECRETS_HOST}:443` }, [`${STS_HOST}:${port}`, `${SECRETS_HOST}:${port}`]],
  ];
  for (const [extra, tunnels] of cases) {
    const result = await launch(env(extra));
    assert.equal(dbPass(result), "through-the-proxy", JSON.stringify(extra));
    assert.deepEqual(proxy.tunnels(), tunnels, JSON.stringify(extra));
    assert.equal(aws.count("GetSecretValue"), 1);
  }
});

/** The launcher's error lines. */
function errors(result: LauncherResult): string {
  return result.logs.filter((line) => line.level === "error").map((line) => line.message).join(
    "\n",
  );
}

test("a proxy that refuses the credentials fails the start, once, naming it and HTTPS_PROXY only", async () => {
  const result = await launch(env({ HTTPS_PROXY: proxyUrl("wrong-s3cret") }));
  assert.equal(result.code, 1, result.stderr);
  assert.equal(result.stdout, "", "the app did not start");
  const text = errors(result);
  assert.ok(
    text.includes(
      `the proxy "127.0.0.1:${proxy.port}" (HTTPS_PROXY) refused the tunnel to "${STS_HOST}:${port}"`,
    ),
    text,
  );
  assert.match(text, /407 Proxy Authentication Required/);
  // Not retryable: one CONNECT, by neither the AWS client nor the launcher retried.
  assert.deepEqual(proxy.records.map((r) => r.status), [407]);
  assert.deepEqual(aws.requests, []);
  assert.doesNotMatch(result.stderr, /wrong-s3cret|wrong-s3cret|d3Jvbmct/);
  assertNoCredentials(result);
});

test("a proxy that forbids the host, or cannot be reached, fails the start with a clear line", async () => {
  proxy.setRefuse(403);
  try {
    const forbidden = await launch(env());
    assert.equal(forbidden.code, 1, forbidden.stderr);
    assert.equal(forbidden.stdout, "");
    assert.match(errors(forbidden), /\(HTTPS_PROXY\) refused the tunnel to .*: 403 Forbidden/);
    assert.equal(proxy.records.length, 1, "403 is not retried");
    assertNoCredentials(forbidden);
  } finally {
    proxy.setRefuse(undefined);
  }
  const gone = await unusedProxyUrl();
  const unreachable = await launch(
    env({ HTTPS_PROXY: gone.replace("http://", `http://${USER}:${PASSWORD}@`) }),
  );
  assert.equal(unreachable.code, 1, unreachable.stderr);
  assert.equal(unreachable.stdout, "");
  assert.ok(
    errors(unreachable).includes(
      `cannot connect to the proxy "${new URL(gone).host}" (HTTPS_PROXY)`,
    ),
    unreachable.stderr,
  );
  assert.deepEqual(aws.requests, []);
  assertNoCredentials(unreachable);
});

test("an https:// proxy is refused before any connection, naming the variable", async () => {
  const result = await launch(
    env({ https_proxy: proxyUrl().replace("http:", "https:"), HTTPS_PROXY: undefined }),
  );
  assert.equal(result.code, 1, result.stderr);
  assert.match(errors(result), /the proxy in https_proxy cannot be used: TLS to the proxy/);
  assert.deepEqual(proxy.records, []);
  assert.deepEqual(aws.requests, []);
  assertNoCredentials(result);
});
