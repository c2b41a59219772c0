import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import process from "node:process";
import { test } from "node:test";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { GetParametersByPathCommand, SSMClient } from "@aws-sdk/client-ssm";
import {
  type AwsStandIn,
  DEFAULT_ROLE_ARN,
  startAwsStandIn,
  STATIC_CREDENTIALS,
  withEnv,
} from "./aws.ts";

/** SDK clients aimed at the stand-in with explicit settings, so no environment is involved. */
function clients(
  aws: AwsStandIn,
  region = "us-east-1",
  credentials: { accessKeyId: string; secretAccessKey: string } = STATIC_CREDENTIALS,
) {
  const config = { endpoint: aws.url, region, credentials: { ...credentials }, maxAttempts: 1 };
  return { sm: new SecretsManagerClient(config), ssm: new SSMClient(config) };
}

async function withStandIn(
  fn: (aws: AwsStandIn, c: ReturnType<typeof clients>) => void | Promise<void>,
  options: Parameters<typeof startAwsStandIn>[0] = {},
): Promise<void> {
  const aws = await startAwsStandIn(options);
  const c = clients(aws);
  try {
    await fn(aws, c);
  } finally {
    c.sm.destroy();
    c.ssm.destroy();
    await aws.close();
  }
}

async function rejectsWithName(promise: Promise<unknown>, name: string): Promise<unknown> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    assert.equal((error as Error).name, name, String(error));
    caught = error;
    return true;
  });
  return caught;
}

function rawPost(aws: AwsStandIn, target: string, headers: Record<string, string> = {}) {
  return fetch(aws.url, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": target,
      ...headers,
    },
    body: JSON.stringify({ SecretId: "app/db" }),
  });
}

test("AWS stand-in rejects an unsigned Secrets Manager request", async () => {
  await withStandIn(async (aws) => {
    aws.putSecret("app/db", { string: '{"K":"v"}' });
    const response = await rawPost(aws, "secretsmanager.GetSecretValue");
    assert.equal(response.status, 403);
    assert.match(
      response.headers.get("x-amzn-errortype") ?? "",
      /^MissingAuthenticationTokenException/,
    );
    const body = await response.json();
    assert.equal(body.__type, "MissingAuthenticationTokenException");
    assert.equal(aws.count("GetSecretValue"), 0);
    assert.equal(aws.count("Rejected"), 1);
  });
});

test("AWS stand-in rejects a signature scoped to another service or not verifiable", async () => {
  await withStandIn(async (aws) => {
    const date = new Date().toISOString().replace(/[-:]|\.\d{3}/g, "");
    const authorization = (service: string) =>
      `AWS4-HMAC-SHA256 Credential=${STATIC_CREDENTIALS.accessKeyId}/${
        date.slice(0, 8)
      }/us-east-1/${service}/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=${
        "0".repeat(64)
      }`;
    const wrongService = await rawPost(aws, "secretsmanager.GetSecretValue", {
      authorization: authorization("ssm"),
      "x-amz-date": date,
    });
    assert.equal(wrongService.status, 403);
    assert.match(
      (await wrongService.json()).message,
      /scoped to correct service: 'secretsmanager'/,
    );
    const forged = await rawPost(aws, "AmazonSSM.GetParametersByPath", {
      authorization: authorization("ssm"),
      "x-amz-date": date,
    });
    assert.equal(forged.status, 403);
    assert.equal((await forged.json()).__type, "InvalidSignatureException");
    assert.equal(aws.count("Rejected"), 2);
    assert.deepEqual(aws.requests.map((r) => r.region), ["us-east-1", "us-east-1"]);
  });
});

