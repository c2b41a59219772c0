/**
 * piggy-env proxy mode as a real process against a loopback `/secret` responder: TLS trust, refusal
 * and the explicit skip-verify opt-out, the request it sends, retries, the initial delay and the
 * per-attempt timeout.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { commandSignature } from "../src/pod/signature.ts";
import { createTestCa, type TestCa } from "../testing/pki.ts";
import {
  logMessages,
  parseReport,
  REPORT_APP,
  runLauncher,
  type SecretResponder,
  startSecretResponder,
} from "../testing/launcher_process.ts";

let trusted: TestCa;
let other: TestCa;
let dir: string;
let tokenPath: string;

before(() => {
  trusted = createTestCa("piggy-webhook");
  other = createTestCa("piggy-other");
  dir = mkdtempSync(join(tmpdir(), "piggy-proxy-test-"));
  tokenPath = join(dir, "token");
  writeFileSync(tokenPath, "projected-token-value\n");
});

after(() => {
  for (const path of [dir, trusted?.dir, other?.dir]) {
    if (path) rmSync(path, { recursive: true, force: true });
  }
});

function proxyEnv(responder: SecretResponder, extra: Record<string, string> = {}) {
  return {
    PIGGY_ADDRESS: responder.address,
    PIGGY_POD_NAME: "app-1",
    PIGGY_UID: "0f3cuid",
    PIGGY_TOKEN_FILE: tokenPath,
    DB_PASS: "piggy:DB_PASS",
    ...extra,
  };
}

async function httpsResponder(
  options: Parameters<typeof startSecretResponder>[0] = {},
): Promise<SecretResponder> {
  const leaf = trusted.issue(`server-${Math.random().toString(16).slice(2)}`);
  return await startSecretResponder({
    tls: { cert: leaf.cert, key: leaf.key },
    secrets: { DB_PASS: "tls-secret" },
    ...options,
  });
}

test("piggy-env refuses a webhook certificate it cannot verify (no CA given)", async () => {
  const responder = await httpsResponder();
  try {
    const result = await runLauncher({ args: ["--", REPORT_APP], env: proxyEnv(responder) });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "", "the app never starts");
    assert.equal(responder.requests.length, 0, "no request reached the handler");
    assert.ok(
      logMessages(result).some((m) => /^Retry 1\/1 \[error=Cannot reach the webhook/.test(m)),
    );
  } finally {
    await responder.close();
  }
});

test("piggy-env refuses a webhook certificate from another CA", async () => {
  const responder = await httpsResponder();
  try {
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: proxyEnv(responder, { PIGGY_CA_BUNDLE: other.cert }),
    });
    assert.equal(result.code, 1);
    assert.equal(responder.requests.length, 0);
    assert.doesNotMatch(result.stderr, /BEGIN CERTIFICATE/, "the CA text is never logged");
  } finally {
    await responder.close();
  }
});

/**
 * Variables from which Deno would add trust anchors of its own: here all point at the other CA
 * (`DENO_TLS_CA_STORE` as the user might set it for a Deno app of their own).
 */
function denoTrustEnv(): Record<string, string> {
  return {
    DENO_CERT: other.certFile,
    NODE_EXTRA_CA_CERTS: other.certFile,
    DENO_TLS_CA_STORE: "mozilla,system",
  };
}

test("with a CA, piggy-env trusts only it: not a CA from DENO_CERT or NODE_EXTRA_CA_CERTS", async () => {
  const leaf = other.issue(`server-${Math.random().toString(16).slice(2)}`);
  const responder = await startSecretResponder({
    tls: { cert: leaf.cert, key: leaf.key },
    secrets: { DB_PASS: "tls-secret" },
  });
  try {
    // Control: without a CA piggy-env uses Deno's default trust, which takes DENO_CERT in.
    const defaults = await runLauncher({
      args: ["--", REPORT_APP],
      env: proxyEnv(responder, denoTrustEnv()),
    });
    assert.equal(defaults.code, 0, defaults.stderr);
    for (const extra of [{ PIGGY_CA_BUNDLE: trusted.cert }, { PIGGY_CA_FILE: trusted.certFile }]) {
      const result = await runLauncher({
        args: ["--", REPORT_APP],
        env: proxyEnv(responder, { ...denoTrustEnv(), ...extra }),
      });
      assert.equal(result.code, 1, "the other CA's certificate is refused");
      assert.equal(result.stdout, "", "the app never starts");
      assert.ok(
        logMessages(result).some((m) => /^Retry 1\/1 \[error=Cannot reach the webhook/.test(m)),
        result.stderr,
      );
    }
    assert.equal(responder.requests.length, 1, "only the control's request reached the handler");
  } finally {
    await responder.close();
  }
});

test("with a CA, piggy-env trusts only it: not the system store under DENO_TLS_CA_STORE=system", async () => {
  // The system store as rustls-native-certs reads it: SSL_CERT_FILE names its bundle (the other CA).
  const leaf = other.issue(`server-${Math.random().toString(16).slice(2)}`);
  const responder = await startSecretResponder({
    tls: { cert: leaf.cert, key: leaf.key },
    secrets: { DB_PASS: "tls-secret" },
  });
  const systemStore = { DENO_TLS_CA_STORE: "system", SSL_CERT_FILE: other.certFile };
  try {
    // Control: without a CA piggy-env uses Deno's default trust, here the system store.
    const defaults = await runLauncher({
      args: ["--", REPORT_APP],
      env: proxyEnv(responder, systemStore),
    });
    assert.equal(defaults.code, 0, defaults.stderr);
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: proxyEnv(responder, { ...systemStore, PIGGY_CA_BUNDLE: trusted.cert }),
    });
    assert.equal(result.code, 1, "the system store's certificate is refused");
    assert.equal(result.stdout, "", "the app never starts");
    assert.equal(responder.requests.length, 1, "only the control's request reached the handler");
  } finally {
    await responder.close();
  }
});

