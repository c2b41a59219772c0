import assert from "node:assert/strict";
import { test } from "node:test";
import { SecretSourceError, toStatus } from "../errors.ts";
import { Logger } from "../log.ts";
import { secretQuery, withAwsSource } from "../../testing/aws_source.ts";
import { AwsSecretSource, isRetryableAwsError, toSecretSourceError } from "./aws_source.ts";
import { startAwsStandIn, withEnv } from "../../testing/aws.ts";

const VERSION_ID = "6f8723a0-bd71-4a5a-9a5d-7f6f2e2bd3c1";

async function rejectsWith(
  promise: Promise<unknown>,
  check: (error: SecretSourceError) => void,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SecretSourceError, `expected SecretSourceError, got ${error}`);
    check(error);
    return true;
  });
}

test("AwsSecretSource.fetchSecret() sends VersionStage AWSCURRENT when no version is set", async () => {
  await withAwsSource(async (aws, source) => {
    aws.putSecret("app/db", { string: '{"DB_USER":"admin","DB_PASS":"secret"}' });
    const values = await source.fetchSecret(secretQuery());
    assert.deepEqual(values, { DB_USER: "admin", DB_PASS: "secret" });
    const [request] = aws.requests;
    assert.equal(request?.action, "GetSecretValue");
    assert.equal(request?.secretId, "app/db");
    assert.equal(request?.versionStage, "AWSCURRENT");
    assert.equal(request?.versionId, undefined);
  });
});

test("AwsSecretSource.fetchSecret() sends a version id as VersionId", async () => {
  await withAwsSource(async (aws, source) => {
    aws.putSecret("app/db", {
      versionId: VERSION_ID,
      stages: ["AWSPREVIOUS"],
      string: '{"V":"old"}',
    });
    aws.putSecret("app/db", { string: '{"V":"new"}' });
    const values = await source.fetchSecret(secretQuery({ version: VERSION_ID }));
    assert.deepEqual(values, { V: "old" });
    const [request] = aws.requests;
    assert.equal(request?.versionId, VERSION_ID);
    assert.equal(request?.versionStage, undefined);
  });
});

test("AwsSecretSource.fetchSecret() sends any other version as VersionStage", async () => {
  await withAwsSource(async (aws, source) => {
    aws.putSecret("app/db", { stages: ["AWSPREVIOUS"], string: '{"V":"old"}' });
    aws.putSecret("app/db", { string: '{"V":"new"}' });
    assert.deepEqual(await source.fetchSecret(secretQuery({ version: "AWSPREVIOUS" })), {
      V: "old",
    });
    assert.deepEqual(await source.fetchSecret(secretQuery({ version: "AWSCURRENT" })), {
      V: "new",
    });
    assert.deepEqual(
      aws.requests.map((r) => [r.versionStage, r.versionId]),
      [["AWSPREVIOUS", undefined], ["AWSCURRENT", undefined]],
    );
  });
});

test("AwsSecretSource.fetchSecret() keeps strings and turns other JSON values into JSON text", async () => {
  await withAwsSource(async (aws, source) => {
    aws.putSecret("app/db", {
      string: JSON.stringify({
        S: "text",
        N: 5432,
        F: 1.5,
        B: true,
        Z: null,
        O: { nested: ["a", 1] },
        A: [1, 2],
        E: "",
      }),
    });
    assert.deepEqual(await source.fetchSecret(secretQuery()), {
      S: "text",
      N: "5432",
      F: "1.5",
      B: "true",
      Z: "null",
      O: '{"nested":["a",1]}',
      A: "[1,2]",
      E: "",
    });
  });
});

test("AwsSecretSource.fetchSecret() rejects invalid JSON, non-objects and binary secrets without echoing them", async () => {
  const canary = "CANARY-7d1c2a-do-not-log";
  const cases: { name: string; version: { string?: string; binary?: Uint8Array }; code: string }[] =
    [
      { name: "bad-json", version: { string: `{"K": "${canary}"` }, code: "InvalidSecretFormat" },
      { name: "plain", version: { string: canary }, code: "InvalidSecretFormat" },
      { name: "quoted", version: { string: JSON.stringify(canary) }, code: "InvalidSecretFormat" },
      { name: "array", version: { string: `["${canary}"]` }, code: "InvalidSecretFormat" },
      {
        name: "binary",
        version: { binary: new TextEncoder().encode(canary) },
        code: "BinarySecretNotSupported",
      },
    ];
  await withAwsSource(async (aws, source) => {
    for (const { name, version, code } of cases) {
      aws.putSecret(name, version);
      await rejectsWith(source.fetchSecret(secretQuery({ secretName: name })), (error) => {
        assert.equal(error.code, code, name);
        assert.equal(error.retryable, false);
        assert.match(error.message, new RegExp(`^Cannot load secret "${name}": `));
        assert.ok(!error.message.includes(canary), `${name}: ${error.message}`);
        assert.ok(!String(error.cause ?? "").includes(canary), name);
        assert.equal(toStatus(error), 502);
      });
    }
    assert.equal(aws.count("GetSecretValue"), cases.length);
  });
});

