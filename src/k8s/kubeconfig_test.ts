import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  inClusterConfig,
  loadKubeConfig,
  parseKubeConfig,
  SERVICE_ACCOUNT_DIR,
} from "./kubeconfig.ts";

const CA = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
const OTHER_CA = "-----BEGIN CERTIFICATE-----\nOTHER\n-----END CERTIFICATE-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN EC PRIVATE KEY-----\nKEY\n-----END EC PRIVATE KEY-----\n";

function b64(text: string): string {
  return Buffer.from(text).toString("base64");
}

/** A file reader over a map; missing files throw like node:fs (ENOENT). */
function files(entries: Record<string, string>): (path: string) => string {
  return (path) => {
    const text = entries[path];
    if (text === undefined) {
      throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), {
        code: "ENOENT",
      });
    }
    return text;
  };
}

function env(entries: Record<string, string>): (name: string) => string | undefined {
  return (name) => entries[name];
}

/** A kind-style kubeconfig with two contexts. */
function kubeconfig(overrides: { user?: string; cluster?: string; current?: string } = {}) {
  return `
apiVersion: v1
kind: Config
current-context: ${overrides.current ?? "kind-piggy"}
clusters:
- name: kind-piggy
  cluster:
${
    overrides.cluster ??
      `    server: https://127.0.0.1:6443/\n    certificate-authority-data: ${b64(CA)}`
  }
- name: staging
  cluster:
    server: https://staging.example:443
    certificate-authority: certs/staging-ca.crt
contexts:
- name: kind-piggy
  context:
    cluster: kind-piggy
    user: kind-piggy
- name: staging
  context:
    cluster: staging
    user: staging-user
    namespace: piggy-system
users:
- name: kind-piggy
  user:
${
    overrides.user ??
      `    client-certificate-data: ${b64(CERT)}\n    client-key-data: ${b64(KEY)}`
  }
- name: staging-user
  user:
    tokenFile: tokens/staging
`;
}

const PATH = "/home/dev/.kube/config";
const FILES = {
  "/home/dev/.kube/certs/staging-ca.crt": OTHER_CA,
  "/home/dev/.kube/tokens/staging": "staging-token\n",
  "/etc/piggy/ca.crt": CA,
  "/etc/piggy/client.crt": CERT,
  "/etc/piggy/client.key": KEY,
};

test("parseKubeConfig() resolves the current context with inline client certificates", () => {
  const config = parseKubeConfig(kubeconfig(), { path: PATH, readFile: files(FILES) });
  assert.equal(config.server, "https://127.0.0.1:6443");
  assert.equal(config.caCert, CA);
  assert.equal(config.clientCert, CERT);
  assert.equal(config.clientKey, KEY);
  assert.equal(config.token, undefined);
  assert.equal(config.insecureSkipTlsVerify, false);
  assert.equal(config.context, "kind-piggy");
  assert.equal(config.source, "kubeconfig");
  assert.equal(config.location, PATH);
  assert.deepEqual(config.warnings, []);
});

test("parseKubeConfig() uses the context option and resolves paths against the file's dir", () => {
  const config = parseKubeConfig(kubeconfig(), {
    path: PATH,
    readFile: files(FILES),
    context: "staging",
  });
  assert.equal(config.server, "https://staging.example:443");
  assert.equal(config.caCert, OTHER_CA);
  assert.equal(config.tokenFile, "/home/dev/.kube/tokens/staging");
  assert.equal(config.namespace, "piggy-system");
  assert.equal(config.clientCert, undefined);
});

test("parseKubeConfig() reads absolute certificate and key files", () => {
  const text = kubeconfig({
    cluster: "    server: https://127.0.0.1:6443\n    certificate-authority: /etc/piggy/ca.crt",
    user: "    client-certificate: /etc/piggy/client.crt\n    client-key: /etc/piggy/client.key",
  });
  const config = parseKubeConfig(text, { path: PATH, readFile: files(FILES) });
  assert.equal(config.caCert, CA);
  assert.equal(config.clientCert, CERT);
  assert.equal(config.clientKey, KEY);
});

test("parseKubeConfig() prefers *-data over a file and warns", () => {
  const text = kubeconfig({
    cluster: `    server: https://h:1\n    certificate-authority-data: ${b64(CA)}\n` +
      "    certificate-authority: /etc/piggy/missing.crt",
  });
  const config = parseKubeConfig(text, { path: PATH, readFile: files(FILES) });
  assert.equal(config.caCert, CA);
  assert.equal(config.warnings.length, 1);
  assert.match(config.warnings[0] ?? "", /certificate-authority-data wins/);
});