test("AWS stand-in verifies the SigV4 signature of SDK requests", async () => {
  await withStandIn(async (aws, { sm }) => {
    aws.putSecret("app/db", { string: '{"K":"v"}' });
    const ok = await sm.send(new GetSecretValueCommand({ SecretId: "app/db" }));
    assert.equal(ok.SecretString, '{"K":"v"}');
    assert.equal(aws.requests[0]?.accessKeyId, STATIC_CREDENTIALS.accessKeyId);

    const wrongKey = clients(aws, "us-east-1", {
      accessKeyId: STATIC_CREDENTIALS.accessKeyId,
      secretAccessKey: "not-the-right-secret-key",
    });
    const unknownKey = clients(aws, "us-east-1", {
      accessKeyId: "AKIAUNKNOWN000000000",
      secretAccessKey: STATIC_CREDENTIALS.secretAccessKey,
    });
    try {
      await rejectsWithName(
        wrongKey.sm.send(new GetSecretValueCommand({ SecretId: "app/db" })),
        "InvalidSignatureException",
      );
      await rejectsWithName(
        unknownKey.sm.send(new GetSecretValueCommand({ SecretId: "app/db" })),
        "UnrecognizedClientException",
      );
    } finally {
      for (const c of [wrongKey, unknownKey]) {
        c.sm.destroy();
        c.ssm.destroy();
      }
    }

    // A body changed after signing no longer matches the signature.
    type Args = { request: { body?: unknown } };
    const tamper = ((next: (args: Args) => Promise<unknown>) => (args: Args) => {
      // Same length, so only the signature can tell.
      args.request.body = JSON.stringify({ SecretId: "app/xx" });
      return next(args);
    }) as unknown as Parameters<typeof sm.middlewareStack.addRelativeTo>[0];
    sm.middlewareStack.addRelativeTo(
      tamper,
      { relation: "after", toMiddleware: "httpSigningMiddleware", name: "tamper" },
    );
    await rejectsWithName(
      sm.send(new GetSecretValueCommand({ SecretId: "app/db" })),
      "InvalidSignatureException",
    );
    assert.equal(aws.count("GetSecretValue"), 1);
    assert.equal(aws.count("Rejected"), 3);
  });
});

test("AWS stand-in rejects another region when one is expected", async () => {
  await withStandIn(async (aws, { sm }) => {
    aws.putSecret("app/db", { string: "{}" });
    await rejectsWithName(
      sm.send(new GetSecretValueCommand({ SecretId: "app/db" })),
      "InvalidSignatureException",
    );
    const right = clients(aws, "eu-west-1");
    try {
      await right.sm.send(new GetSecretValueCommand({ SecretId: "app/db" }));
    } finally {
      right.sm.destroy();
      right.ssm.destroy();
    }
    assert.deepEqual(aws.requests.map((r) => [r.region, r.status]), [
      ["us-east-1", 403],
      ["eu-west-1", 200],
    ]);
  }, { expectRegion: "eu-west-1" });
});

test("AWS stand-in selects secret versions by VersionId and VersionStage", async () => {
  await withStandIn(async (aws, { sm }) => {
    const first = aws.putSecret("app/db", { string: '{"V":"1"}' });
    const second = aws.putSecret("app/db", { string: '{"V":"2"}' });
    aws.putSecret("app/db", { versionId: first, stages: ["AWSPREVIOUS"], string: '{"V":"1"}' });
    const get = (input: { VersionId?: string; VersionStage?: string }) =>
      sm.send(new GetSecretValueCommand({ SecretId: "app/db", ...input }));
    assert.equal((await get({})).VersionId, second);
    assert.deepEqual((await get({})).VersionStages, ["AWSCURRENT"]);
    assert.equal((await get({ VersionStage: "AWSPREVIOUS" })).SecretString, '{"V":"1"}');
    assert.equal((await get({ VersionId: first })).SecretString, '{"V":"1"}');
    await rejectsWithName(
      get({ VersionId: first, VersionStage: "AWSCURRENT" }),
      "InvalidRequestException",
    );
    await rejectsWithName(get({ VersionStage: "AWSPENDING" }), "ResourceNotFoundException");
    await rejectsWithName(get({ VersionStage: "" }), "ValidationException");
    await rejectsWithName(get({ VersionId: "short" }), "ValidationException");
    await rejectsWithName(
      sm.send(new GetSecretValueCommand({ SecretId: "missing" })),
      "ResourceNotFoundException",
    );
  });
});

test("AWS stand-in answers SecretBinary and injected errors with their HTTP status", async () => {
  await withStandIn(async (aws, { sm }) => {
    aws.putSecret("bin", { binary: new Uint8Array([1, 2, 3]) });
    const binary = await sm.send(new GetSecretValueCommand({ SecretId: "bin" }));
    assert.deepEqual([...(binary.SecretBinary ?? [])], [1, 2, 3]);
    assert.equal(binary.SecretString, undefined);
    const expected: [string, number][] = [
      ["ThrottlingException", 400],
      ["InternalServiceError", 500],
      ["AccessDeniedException", 400],
      ["DecryptionFailure", 400],
    ];
    for (const [name, status] of expected) {
      aws.failNext("GetSecretValue", name);
      const error = await rejectsWithName(
        sm.send(new GetSecretValueCommand({ SecretId: "bin" })),
        name,
      ) as { $metadata: { httpStatusCode?: number } };
      assert.equal(error.$metadata.httpStatusCode, status, name);
    }
    await sm.send(new GetSecretValueCommand({ SecretId: "bin" }));
    assert.equal(aws.count("GetSecretValue"), 6);
  });
});