test("AwsSecretSource.fetchSecret() does not retry NotFound, AccessDenied, DecryptionFailure or invalid requests", async () => {
  await withAwsSource(async (aws, source) => {
    await rejectsWith(source.fetchSecret(secretQuery({ secretName: "missing" })), (error) => {
      assert.equal(error.code, "ResourceNotFoundException");
      assert.equal(error.retryable, false);
      assert.equal(
        error.message,
        `Cannot load secret "missing": Secrets Manager can't find the specified secret.`,
      );
    });
    assert.equal(aws.count("GetSecretValue"), 1);

    aws.putSecret("app/db", { string: '{"K":"v"}' });
    for (
      const errorName of [
        "AccessDeniedException",
        "DecryptionFailure",
        "InvalidRequestException",
        "InvalidParameterException",
      ]
    ) {
      aws.resetCounters();
      aws.failNext("GetSecretValue", errorName, 3);
      await rejectsWith(source.fetchSecret(secretQuery()), (error) => {
        assert.equal(error.code, errorName);
        assert.equal(error.retryable, false);
      });
      assert.equal(aws.count("GetSecretValue"), 1, errorName);
      aws.clearInjections();
    }
  });
});

test("AwsSecretSource.fetchSecret() retries throttling up to maxAttempts, then fails retryable", async () => {
  await withAwsSource(async (aws, source) => {
    aws.putSecret("app/db", { string: '{"K":"v"}' });
    aws.failNext("GetSecretValue", "ThrottlingException", 10);
    await rejectsWith(source.fetchSecret(secretQuery()), (error) => {
      assert.equal(error.code, "ThrottlingException");
      assert.equal(error.retryable, true);
      assert.equal(error.message, `Cannot load secret "app/db": Rate exceeded`);
      assert.equal(toStatus(error), 502);
    });
    assert.equal(aws.count("GetSecretValue"), 3);
  });
});

test("AwsSecretSource.fetchSecret() recovers from a transient 500 on retry", async () => {
  await withAwsSource(async (aws, source) => {
    aws.putSecret("app/db", { string: '{"K":"v"}' });
    aws.failNext("GetSecretValue", "InternalServiceError", 1);
    assert.deepEqual(await source.fetchSecret(secretQuery()), { K: "v" });
    assert.equal(aws.count("GetSecretValue"), 2);
  });
});

test("AwsSecretSource honours maxAttempts and the per-attempt request timeout", async () => {
  await withAwsSource(async (aws, source) => {
    aws.putSecret("app/db", { string: '{"K":"v"}' });
    aws.delayNext("GetSecretValue", 2000, 2);
    await rejectsWith(source.fetchSecret(secretQuery()), (error) => {
      assert.equal(error.code, "TimeoutError");
      assert.equal(error.retryable, true);
    });
    assert.equal(aws.count("GetSecretValue"), 2);
  }, { source: { maxAttempts: 2, requestTimeoutMs: 150 } });
});

test("AwsSecretSource.fetchSecret() reads every SSM page: 25 parameters in 3 pages", async () => {
  await withAwsSource(async (aws, source) => {
    const expected: Record<string, string> = {};
    for (let i = 0; i < 25; i++) {
      const key = `KEY_${String(i).padStart(2, "0")}`;
      expected[key] = `value-${i}`;
      aws.putParameter(`/app/prod/${key}`, `value-${i}`, i % 5 === 0 ? "SecureString" : "String");
    }
    aws.putParameter("/app/production/OTHER", "not under the path");
    const values = await source.fetchSecret(secretQuery({ ssmParameterPath: "/app/prod" }));
    assert.deepEqual(values, expected);
    const requests = aws.requests;
    assert.equal(requests.length, 3);
    for (const request of requests) {
      assert.equal(request.action, "GetParametersByPath");
      assert.equal(request.path, "/app/prod");
      assert.equal(request.recursive, true);
      assert.equal(request.withDecryption, true);
      assert.equal(request.maxResults, 10);
    }
    assert.deepEqual(requests.map((r) => r.withNextToken ?? false), [false, true, true]);
  });
});