test("piggy-env trusting only its CA leaves the app's own DENO_CERT, NODE_EXTRA_CA_CERTS and DENO_TLS_CA_STORE", async () => {
  const responder = await httpsResponder();
  try {
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: proxyEnv(responder, { ...denoTrustEnv(), PIGGY_CA_BUNDLE: trusted.cert }),
    });
    assert.equal(result.code, 0, result.stderr);
    const env = new Map(parseReport(result.stdout).env);
    assert.equal(env.get("DB_PASS"), "tls-secret");
    for (const [name, value] of Object.entries(denoTrustEnv())) assert.equal(env.get(name), value);
  } finally {
    await responder.close();
  }
});

test("piggy-env verifies an RSA-2048 webhook certificate as well (one's own, or from an earlier chart)", async () => {
  const leaf = trusted.issue(`server-rsa-${Math.random().toString(16).slice(2)}`, {
    keyType: "rsa",
  });
  const responder = await startSecretResponder({
    tls: { cert: leaf.cert, key: leaf.key },
    secrets: { DB_PASS: "tls-secret" },
  });
  try {
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: proxyEnv(responder, { PIGGY_CA_BUNDLE: trusted.cert }),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(new Map(parseReport(result.stdout).env).get("DB_PASS"), "tls-secret");
  } finally {
    await responder.close();
  }
});

test("piggy-env trusts the webhook through PIGGY_CA_FILE", async () => {
  const responder = await httpsResponder();
  try {
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: proxyEnv(responder, { PIGGY_CA_FILE: trusted.certFile }),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(new Map(parseReport(result.stdout).env).get("DB_PASS"), "tls-secret");
  } finally {
    await responder.close();
  }
});

test("piggy-env trusts the webhook through PIGGY_CA_BUNDLE (PEM text)", async () => {
  const responder = await httpsResponder();
  try {
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: proxyEnv(responder, { PIGGY_CA_BUNDLE: trusted.cert, PIGGY_DEBUG: "true" }),
    });
    assert.equal(result.code, 0, result.stderr);
    const env = new Map(parseReport(result.stdout).env);
    assert.equal(env.get("DB_PASS"), "tls-secret");
    assert.equal(env.has("PIGGY_CA_BUNDLE"), false);
    assert.doesNotMatch(result.stderr, /BEGIN CERTIFICATE|tls-secret|projected-token-value/);
  } finally {
    await responder.close();
  }
});

test("piggy-env skips verification only with PIGGY_SKIP_VERIFY_TLS=true", async () => {
  const responder = await httpsResponder();
  try {
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: proxyEnv(responder, { PIGGY_SKIP_VERIFY_TLS: "true" }),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(new Map(parseReport(result.stdout).env).get("DB_PASS"), "tls-secret");
  } finally {
    await responder.close();
  }
});