test("AWS stand-in pages GetParametersByPath honouring MaxResults", async () => {
  await withStandIn(async (aws, { ssm }) => {
    for (let i = 0; i < 7; i++) aws.putParameter(`/app/K${i}`, `v${i}`);
    const sizes: number[] = [];
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await ssm.send(
        new GetParametersByPathCommand({
          Path: "/app",
          MaxResults: 3,
          ...(token ? { NextToken: token } : {}),
        }),
      );
      sizes.push(page.Parameters?.length ?? 0);
      names.push(...(page.Parameters ?? []).map((p) => p.Name ?? ""));
      token = page.NextToken;
    } while (token);
    assert.deepEqual(sizes, [3, 3, 1]);
    assert.deepEqual(names, Array.from({ length: 7 }, (_, i) => `/app/K${i}`));
    await rejectsWithName(
      ssm.send(new GetParametersByPathCommand({ Path: "/app", MaxResults: 11 })),
      "ValidationException",
    );
    await rejectsWithName(
      ssm.send(new GetParametersByPathCommand({ Path: "/app", NextToken: "bogus" })),
      "InvalidNextToken",
    );
  });
});

test("AWS stand-in applies Recursive and WithDecryption as SSM does", async () => {
  await withStandIn(async (aws, { ssm }) => {
    aws.putParameter("/app/TOP", "top");
    aws.putParameter("/app/sub/DEEP", "deep");
    aws.putParameter("/app/PASSWORD", "plain-text-secret", "SecureString");
    aws.putParameter("/application/OTHER", "other");
    const read = async (input: { Recursive?: boolean; WithDecryption?: boolean }) => {
      const page = await ssm.send(new GetParametersByPathCommand({ Path: "/app", ...input }));
      return Object.fromEntries((page.Parameters ?? []).map((p) => [p.Name, p.Value]));
    };
    const direct = await read({ WithDecryption: true });
    assert.deepEqual(direct, { "/app/PASSWORD": "plain-text-secret", "/app/TOP": "top" });
    const recursive = await read({ Recursive: true });
    assert.deepEqual(Object.keys(recursive), ["/app/PASSWORD", "/app/TOP", "/app/sub/DEEP"]);
    assert.notEqual(recursive["/app/PASSWORD"], "plain-text-secret");
    assert.deepEqual(
      aws.requests.map((r) => [r.recursive, r.withDecryption, r.maxResults]),
      [[false, true, 10], [true, false, 10]],
    );
  });
});

test("AWS stand-in STS issues temporary credentials only for a registered web identity", async () => {
  await withStandIn(async (aws) => {
    aws.registerWebIdentity("good-token", DEFAULT_ROLE_ARN);
    const assume = (token: string, roleArn = DEFAULT_ROLE_ARN) =>
      fetch(aws.url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          Action: "AssumeRoleWithWebIdentity",
          Version: "2011-06-15",
          RoleArn: roleArn,
          RoleSessionName: "test",
          WebIdentityToken: token,
        }),
      });
    const unknown = await assume("bad-token");
    assert.equal(unknown.status, 400);
    assert.match(await unknown.text(), /<Code>InvalidIdentityToken<\/Code>/);
    const otherRole = await assume("good-token", "arn:aws:iam::123456789012:role/other");
    assert.equal(otherRole.status, 403);
    assert.match(await otherRole.text(), /<Code>AccessDenied<\/Code>/);
    const ok = await assume("good-token");
    assert.equal(ok.status, 200);
    const xml = await ok.text();
    const accessKeyId = /<AccessKeyId>(ASIA[A-Z2-7]{16})<\/AccessKeyId>/.exec(xml)?.[1];
    const secretAccessKey = /<SecretAccessKey>([^<]+)<\/SecretAccessKey>/.exec(xml)?.[1];
    const sessionToken = /<SessionToken>([^<]+)<\/SessionToken>/.exec(xml)?.[1];
    const expiration = /<Expiration>([^<]+)<\/Expiration>/.exec(xml)?.[1];
    assert.ok(accessKeyId && secretAccessKey && sessionToken && expiration);
    const lifetime = Date.parse(expiration) - Date.now();
    assert.ok(lifetime > 55 * 60_000 && lifetime <= 60 * 60_000, `lifetime ${lifetime}`);
    assert.equal(aws.count("AssumeRoleWithWebIdentity"), 3);

    // The issued keys sign SDK requests; without the session token they are refused.
    aws.putSecret("app/db", { string: "{}" });
    const temporary = new SecretsManagerClient({
      endpoint: aws.url,
      region: "us-east-1",
      maxAttempts: 1,
      credentials: { accessKeyId, secretAccessKey, sessionToken },
    });
    const noToken = new SecretsManagerClient({
      endpoint: aws.url,
      region: "us-east-1",
      maxAttempts: 1,
      credentials: { accessKeyId, secretAccessKey },
    });
    try {
      await temporary.send(new GetSecretValueCommand({ SecretId: "app/db" }));
      await rejectsWithName(
        noToken.send(new GetSecretValueCommand({ SecretId: "app/db" })),
        "UnrecognizedClientException",
      );
    } finally {
      temporary.destroy();
      noToken.destroy();
    }
    assert.equal(aws.requests.at(-2)?.accessKeyId, accessKeyId);
  });
});

