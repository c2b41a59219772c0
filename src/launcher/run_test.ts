import assert from "node:assert/strict";
import { test } from "node:test";
import { SecretSourceError } from "../errors.ts";
import { MemorySecretSource } from "../secrets/memory_source.ts";
import { commandSignature } from "../pod/signature.ts";
import { USAGE } from "./args.ts";
import { VERSION } from "../version.ts";
import type { ProxyRequest } from "./proxy.ts";
import { EXIT_FAILURE, EXIT_USAGE, type PiggyEnvDeps, runPiggyEnv } from "./run.ts";

interface Harness {
  deps: PiggyEnvDeps;
  logs: Array<Record<string, unknown>>;
  stdout: string[];
  stderr: string[];
  requests: ProxyRequest[];
  execs: Array<{ command: readonly string[]; env: ReadonlyArray<readonly [string, string]> }>;
  sleeps: number[];
  installs: Array<[string, string]>;
}

function harness(
  env: Array<[string, string]>,
  overrides: Partial<PiggyEnvDeps> & {
    answers?: Array<Record<string, string> | Error>;
    files?: Record<string, string>;
  } = {},
): Harness {
  const h: Harness = {
    logs: [],
    stdout: [],
    stderr: [],
    requests: [],
    execs: [],
    sleeps: [],
    installs: [],
    deps: undefined as unknown as PiggyEnvDeps,
  };
  const answers = overrides.answers ?? [{}];
  const files: Record<string, string> = {
    "/var/run/secrets/kubernetes.io/serviceaccount/token": "sa-token\n",
    ...overrides.files,
  };
  h.deps = {
    env,
    execPath: "/usr/local/bin/piggy-env",
    readTextFile: (path) =>
      path in files
        ? Promise.resolve(files[path] as string)
        : Promise.reject(new Error(`ENOENT: ${path}`)),
    sleep: (ms) => {
      h.sleeps.push(ms);
      return Promise.resolve();
    },
    exec: (command, childEnv) => {
      h.execs.push({ command, env: childEnv });
      return Promise.resolve(0);
    },
    createSecretSource: () => Promise.reject(new Error("no AWS in this test")),
    writeStdout: (line) => h.stdout.push(line),
    writeStderr: (line) => h.stderr.push(line),
    requestSecrets: (request) => {
      h.requests.push(request);
      const answer = answers[Math.min(h.requests.length - 1, answers.length - 1)];
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve({ ...answer });
    },
    install: (source, destination) => {
      h.installs.push([source, destination]);
      return Promise.resolve(`${destination}/piggy-env`);
    },
    random: () => 0,
    logSink: (line) => h.logs.push(JSON.parse(line)),
    ...overrides,
  };
  return h;
}

const PROXY_ENV: Array<[string, string]> = [
  ["PATH", "/usr/bin:/bin"],
  ["PIGGY_ADDRESS", "https://piggy.piggy.svc"],
  ["PIGGY_POD_NAME", "app-1"],
  ["PIGGY_UID", "0f3c"],
  ["PIGGY_AWS_SECRET_NAME", ""],
  ["PIGGY_AWS_REGION", ""],
  ["PIGGY_AWS_SSM_PARAMETER_PATH", ""],
];

function messages(h: Harness): string[] {
  return h.logs.map((line) => String(line.message));
}

test("runPiggyEnv() prints usage on stdout for --help and exits 0", async () => {
  const h = harness([]);
  assert.equal(await runPiggyEnv(["--help"], h.deps), 0);
  assert.deepEqual(h.stdout, [USAGE]);
  assert.deepEqual(h.execs, []);
});

test("runPiggyEnv() prints its version on stdout for --version and exits 0", async () => {
  const h = harness([]);
  assert.equal(await runPiggyEnv(["--version"], h.deps), 0);
  assert.deepEqual(h.stdout, [`piggy-env ${VERSION}`]);
  assert.deepEqual(h.execs, []);
  assert.deepEqual(h.logs, []);
});