test("AwsSecretSource.fetchSecret() reads nested SSM paths recursively, values verbatim", async () => {
  await withAwsSource(async (aws, source) => {
    aws.putParameter("/app/DB_HOST", "db.local");
    aws.putParameter("/app/db/DB_PORT", "5432");
    aws.putParameter("/app/deep/er/still/LIST", "a,b,c", "StringList");
    aws.putParameter("/app/deep/PIGGY_ALLOWED_SA", "default:app");
    assert.deepEqual(await source.fetchSecret(secretQuery({ ssmParameterPath: "/app" })), {
      DB_HOST: "db.local",
      DB_PORT: "5432",
      LIST: "a,b,c",
      PIGGY_ALLOWED_SA: "default:app",
    });
  });
});

test("AwsSecretSource.fetchSecret() fails on two SSM parameters with the same last element", async () => {
  await withAwsSource(async (aws, source) => {
    aws.putParameter("/app/a/PASSWORD", "CANARY-one");
    aws.putParameter("/app/b/PASSWORD", "CANARY-two");
    await rejectsWith(source.fetchSecret(secretQuery({ ssmParameterPath: "/app" })), (error) => {
      assert.equal(error.code, "ParameterNameCollision");
      assert.equal(
        error.message,
        `Cannot load parameters under "/app": "/app/a/PASSWORD" and "/app/b/PASSWORD" both map to key "PASSWORD"`,
      );
      assert.ok(!error.message.includes("CANARY"));
    });
  });
});

test("AwsSecretSource.fetchSecret() detects collisions across SSM pages", async () => {
  await withAwsSource(async (aws, source) => {
    for (let i = 0; i < 12; i++) aws.putParameter(`/app/a/K${String(i).padStart(2, "0")}`, "x");
    aws.putParameter("/app/b/K00", "y");
    await rejectsWith(source.fetchSecret(secretQuery({ ssmParameterPath: "/app" })), (error) => {
      assert.equal(error.code, "ParameterNameCollision");
      assert.match(error.message, /"\/app\/a\/K00" and "\/app\/b\/K00"/);
    });
    assert.equal(aws.count("GetParametersByPath"), 2);
  });
});

test("AwsSecretSource.fetchSecret() bounds the number of SSM pages", async () => {
  await withAwsSource(async (aws, source) => {
    for (let i = 0; i < 25; i++) aws.putParameter(`/big/K${i}`, "x");
    await rejectsWith(source.fetchSecret(secretQuery({ ssmParameterPath: "/big" })), (error) => {
      assert.equal(error.code, "TooManyParameterPages");
      assert.equal(error.message, `Cannot load parameters under "/big": more than 20 parameters`);
    });
    assert.equal(aws.count("GetParametersByPath"), 2);
  }, { source: { maxPages: 2 } });
});

test("AwsSecretSource.fetchSecret() surfaces SSM errors with the AWS error name", async () => {
  await withAwsSource(async (aws, source) => {
    await rejectsWith(
      source.fetchSecret(secretQuery({ ssmParameterPath: "no-slash" })),
      (error) => {
        assert.equal(error.code, "ValidationException");
        assert.equal(error.retryable, false);
        assert.match(error.message, /^Cannot load parameters under "no-slash": /);
      },
    );
    assert.equal(aws.count("GetParametersByPath"), 1);
  });
});

test("AwsSecretSource signs for the query's region, or the SDK's AWS_REGION when empty", async () => {
  await withAwsSource(async (aws, source) => {
    aws.putSecret("app/db", { string: '{"K":"v"}' });
    aws.putParameter("/p/K", "v");
    await source.fetchSecret(secretQuery());
    await source.fetchSecret(secretQuery({ region: "eu-west-1" }));
    await source.fetchSecret(secretQuery({ region: "ap-southeast-1", ssmParameterPath: "/p" }));
    assert.deepEqual(
      aws.requests.map((r) => [r.service, r.region]),
      [["secretsmanager", "eu-central-1"], ["secretsmanager", "eu-west-1"], [
        "ssm",
        "ap-southeast-1",
      ]],
    );
  }, { env: { region: "eu-central-1" } });
});

test("AwsSecretSource.fetchSecret() fails clearly when no region resolves", async () => {
  await withAwsSource(async (aws, source) => {
    await rejectsWith(source.fetchSecret(secretQuery()), (error) => {
      assert.equal(error.code, "RegionMissing");
      assert.match(error.message, /^Cannot load secret "app\/db": no AWS region is configured/);
    });
    assert.equal(aws.requests.length, 0);
  }, { env: { region: null } });
});