test("parseKubeConfig() reads a static token and lets tokenFile win over it", () => {
  const token = parseKubeConfig(kubeconfig({ user: "    token: abc123" }), {
    path: PATH,
    readFile: files(FILES),
  });
  assert.equal(token.token, "abc123");
  assert.equal(token.tokenFile, undefined);
  const both = parseKubeConfig(
    kubeconfig({ user: "    token: abc123\n    tokenFile: /home/dev/.kube/tokens/staging" }),
    { path: PATH, readFile: files(FILES) },
  );
  assert.equal(both.tokenFile, "/home/dev/.kube/tokens/staging");
});

test("parseKubeConfig() honours insecure-skip-tls-verify with a warning", () => {
  const config = parseKubeConfig(
    kubeconfig({ cluster: "    server: https://h:1\n    insecure-skip-tls-verify: true" }),
    { path: PATH, readFile: files(FILES) },
  );
  assert.equal(config.insecureSkipTlsVerify, true);
  assert.equal(config.caCert, undefined);
  assert.match(config.warnings.join("\n"), /insecure-skip-tls-verify/);
});

test("parseKubeConfig() warns about plain HTTP, proxy-url and tls-server-name is kept", () => {
  const config = parseKubeConfig(
    kubeconfig({
      cluster: "    server: http://127.0.0.1:8001\n    proxy-url: http://proxy:3128\n" +
        "    tls-server-name: kubernetes",
    }),
    { path: PATH, readFile: files(FILES) },
  );
  assert.equal(config.server, "http://127.0.0.1:8001");
  assert.equal(config.tlsServerName, "kubernetes");
  assert.match(config.warnings.join("\n"), /plain HTTP/);
  assert.match(config.warnings.join("\n"), /proxy-url is ignored/);
});

test("parseKubeConfig() rejects bad files with clear errors", () => {
  const cases: Array<[string, string, ErrorConstructor, RegExp]> = [
    ["no current-context", kubeconfig({ current: '""' }), TypeError, /current-context is not set/],
    [
      "unknown context",
      kubeconfig({ current: "nope" }),
      TypeError,
      /context "nope" is not defined/,
    ],
    [
      "exec with an unknown apiVersion",
      kubeconfig({ user: "    exec:\n      command: aws\n      apiVersion: v1" }),
      TypeError,
      /exec apiVersion "v1" is not supported: use client\.authentication\.k8s\.io\/v1 or/,
    ],
    [
      "exec that needs a terminal",
      kubeconfig({
        user: "    exec:\n      command: kubelogin\n      apiVersion: " +
          "client.authentication.k8s.io/v1\n      interactiveMode: Always",
      }),
      TypeError,
      /interactiveMode "Always"/,
    ],
    [
      "exec with a token",
      kubeconfig({
        user: "    token: t\n    exec:\n      command: aws\n      apiVersion: " +
          "client.authentication.k8s.io/v1",
      }),
      TypeError,
      /sets exec and token: use one/,
    ],
    [
      "auth-provider",
      kubeconfig({ user: "    auth-provider:\n      name: oidc" }),
      TypeError,
      /uses "auth-provider"/,
    ],
    [
      "basic auth",
      kubeconfig({ user: "    username: a\n    password: b" }),
      TypeError,
      /"username", "password"/,
    ],
    [
      "impersonation",
      kubeconfig({ user: "    token: t\n    as: admin" }),
      TypeError,
      /uses "as"/,
    ],
    [
      "no server",
      kubeconfig({ cluster: "    insecure-skip-tls-verify: true" }),
      TypeError,
      /no server/,
    ],
    [
      "bad scheme",
      kubeconfig({ cluster: "    server: ftp://h" }),
      TypeError,
      /must use https/,
    ],
    [
      "certificate without key",
      kubeconfig({ user: `    client-certificate-data: ${b64(CERT)}` }),
      TypeError,
      /both a client certificate and a client key/,
    ],
    [
      "CA that is not PEM",
      kubeconfig({
        cluster: `    server: https://h\n    certificate-authority-data: ${b64("junk")}`,
      }),
      TypeError,
      /not PEM/,
    ],
    [
      "CA and insecure",
      kubeconfig({
        cluster: `    server: https://h\n    certificate-authority-data: ${b64(CA)}\n` +
          "    insecure-skip-tls-verify: true",
      }),
      TypeError,
      /both a certificate authority and insecure-skip-tls-verify/,
    ],
    ["not YAML", "clusters: [\n", SyntaxError, /Cannot parse kubeconfig/],
    ["empty", "", TypeError, /empty or not a map/],
  ];
  for (const [label, text, type, message] of cases) {
    assert.throws(
      () => parseKubeConfig(text, { path: PATH, readFile: files(FILES) }),
      (error: Error) => {
        assert.ok(error instanceof type, `${label}: ${error.name}`);
        assert.match(error.message, message, label);
        assert.match(error.message, /kubeconfig "\/home\/dev\/\.kube\/config"/, label);
        return true;
      },
    );
  }
});