test("runPiggyEnv() exits 2 on a usage error with one usage line and nothing on stdout", async () => {
  const h = harness(PROXY_ENV);
  assert.equal(await runPiggyEnv(["--retry", "0", "--", "ls"], h.deps), EXIT_USAGE);
  assert.deepEqual(h.stderr, [USAGE]);
  assert.deepEqual(h.stdout, []);
  assert.match(messages(h)[0] ?? "", /Invalid "--retry" value/);
  assert.deepEqual(h.requests, []);
});

test("runPiggyEnv() installs the image's launcher directory and exits 0", async () => {
  const h = harness([]);
  assert.equal(await runPiggyEnv(["install", "/piggy"], h.deps), 0);
  assert.deepEqual(h.installs, [["/usr/local/lib/piggy-env", "/piggy"]]);
  assert.deepEqual(messages(h), ["Installed piggy-env to /piggy/piggy-env"]);
});

test("runPiggyEnv() installs the directory given with --from", async () => {
  const h = harness([]);
  assert.equal(await runPiggyEnv(["install", "--from", "/opt/launcher", "/piggy"], h.deps), 0);
  assert.deepEqual(h.installs, [["/opt/launcher", "/piggy"]]);
});

test("runPiggyEnv() exits 1 when install fails", async () => {
  const h = harness([], { install: () => Promise.reject(new Error("Cannot install: EROFS")) });
  assert.equal(await runPiggyEnv(["install", "/piggy"], h.deps), EXIT_FAILURE);
  assert.match(messages(h)[0] ?? "", /EROFS/);
});

test("runPiggyEnv() proxy mode: signed request, resolved env, reserved names removed", async () => {
  const h = harness([...PROXY_ENV, ["DB_PASS", "piggy:DB_PASS"], ["PLAIN", "x"]], {
    answers: [{ DB_PASS: "secret123", OTHER: "unused" }],
  });
  const command = ["sh", "-c", "echo hello"];
  assert.equal(await runPiggyEnv(["--", ...command], h.deps), 0);
  assert.equal(h.requests.length, 1);
  const [request] = h.requests;
  assert.equal(request?.address, "https://piggy.piggy.svc");
  assert.equal(request?.token, "sa-token");
  assert.deepEqual(request?.body, {
    resources: "pods",
    name: "app-1",
    uid: "0f3c",
    signature: "2dd7e5fd4cee0bfad2b0f0ef8ec72a608873636f7bf71ad416d18317939b3222",
  });
  assert.equal(request?.body.signature, await commandSignature(command));
  assert.equal(request?.skipVerifyTls, false);
  assert.equal(request?.timeoutMs, 10_000);
  assert.deepEqual(h.execs, [{
    command,
    env: [["PATH", "/usr/bin:/bin"], ["DB_PASS", "secret123"], ["PLAIN", "x"]],
  }]);
  assert.ok(messages(h).includes("Request secrets was successful"));
});

test("runPiggyEnv() reads the token from PIGGY_TOKEN_FILE and the CA from both sources", async () => {
  const h = harness([
    ...PROXY_ENV,
    ["PIGGY_TOKEN_FILE", "/tokens/piggy"],
    ["PIGGY_CA_FILE", "/ca/file.pem"],
    ["PIGGY_CA_BUNDLE", "BUNDLE-PEM"],
  ], { files: { "/tokens/piggy": "audience-token", "/ca/file.pem": "FILE-PEM\n" } });
  assert.equal(await runPiggyEnv(["--", "app"], h.deps), 0);
  assert.equal(h.requests[0]?.token, "audience-token");
  assert.equal(h.requests[0]?.ca, "FILE-PEM\n\nBUNDLE-PEM");
  const childNames = h.execs[0]?.env.map(([name]) => name);
  assert.deepEqual(childNames, ["PATH"]);
});

test("runPiggyEnv() retries: two failures then success, with the initial delay first", async () => {
  const h = harness([...PROXY_ENV, ["PIGGY_NUMBER_OF_RETRY", "3"], ["PIGGY_INITIAL_DELAY", "2s"], [
    "K",
    "piggy:K",
  ]], {
    answers: [
      new SecretSourceError("Webhook answered 503", { retryable: true }),
      new SecretSourceError("Cannot reach the webhook: ECONNREFUSED", { retryable: true }),
      { K: "v" },
    ],
  });
  assert.equal(await runPiggyEnv(["--", "app"], h.deps), 0);
  assert.equal(h.requests.length, 3);
  assert.deepEqual(h.sleeps, [2000, 250, 500]);
  assert.deepEqual(h.execs[0]?.env.find(([name]) => name === "K"), ["K", "v"]);
  assert.ok(messages(h).includes("Sleeping for 2s"));
});