test("AwsStandIn.env() describes static and web-identity setups", async () => {
  await withStandIn((aws) => {
    const staticEnv = aws.env();
    assert.equal(staticEnv.AWS_ENDPOINT_URL, aws.url);
    assert.equal(staticEnv.AWS_EC2_METADATA_DISABLED, "true");
    assert.equal(staticEnv.AWS_REGION, "us-east-1");
    assert.equal(staticEnv.AWS_ACCESS_KEY_ID, STATIC_CREDENTIALS.accessKeyId);
    assert.equal(staticEnv.AWS_ROLE_ARN, undefined);

    const irsa = aws.env({ credentials: "web-identity", perService: true, region: null });
    assert.equal(irsa.AWS_ENDPOINT_URL, undefined);
    assert.equal(irsa.AWS_ENDPOINT_URL_SECRETS_MANAGER, aws.url);
    assert.equal(irsa.AWS_ENDPOINT_URL_SSM, aws.url);
    assert.equal(irsa.AWS_ENDPOINT_URL_STS, aws.url);
    assert.equal(irsa.AWS_REGION, undefined);
    assert.equal(irsa.AWS_ACCESS_KEY_ID, undefined);
    assert.equal(irsa.AWS_ROLE_ARN, DEFAULT_ROLE_ARN);
    const tokenFile = irsa.AWS_WEB_IDENTITY_TOKEN_FILE ?? "";
    assert.ok(existsSync(tokenFile));
    assert.ok(readFileSync(tokenFile, "utf8").length > 0);
  });
});

test("withEnv() hides other AWS_* variables and restores everything afterwards", async () => {
  // Outside withEnv, other test files may be using process.env in this process at the same time:
  // touch only variables the SDK ignores, and assert on AWS_* ones only inside withEnv.
  const marker = "AWS_PIGGY_TEST_MARKER";
  process.env[marker] = "outer";
  process.env.PIGGY_TEST_OUTER = "outer";
  try {
    const seen = await withEnv(
      { AWS_REGION: "eu-west-1", PIGGY_TEST_OUTER: "inner", PIGGY_TEST_EXTRA: "1" },
      () => ({
        marker: process.env[marker],
        region: process.env.AWS_REGION,
        outer: process.env.PIGGY_TEST_OUTER,
        extra: process.env.PIGGY_TEST_EXTRA,
      }),
    );
    assert.deepEqual(seen, { marker: undefined, region: "eu-west-1", outer: "inner", extra: "1" });
    assert.equal(process.env.PIGGY_TEST_OUTER, "outer");
    assert.equal(process.env.PIGGY_TEST_EXTRA, undefined);
    await assert.rejects(
      withEnv({ PIGGY_TEST_OUTER: "thrown" }, () => Promise.reject(new Error("boom"))),
      /boom/,
    );
    assert.equal(process.env.PIGGY_TEST_OUTER, "outer");
  } finally {
    delete process.env[marker];
    delete process.env.PIGGY_TEST_OUTER;
  }
});