test("piggy-env sends Go Piggy's request: POST /secret, X-Token, JSON body, command signature", async () => {
  const responder = await httpsResponder();
  try {
    const command = [REPORT_APP, "--port", "8080"];
    const result = await runLauncher({
      args: ["--", ...command],
      env: proxyEnv(responder, {
        PIGGY_ADDRESS: `${responder.address}/`,
        PIGGY_CA_FILE: trusted.certFile,
      }),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(responder.requests.length, 1);
    const [request] = responder.requests;
    assert.equal(request?.method, "POST");
    assert.equal(request?.path, "/secret");
    assert.equal(request?.headers["content-type"], "application/json");
    assert.equal(request?.headers["x-token"], "projected-token-value");
    assert.deepEqual(JSON.parse(request?.body ?? ""), {
      resources: "pods",
      name: "app-1",
      uid: "0f3cuid",
      signature: await commandSignature(command),
    });
  } finally {
    await responder.close();
  }
});

test("piggy-env succeeds on the third request when the webhook resets, then answers 503", async () => {
  const responder = await startSecretResponder({
    secrets: { DB_PASS: "third-time" },
    answer: (n) =>
      n === 1
        ? { reset: true }
        : n === 2
        ? { status: 503, body: { error: "Unavailable", message: "starting" } }
        : { status: 200, body: { DB_PASS: "third-time" } },
  });
  try {
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: proxyEnv(responder, { PIGGY_NUMBER_OF_RETRY: "3", PIGGY_DEBUG: "true" }),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(responder.requests.length, 3);
    assert.equal(new Map(parseReport(result.stdout).env).get("DB_PASS"), "third-time");
    // The reset costs an attempt (the launcher sends each request once), the 503 another.
    const debug = logMessages(result).filter((m) => m.startsWith("Retry "));
    assert.equal(debug.length, 2, debug.join("\n"));
    assert.match(
      debug[0] ?? "",
      /Retry 1\/3 \[error=Cannot reach the webhook: ECONNRESET: connection closed before an answer\]/,
    );
    assert.match(debug[1] ?? "", /Retry 2\/3 \[error=Webhook answered 503: starting\]/);
  } finally {
    await responder.close();
  }
});

test("piggy-env gives up after N attempts with exit 1", async () => {
  const responder = await startSecretResponder({
    answer: () => ({ status: 503, body: "down" }),
  });
  try {
    const result = await runLauncher({
      args: ["--retry", "2", "--", REPORT_APP],
      env: proxyEnv(responder),
    });
    assert.equal(result.code, 1);
    assert.equal(responder.requests.length, 2);
    assert.deepEqual(logMessages(result).slice(-3), [
      "Retry 1/2 [error=Webhook answered 503: down]",
      "Retry 2/2 [error=Webhook answered 503: down]",
      `Unable to communicate with ${responder.address}`,
    ]);
  } finally {
    await responder.close();
  }
});

test("piggy-env does not retry a permanent refusal (403)", async () => {
  const responder = await startSecretResponder({
    answer: () => ({ status: 403, body: { error: "AccessDenied", message: "not allowed" } }),
  });
  try {
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: proxyEnv(responder, { PIGGY_NUMBER_OF_RETRY: "4" }),
    });
    assert.equal(result.code, 1);
    assert.equal(responder.requests.length, 1);
  } finally {
    await responder.close();
  }
});

test("piggy-env honours the initial delay before the first request", async () => {
  const responder = await startSecretResponder({ secrets: { DB_PASS: "later" } });
  try {
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: proxyEnv(responder, { PIGGY_INITIAL_DELAY: "1200ms" }),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(responder.requests.length, 1);
    const first = responder.requests[0]?.at ?? 0;
    assert.ok(
      first - result.startedAt >= 1200,
      `request ${first - result.startedAt}ms after start`,
    );
    assert.ok(logMessages(result).includes("Sleeping for 1.2s"));
  } finally {
    await responder.close();
  }
});

test("piggy-env abandons a hanging attempt after PIGGY_REQUEST_TIMEOUT and retries", async () => {
  const responder = await startSecretResponder({
    answer: (n) => n === 1 ? { hang: true } : { status: 200, body: { DB_PASS: "after-timeout" } },
  });
  try {
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: proxyEnv(responder, { PIGGY_NUMBER_OF_RETRY: "2", PIGGY_REQUEST_TIMEOUT: "500ms" }),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(responder.requests.length, 2);
    assert.equal(new Map(parseReport(result.stdout).env).get("DB_PASS"), "after-timeout");
  } finally {
    await responder.close();
  }
});

test("piggy-env refuses a secret value with a NUL byte, naming the variable, not the value", async () => {
  const responder = await httpsResponder({ secrets: { DB_PASS: "hunter2-CANARY\u0000tail" } });
  try {
    const result = await runLauncher({
      args: ["--", REPORT_APP],
      env: proxyEnv(responder, { PIGGY_CA_FILE: trusted.certFile }),
    });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "", "the app never starts");
    assert.ok(logMessages(result).some((m) => m.includes("[DB_PASS]") && m.includes("NUL byte")));
    assert.doesNotMatch(result.stderr, /hunter2-CANARY/);
    assert.deepEqual(result.plainStderr, [], "only JSON log lines, no crash trace");
  } finally {
    await responder.close();
  }
});