test("runPiggyEnv() exits 1 with Go's lines when every attempt fails", async () => {
  const h = harness([...PROXY_ENV, ["PIGGY_NUMBER_OF_RETRY", "2"], ["K", "piggy:K"]], {
    answers: [new SecretSourceError("Webhook answered 503: down", { retryable: true })],
  });
  assert.equal(await runPiggyEnv(["--", "app"], h.deps), EXIT_FAILURE);
  assert.deepEqual(h.execs, []);
  const errors = h.logs.filter((line) => line.level === "error").map((line) => line.message);
  assert.deepEqual(errors, [
    "Retry 1/2 [error=Webhook answered 503: down]",
    "Retry 2/2 [error=Webhook answered 503: down]",
    "Unable to communicate with https://piggy.piggy.svc",
  ]);
});

test("runPiggyEnv() exits 1 naming the variable of a missing key, never its value", async () => {
  const h = harness([...PROXY_ENV, ["DB_PASS", "piggy:NOT_THERE"], ["API", "PIGGY:api"]], {
    answers: [{ OTHER: "s3cr3t-value" }],
  });
  assert.equal(await runPiggyEnv(["--", "app"], h.deps), EXIT_FAILURE);
  assert.deepEqual(h.execs, []);
  const text = JSON.stringify(h.logs);
  assert.match(text, /\[DB_PASS\], \[API\] not found/);
  assert.doesNotMatch(text, /s3cr3t-value|NOT_THERE|sa-token/);
});

test("runPiggyEnv() with ignore-no-env and a failed fetch starts the app with its normal env", async () => {
  const h = harness([
    ...PROXY_ENV,
    ["PIGGY_IGNORE_NO_ENV", "true"],
    ["HOME", "/home/app"],
    ["DB_PASS", "piggy:DB_PASS"],
  ], { answers: [new SecretSourceError("Webhook answered 403: refused")] });
  assert.equal(await runPiggyEnv(["--", "app", "arg"], h.deps), 0);
  assert.deepEqual(h.execs, [{
    command: ["app", "arg"],
    env: [["PATH", "/usr/bin:/bin"], ["HOME", "/home/app"], ["DB_PASS", "piggy:DB_PASS"]],
  }]);
});

test("runPiggyEnv() with ignore-no-env starts the app despite a missing key", async () => {
  const h = harness([...PROXY_ENV, ["PIGGY_IGNORE_NO_ENV", "true"], ["A", "piggy:A"], [
    "B",
    "piggy:B",
  ]], { answers: [{ A: "a" }] });
  assert.equal(await runPiggyEnv(["--", "app"], h.deps), 0);
  assert.deepEqual(h.execs[0]?.env.slice(1), [["A", "a"], ["B", "piggy:B"]]);
});

test("runPiggyEnv() exits 1 on an invalid PIGGY_NUMBER_OF_RETRY without fetching", async () => {
  for (const value of ["0", "-1", "many"]) {
    const h = harness([...PROXY_ENV, ["PIGGY_NUMBER_OF_RETRY", value]]);
    assert.equal(await runPiggyEnv(["--", "app"], h.deps), EXIT_FAILURE, value);
    assert.deepEqual(h.requests, []);
    assert.match(messages(h)[0] ?? "", /Invalid PIGGY_NUMBER_OF_RETRY/);
  }
});

test("runPiggyEnv() exits 1 on an invalid PIGGY_INITIAL_DELAY instead of resetting the flag", async () => {
  const h = harness([...PROXY_ENV, ["PIGGY_INITIAL_DELAY", "10"]]);
  assert.equal(await runPiggyEnv(["--initial-delay", "1s", "--", "app"], h.deps), EXIT_FAILURE);
  assert.deepEqual(h.sleeps, []);
  assert.match(messages(h)[0] ?? "", /Invalid PIGGY_INITIAL_DELAY/);
});