test("parseKubeConfig() reports a missing referenced file with its resolved path", () => {
  const text = kubeconfig({ cluster: "    server: https://h\n    certificate-authority: ca.pem" });
  assert.throws(
    () => parseKubeConfig(text, { path: PATH, readFile: files(FILES) }),
    /Cannot read certificate-authority "\/home\/dev\/\.kube\/ca\.pem"/,
  );
});

test("parseKubeConfig() never puts a token in error messages", () => {
  const text = kubeconfig({ user: "    token: s3cr3t-token\n    exec:\n      command: x" });
  assert.throws(
    () => parseKubeConfig(text, { path: PATH, readFile: files(FILES) }),
    (error: Error) => !error.message.includes("s3cr3t-token"),
  );
});

const SA_DIR = "/sa";
const IN_CLUSTER_FILES = {
  "/sa/token": "pod-token\n",
  "/sa/ca.crt": CA,
  "/sa/namespace": "piggy-system\n",
};
const IN_CLUSTER_ENV = { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" };

test("inClusterConfig() uses the service host, the mounted CA and the token file", () => {
  const config = inClusterConfig(env(IN_CLUSTER_ENV), files(IN_CLUSTER_FILES), {
    serviceAccountDir: SA_DIR,
  });
  assert.equal(config.server, "https://10.96.0.1:443");
  assert.equal(config.caCert, CA);
  assert.equal(config.tokenFile, "/sa/token");
  assert.equal(config.token, undefined, "the token is re-read by the client, not stored");
  assert.equal(config.namespace, "piggy-system");
  assert.equal(config.source, "in-cluster");
});

test("inClusterConfig() brackets an IPv6 service host", () => {
  const config = inClusterConfig(
    env({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }),
    files(IN_CLUSTER_FILES),
    { serviceAccountDir: SA_DIR },
  );
  assert.equal(config.server, "https://[fd00::1]:443");
});

test("inClusterConfig() fails clearly without port, token or CA", () => {
  assert.throws(
    () =>
      inClusterConfig(env({ KUBERNETES_SERVICE_HOST: "h" }), files(IN_CLUSTER_FILES), {
        serviceAccountDir: SA_DIR,
      }),
    /KUBERNETES_SERVICE_PORT must both be set/,
  );
  const { "/sa/token": _token, ...noToken } = IN_CLUSTER_FILES;
  assert.throws(
    () => inClusterConfig(env(IN_CLUSTER_ENV), files(noToken), { serviceAccountDir: SA_DIR }),
    /Cannot read the service account token "\/sa\/token"/,
  );
  assert.throws(
    () =>
      inClusterConfig(env(IN_CLUSTER_ENV), files({ ...IN_CLUSTER_FILES, "/sa/token": " \n" }), {
        serviceAccountDir: SA_DIR,
      }),
    /Cannot read the service account token/,
  );
  const { "/sa/ca.crt": _ca, ...noCa } = IN_CLUSTER_FILES;
  assert.throws(
    () => inClusterConfig(env(IN_CLUSTER_ENV), files(noCa), { serviceAccountDir: SA_DIR }),
    /Cannot read the service account CA "\/sa\/ca\.crt"/,
  );
});

test("inClusterConfig() defaults to the standard service-account directory", () => {
  const config = inClusterConfig(
    env(IN_CLUSTER_ENV),
    files({ [`${SERVICE_ACCOUNT_DIR}/token`]: "t", [`${SERVICE_ACCOUNT_DIR}/ca.crt`]: CA }),
  );
  assert.equal(config.tokenFile, `${SERVICE_ACCOUNT_DIR}/token`);
  assert.equal(config.namespace, undefined);
});

test("loadKubeConfig() prefers KUBECONFIG, then in-cluster, then ~/.kube/config", () => {
  const all = {
    ...FILES,
    ...IN_CLUSTER_FILES,
    [PATH]: kubeconfig(),
    "/work/other.yaml": kubeconfig({ current: "staging" }).replace(
      "certificate-authority: certs/staging-ca.crt",
      `certificate-authority-data: ${b64(OTHER_CA)}`,
    ).replace("tokenFile: tokens/staging", "token: t"),
  };
  const base = { readFile: files(all), homeDir: "/home/dev", serviceAccountDir: SA_DIR };

  const explicit = loadKubeConfig({
    ...base,
    envGet: env({ ...IN_CLUSTER_ENV, KUBECONFIG: "/work/other.yaml" }),
  });
  assert.equal(explicit.location, "/work/other.yaml");
  assert.equal(explicit.context, "staging");

  const inCluster = loadKubeConfig({ ...base, envGet: env(IN_CLUSTER_ENV) });
  assert.equal(inCluster.source, "in-cluster");

  const home = loadKubeConfig({ ...base, envGet: env({}) });
  assert.equal(home.location, PATH);
  assert.equal(home.context, "kind-piggy");

  const fromHomeEnv = loadKubeConfig({
    readFile: files(all),
    envGet: env({ HOME: "/home/dev" }),
  });
  assert.equal(fromHomeEnv.location, PATH);
});

test("loadKubeConfig() reads only the first KUBECONFIG entry and says so", () => {
  const config = loadKubeConfig({
    envGet: env({ KUBECONFIG: `${PATH}:/other/config` }),
    readFile: files({ ...FILES, [PATH]: kubeconfig() }),
  });
  assert.equal(config.location, PATH);
  assert.match(config.warnings.join("\n"), /KUBECONFIG lists 2 files: only the first one/);
});

test("loadKubeConfig() passes the context option to the kubeconfig", () => {
  const config = loadKubeConfig({
    envGet: env({ KUBECONFIG: PATH }),
    readFile: files({ ...FILES, [PATH]: kubeconfig() }),
    context: "staging",
  });
  assert.equal(config.context, "staging");
});

test("loadKubeConfig() fails clearly when nothing is configured or a file is unreadable", () => {
  assert.throws(
    () => loadKubeConfig({ envGet: env({}), readFile: files({}), homeDir: "/home/dev" }),
    /Cannot find a Kubernetes configuration: set KUBECONFIG/,
  );
  assert.throws(
    () => loadKubeConfig({ envGet: env({ KUBECONFIG: "/nope" }), readFile: files({}) }),
    /Cannot read kubeconfig "\/nope"/,
  );
  const denied = (path: string): string => {
    throw Object.assign(new Error(`EACCES: permission denied, open '${path}'`), {
      code: "EACCES",
    });
  };
  assert.throws(
    () => loadKubeConfig({ envGet: env({}), readFile: denied, homeDir: "/home/dev" }),
    /Cannot read kubeconfig "\/home\/dev\/\.kube\/config"/,
  );
});

test("parseKubeConfig() reads an exec plugin: command, args, env, apiVersion", () => {
  const user = [
    "    exec:",
    "      apiVersion: client.authentication.k8s.io/v1beta1",
    "      command: aws",
    "      args: [--region, eu-west-1, eks, get-token, --cluster-name, prod]",
    "      env:",
    "        - {name: AWS_PROFILE, value: platform}",
    "      installHint: Install the AWS CLI",
    "      provideClusterInfo: false",
    "      interactiveMode: IfAvailable",
  ].join("\n");
  const config = parseKubeConfig(kubeconfig({ user }), { path: PATH, readFile: files(FILES) });
  assert.deepEqual(config.exec, {
    command: "aws",
    args: ["--region", "eu-west-1", "eks", "get-token", "--cluster-name", "prod"],
    env: { AWS_PROFILE: "platform" },
    apiVersion: "client.authentication.k8s.io/v1beta1",
    installHint: "Install the AWS CLI",
    provideClusterInfo: false,
  });
  assert.equal(config.token, undefined);
  const relative = parseKubeConfig(
    kubeconfig({
      user: "    exec:\n      command: bin/token.sh\n      apiVersion: " +
        "client.authentication.k8s.io/v1",
    }),
    { path: PATH, readFile: files(FILES) },
  );
  assert.equal(
    relative.exec?.command,
    "/home/dev/.kube/bin/token.sh",
    "relative to the kubeconfig",
  );
});