test("AwsSecretSource rejects malformed regions and keeps the most recently used clients", async () => {
  await withAwsSource(async (aws, source) => {
    aws.putSecret("app/db", { string: '{"K":"v"}' });
    for (const region of ["evil.example.com/", "US-EAST-1", "us east 1", "-us-east-1"]) {
      await rejectsWith(source.fetchSecret(secretQuery({ region })), (error) => {
        assert.equal(error.code, "InvalidRegion", region);
      });
    }
    await source.fetchSecret(secretQuery({ region: "us-east-1" }));
    await source.fetchSecret(secretQuery({ region: "eu-west-1" }));
    await source.fetchSecret(secretQuery({ region: "us-east-1" }));
    // A third region evicts the least recently used client (eu-west-1) instead of failing.
    await source.fetchSecret(secretQuery({ region: "ap-south-1" }));
    assert.equal(source.clientCount, 2);
    // Made-up regions cannot lock real ones out: every region still works, within the bound.
    for (const region of ["zz-1", "zz-2", "zz-3", "eu-west-1", "us-east-1"]) {
      await source.fetchSecret(secretQuery({ region }));
      assert.ok(source.clientCount <= 2);
    }
    // SSM has its own budget.
    await source.fetchSecret(secretQuery({ region: "ap-south-1", ssmParameterPath: "/p" }));
    assert.equal(source.clientCount, 3);
    assert.deepEqual(aws.requests.map((request) => request.region), [
      "us-east-1",
      "eu-west-1",
      "us-east-1",
      "ap-south-1",
      "zz-1",
      "zz-2",
      "zz-3",
      "eu-west-1",
      "us-east-1",
      "ap-south-1",
    ]);
  }, { source: { maxRegions: 2 } });
});

test("AwsSecretSource shares one IRSA exchange across regions and services", async () => {
  await withAwsSource(async (aws, source) => {
    aws.putSecret("app/db", { string: '{"K":"v"}' });
    aws.putParameter("/p/K", "v");
    await Promise.all([
      source.fetchSecret(secretQuery({ region: "us-east-1" })),
      source.fetchSecret(secretQuery({ region: "eu-west-1" })),
      source.fetchSecret(secretQuery({ region: "us-east-1", ssmParameterPath: "/p" })),
      source.fetchSecret(secretQuery({ region: "eu-west-1", ssmParameterPath: "/p" })),
    ]);
    await source.fetchSecret(secretQuery({ region: "eu-west-1" }));
    assert.equal(aws.count("AssumeRoleWithWebIdentity"), 1);
    assert.equal(source.clientCount, 4);
    const signed = aws.requests.filter((r) => r.service !== "sts");
    assert.equal(signed.length, 5);
    const keys = new Set(signed.map((r) => r.accessKeyId));
    assert.equal(keys.size, 1);
    assert.match([...keys][0]!, /^ASIA/);
    const sts = aws.requests.find((r) => r.service === "sts");
    assert.equal(sts?.roleArn, "arn:aws:iam::123456789012:role/piggy-test");
  }, { env: { credentials: "web-identity", perService: true } });
});

test("AwsSecretSource surfaces a refused web identity as a credentials error", async () => {
  await withAwsSource(async (aws, source) => {
    aws.failNext("AssumeRoleWithWebIdentity", "InvalidIdentityToken", 5);
    await rejectsWith(source.fetchSecret(secretQuery()), (error) => {
      // STS answers the code InvalidIdentityToken; the SDK names it with the Exception suffix.
      assert.equal(error.code, "InvalidIdentityTokenException");
      assert.equal(error.retryable, false);
    });
    assert.equal(aws.count("AssumeRoleWithWebIdentity"), 1);
    assert.equal(aws.count("GetSecretValue"), 0);
  }, { env: { credentials: "web-identity" } });
});

test("AwsSecretSource.fetchSecret() marks an unreachable endpoint as retryable", async () => {
  const aws = await startAwsStandIn();
  const env = aws.env();
  await aws.close();
  const source = new AwsSecretSource();
  try {
    await withEnv(env, async () => {
      await rejectsWith(source.fetchSecret(secretQuery()), (error) => {
        assert.equal(error.retryable, true);
        assert.equal(error.code, "ECONNREFUSED");
        assert.match(error.message, /^Cannot load secret "app\/db": /);
      });
    });
  } finally {
    source.destroy();
  }
});