test("runPiggyEnv() fails without retrying when the address is missing or malformed", async () => {
  for (const address of ["", "not a url"]) {
    const h = harness([["PIGGY_ADDRESS", address], ["PIGGY_NUMBER_OF_RETRY", "3"]]);
    assert.equal(await runPiggyEnv(["--", "app"], h.deps), EXIT_FAILURE);
    assert.deepEqual(h.requests, []);
    assert.deepEqual(h.sleeps, []);
  }
});

test("runPiggyEnv() stops at the first permanent failure (403)", async () => {
  const h = harness([...PROXY_ENV, ["PIGGY_NUMBER_OF_RETRY", "5"]], {
    answers: [new SecretSourceError("Webhook answered 403: refused")],
  });
  assert.equal(await runPiggyEnv(["--", "app"], h.deps), EXIT_FAILURE);
  assert.equal(h.requests.length, 1);
});

test("runPiggyEnv() passes the skip-verify opt-out and the request timeout on", async () => {
  const h = harness([...PROXY_ENV, ["PIGGY_SKIP_VERIFY_TLS", "true"], [
    "PIGGY_REQUEST_TIMEOUT",
    "3s",
  ]]);
  assert.equal(await runPiggyEnv(["--", "app"], h.deps), 0);
  assert.equal(h.requests[0]?.skipVerifyTls, true);
  assert.equal(h.requests[0]?.timeoutMs, 3000);
});

test("runPiggyEnv() standalone: reads the secret source, reports success, filters reserved keys", async () => {
  const source = new MemorySecretSource().putSecret("demo/app", {
    DB_PASS: "secret123",
    PIGGY_ALLOWED_SA: "demo:app",
  });
  const h = harness([
    ["PIGGY_STANDALONE", "true"],
    ["PIGGY_AWS_SECRET_NAME", "demo/app"],
    ["PIGGY_AWS_REGION", "eu-west-1"],
    ["PIGGY_AWS_SECRET_VERSION", "AWSPREVIOUS"],
    ["DB_PASS", "piggy:DB_PASS"],
    ["SA", "piggy:PIGGY_ALLOWED_SA"],
  ], { createSecretSource: () => Promise.resolve(source) });
  assert.equal(await runPiggyEnv(["--", "app"], h.deps), EXIT_FAILURE);
  assert.deepEqual(source.queries, [{
    kind: "secretsManager",
    name: "demo/app",
    region: "eu-west-1",
    version: "AWSPREVIOUS",
  }]);
  assert.ok(messages(h).includes("Request secrets was successful"));
  assert.match(JSON.stringify(h.logs), /\[SA\] not found/);
  assert.deepEqual(h.requests, []);
});

test("runPiggyEnv() standalone with SSM resolves parameters by last path element", async () => {
  const source = new MemorySecretSource().putParameter("/demo/app/DB_HOST", "db.local");
  const h = harness([
    ["PIGGY_AWS_SSM_PARAMETER_PATH", "/demo/app"],
    ["HOST", "piggy:DB_HOST"],
  ], { createSecretSource: () => Promise.resolve(source) });
  assert.equal(await runPiggyEnv(["--standalone", "--", "app"], h.deps), 0);
  assert.deepEqual(h.execs[0]?.env, [["HOST", "db.local"]]);
});

test("runPiggyEnv() standalone without a secret name or path fails without AWS", async () => {
  let created = 0;
  const h = harness([["PIGGY_STANDALONE", "true"]], {
    createSecretSource: () => {
      created++;
      return Promise.resolve(new MemorySecretSource());
    },
  });
  assert.equal(await runPiggyEnv(["--", "app"], h.deps), EXIT_FAILURE);
  assert.equal(created, 0);
});

test("runPiggyEnv() returns the exec result (the child's exit code on the spawn path)", async () => {
  const h = harness(PROXY_ENV, { exec: () => Promise.resolve(143) });
  assert.equal(await runPiggyEnv(["--", "app"], h.deps), 143);
});

