import assert from "node:assert/strict";
import { test } from "node:test";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SecretSourceError } from "../errors.ts";
import { withAwsSource } from "../../testing/aws_source.ts";

const NODE_KEY = "ASIANODEROLE00000001";

/** A loopback EC2 instance metadata service (IMDSv2) that hands out the node's role. */
async function startFakeImds(): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server: Server = createServer((request, response) => {
    hits.push(`${request.method} ${request.url}`);
    const path = request.url ?? "";
    if (request.method === "PUT" && path === "/latest/api/token") {
      response.end("imds-session-token");
    } else if (path === "/latest/meta-data/iam/security-credentials/") {
      response.end("node-role");
    } else if (path === "/latest/meta-data/iam/security-credentials/node-role") {
      response.end(JSON.stringify({
        Code: "Success",
        Type: "AWS-HMAC",
        AccessKeyId: NODE_KEY,
        SecretAccessKey: "node-secret",
        Token: "node-session",
        Expiration: new Date(Date.now() + 3_600_000).toISOString(),
      }));
    } else {
      response.statusCode = 404;
      response.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Env with the AWS stand-in's endpoint and region but no credentials of any kind. */
function noIdentityEnv(endpoint: Record<string, string>, imdsUrl: string) {
  const env: Record<string, string | undefined> = { ...endpoint };
  delete env.AWS_ACCESS_KEY_ID;
  delete env.AWS_SECRET_ACCESS_KEY;
  delete env.AWS_EC2_METADATA_DISABLED;
  return {
    ...env,
    AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsUrl,
    AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/piggy-test/credentials",
    AWS_CONFIG_FILE: "/nonexistent/piggy-test/config",
  };
}

const QUERY = { kind: "secretsManager", name: "app/db", region: "us-east-1", version: "" } as const;

test("AwsSecretSource never falls back to the node's instance role by default", async () => {
  const imds = await startFakeImds();
  try {
    await withAwsSource(async (aws, source) => {
      aws.putSecret("app/db", { string: '{"K":"v"}' });
      await assert.rejects(source.fetchSecret(QUERY), (error: unknown) => {
        assert.ok(error instanceof SecretSourceError);
        assert.match(error.message, /the node's instance role is not used/);
        return true;
      });
      assert.deepEqual(imds.hits, [], "the metadata service was never asked");
      assert.equal(aws.count("GetSecretValue"), 0);
    }, { env: (aws) => noIdentityEnv(aws.env(), imds.url), source: { maxAttempts: 1 } });
  } finally {
    await imds.close();
  }
});

test("AwsSecretSource uses the instance role only when the operator allows it", async () => {
  const imds = await startFakeImds();
  try {
    await withAwsSource(async (aws, source) => {
      aws.putSecret("app/db", { string: '{"K":"v"}' });
      // The stand-in does not know the node's key, so the read itself is refused: what matters
      // is which identity signed it.
      await assert.rejects(source.fetchSecret(QUERY), SecretSourceError);
      assert.ok(imds.hits.includes("GET /latest/meta-data/iam/security-credentials/node-role"));
      assert.equal(aws.requests.at(-1)?.accessKeyId, NODE_KEY);
    }, {
      env: (aws) => noIdentityEnv(aws.env(), imds.url),
      source: { maxAttempts: 1, allowInstanceMetadata: true },
    });
  } finally {
    await imds.close();
  }
});