test("AwsSecretSource.fetchSecret() stops when the signal aborts", async () => {
  await withAwsSource(async (aws, source) => {
    aws.putSecret("app/db", { string: '{"K":"v"}' });
    aws.delayNext("GetSecretValue", 2000);
    const controller = new AbortController();
    const pending = source.fetchSecret(secretQuery(), { signal: controller.signal });
    // Abort once the call is in flight (a loaded machine may take long to send it).
    for (let waited = 0; aws.requests.length === 0 && waited < 10_000; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    controller.abort();
    await rejectsWith(pending, (error) => {
      assert.equal(error.code, "AbortError");
      assert.equal(error.retryable, false);
    });
    assert.equal(aws.count("GetSecretValue"), 1);
  });
});

test("AwsSecretSource never writes secret values to its logs or errors", async () => {
  const lines: string[] = [];
  const logger = new Logger({ level: "debug", sink: (line) => lines.push(line) });
  const canary = "CANARY-91f0e4-value";
  await withAwsSource(async (aws, source) => {
    aws.putSecret("app/db", { string: JSON.stringify({ TOKEN: canary, PORT: 1 }) });
    aws.putParameter("/app/TOKEN", canary, "SecureString");
    aws.putParameter("/dup/a/TOKEN", canary);
    aws.putParameter("/dup/b/TOKEN", canary);
    const errors: string[] = [];
    assert.equal((await source.fetchSecret(secretQuery())).TOKEN, canary);
    assert.equal(
      (await source.fetchSecret(secretQuery({ ssmParameterPath: "/app" }))).TOKEN,
      canary,
    );
    await source.fetchSecret(secretQuery({ ssmParameterPath: "/dup" })).catch((e) =>
      errors.push(String(e), JSON.stringify(e))
    );
    aws.failNext("GetSecretValue", "DecryptionFailure");
    await source.fetchSecret(secretQuery()).catch((e) => errors.push(String(e)));
    assert.equal(errors.length, 3);
    assert.ok(lines.length >= 2, "debug lines were written");
    for (const text of [...lines, ...errors, JSON.stringify(aws.requests)]) {
      assert.ok(!text.includes(canary), text);
    }
  }, { source: { logger } });
});

test("isRetryableAwsError() accepts throttling, 5xx, timeouts and network errors only", () => {
  const error = (fields: Record<string, unknown>) => Object.assign(new Error("x"), fields);
  const retryable = [
    error({ name: "ThrottlingException", $metadata: { httpStatusCode: 400 } }),
    error({ name: "TooManyRequestsException" }),
    error({ name: "Anything", $metadata: { httpStatusCode: 429 } }),
    error({ name: "InternalServiceError", $metadata: { httpStatusCode: 500 } }),
    error({ name: "ServiceUnavailable", $metadata: { httpStatusCode: 503 } }),
    error({ name: "TimeoutError" }),
    error({ code: "ECONNRESET" }),
  ];
  const final = [
    error({ name: "AccessDeniedException", $metadata: { httpStatusCode: 400 } }),
    error({ name: "ResourceNotFoundException", $metadata: { httpStatusCode: 400 } }),
    error({ name: "DecryptionFailure", $metadata: { httpStatusCode: 400 } }),
    error({ name: "ValidationException", $metadata: { httpStatusCode: 400 } }),
    error({ name: "CredentialsProviderError" }),
    error({ name: "AbortError" }),
    "not an error",
    null,
  ];
  for (const e of retryable) assert.equal(isRetryableAwsError(e), true, String(e));
  for (const e of final) assert.equal(isRetryableAwsError(e), false, String(e));
});

test("toSecretSourceError() keeps the AWS name as code and one line of message", () => {
  const cause = Object.assign(new Error("Rate\n   exceeded"), { name: "ThrottlingException" });
  const wrapped = toSecretSourceError('Cannot load secret "s"', cause);
  assert.equal(wrapped.code, "ThrottlingException");
  assert.equal(wrapped.message, 'Cannot load secret "s": Rate exceeded');
  assert.equal(wrapped.cause, cause);
  assert.equal(wrapped.retryable, true);
  const long = toSecretSourceError("Cannot load secret", new Error("y".repeat(1000)));
  assert.ok(long.message.length < 400);
  assert.equal(toSecretSourceError("Cannot load secret", "text").code, "UnknownError");
  const already = new SecretSourceError("Cannot load secret: kept", { code: "Kept" });
  assert.equal(toSecretSourceError("ignored", already), already);
});