test("runPiggyEnv() never logs the token, CA text or values, even in debug", async () => {
  const h = harness([
    ...PROXY_ENV,
    ["PIGGY_DEBUG", "true"],
    ["PIGGY_CA_BUNDLE", "-----BEGIN CERTIFICATE-----CA-TEXT"],
    ["DB_PASS", "piggy:DB_PASS"],
  ], { answers: [{ DB_PASS: "v4lue-s3cret" }] });
  assert.equal(await runPiggyEnv(["--", "app"], h.deps), 0);
  assert.ok(h.logs.some((line) => line.level === "debug"));
  assert.doesNotMatch(JSON.stringify(h.logs), /v4lue-s3cret|sa-token|CA-TEXT/);
});

/** A harness that records the order of CA trust, exec preparation, request and exec. */
function orderHarness(env: Array<[string, string]>): { h: Harness; events: string[] } {
  const events: string[] = [];
  const h = harness(env, {
    trustOnlyGivenCa: () => events.push("trust only the CA"),
    prepareExec: () => events.push("prepare exec"),
    exec: () => {
      events.push("exec");
      return Promise.resolve(0);
    },
    createSecretSource: () =>
      Promise.resolve({
        fetchSecret: () => {
          events.push("AWS read");
          return Promise.resolve({});
        },
      }),
  });
  const request = h.deps.requestSecrets!;
  h.deps.requestSecrets = async (proxyRequest) => {
    // The answer arrives after a turn of the event loop, as a real one does.
    await new Promise((resolve) => setTimeout(resolve, 0));
    events.push("answer");
    return await request(proxyRequest);
  };
  return { h, events };
}

test("runPiggyEnv() prepares exec while the request is in flight", async () => {
  const { h, events } = orderHarness(PROXY_ENV);
  assert.equal(await runPiggyEnv(["--", "app"], h.deps), 0);
  assert.deepEqual(events, ["prepare exec", "answer", "exec"]);
});

test("runPiggyEnv() changes no TLS trust for an http address or in standalone mode", async () => {
  const http = orderHarness([
    ...PROXY_ENV,
    ["PIGGY_ADDRESS", "http://piggy.piggy.svc"],
    ["PIGGY_CA_BUNDLE", "PEM"],
  ]);
  assert.equal(await runPiggyEnv(["--", "app"], http.h.deps), 0);
  assert.deepEqual(http.events, ["prepare exec", "answer", "exec"]);

  const standalone = orderHarness([
    ["PIGGY_STANDALONE", "true"],
    ["PIGGY_ADDRESS", "https://piggy.piggy.svc"],
    ["PIGGY_AWS_SECRET_NAME", "demo/app"],
  ]);
  assert.equal(await runPiggyEnv(["--", "app"], standalone.h.deps), 0);
  assert.deepEqual(standalone.events, ["prepare exec", "AWS read", "exec"]);
});

test("runPiggyEnv() prepares nothing when the options are invalid", async () => {
  const { h, events } = orderHarness([...PROXY_ENV, ["PIGGY_NUMBER_OF_RETRY", "zero"]]);
  assert.equal(await runPiggyEnv(["--", "app"], h.deps), EXIT_FAILURE);
  assert.deepEqual(events, []);
});

test("runPiggyEnv() trusts only the given CA (bundle or file) when verifying, before the request", async () => {
  for (const ca of [["PIGGY_CA_BUNDLE", "PEM"], ["PIGGY_CA_FILE", "/ca.pem"]] as const) {
    const { h, events } = orderHarness([...PROXY_ENV, [ca[0], ca[1]]]);
    h.deps.readTextFile = () => Promise.resolve("PEM");
    assert.equal(await runPiggyEnv(["--", "app"], h.deps), 0);
    assert.deepEqual(events, ["trust only the CA", "prepare exec", "answer", "exec"]);
  }
  const skip = orderHarness([
    ...PROXY_ENV,
    ["PIGGY_CA_BUNDLE", "PEM"],
    ["PIGGY_SKIP_VERIFY_TLS", "true"],
  ]);
  assert.equal(await runPiggyEnv(["--", "app"], skip.h.deps), 0);
  assert.deepEqual(skip.events, ["prepare exec", "answer", "exec"]);
});
