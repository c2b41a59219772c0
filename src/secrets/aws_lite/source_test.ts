import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { SecretSourceError } from "../../errors.ts";
import { AwsSecretSource } from "../aws_source.ts";
import { withEnv } from "../../../testing/aws.ts";
import { requestText } from "../../runtime/http_post.ts";
import { AwsHttp } from "./http.ts";
import { SECRETS_MANAGER } from "./endpoints.ts";
import { LightAwsSource } from "./source.ts";

/** A loopback endpoint that answers each request with the next of `answers`. */
async function withEndpoint(
  answers: Array<{ status: number; headers?: Record<string, string>; body: string }>,
  run: (url: URL) => Promise<void>,
): Promise<void> {
  let next = 0;
  const server: Server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      const answer = answers[Math.min(next++, answers.length - 1)]!;
      response.writeHead(answer.status, answer.headers ?? {});
      response.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await run(new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Every message of an error and its causes. */
function messages(error: unknown): string {
  const parts: string[] = [];
  for (let at: unknown = error; at instanceof Error; at = at.cause) {
    parts.push(at.message, JSON.stringify(Object.entries(at)));
  }
  return parts.join("\n");
}

test("LightAwsSource and the SDK quote no part of an answer that is not valid JSON", async () => {
  // JSON.parse's message quotes the text around the fault: here, part of the secret.
  const body = '{"Name":"app/db","SecretString":hunter2-the-password}';
  await withEndpoint([{ status: 200, body }], async (url) => {
    const env: Record<string, string> = {
      AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
      AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL: url.href,
    };
    const light = new LightAwsSource({
      env: (name) => env[name],
      readTextFile: () => Promise.reject(new Error("no files here")),
      send: requestText,
    });
    const sdk = new AwsSecretSource({ maxAttempts: 1 });
    try {
      for (const source of [light, sdk]) {
        await withEnv(env, () =>
          assert.rejects(
            source.fetchSecret({ kind: "secretsManager", name: "app/db", region: "", version: "" }),
            (error: unknown) => {
              assert.ok(error instanceof SecretSourceError);
              assert.equal(
                error.message,
                'Cannot load secret "app/db": the answer is not valid JSON',
              );
              assert.doesNotMatch(messages(error), /hunter2/);
              return true;
            },
          ));
      }
    } finally {
      sdk.destroy();
    }
  });
});

test("AwsHttp waits as after throttling for every throttling error the SDK knows", async () => {
  for (const name of ["LimitExceededException", "ProvisionedThroughputExceededException"]) {
    const waits: number[] = [];
    const http = new AwsHttp({
      send: requestText,
      random: () => 0.5,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
    await withEndpoint([
      { status: 400, headers: { "x-amzn-errortype": name }, body: "{}" },
      { status: 200, body: "{}" },
    ], async (url) => {
      const answer = await http.send({
        service: SECRETS_MANAGER,
        region: "us-east-1",
        endpoint: url,
        protocol: "json",
        body: "{}",
      });
      assert.equal(answer.attempts, 2);
    });
    // The SDK's standard mode: 500 ms base after throttling (100 ms otherwise), 0.5 × 2¹ × base.
    assert.deepEqual(waits, [500], name);
  }
});

test("LightAwsSource reads SSM parameters page after page, up to maxPages", async () => {
  const pages = [
    { status: 200, body: '{"Parameters":[{"Name":"/app/A","Value":"1"}],"NextToken":"t1"}' },
    { status: 200, body: '{"Parameters":[{"Name":"/app/sub/B","Value":"2"}]}' },
  ];
  for (const maxPages of [2, 1]) {
    await withEndpoint(pages, async (url) => {
      const env: Record<string, string> = {
        AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        AWS_REGION: "us-east-1",
        AWS_ENDPOINT_URL: url.href,
      };
      const source = new LightAwsSource({
        env: (name) => env[name],
        readTextFile: () => Promise.reject(new Error("no files here")),
        send: requestText,
        maxPages,
      });
      const read = source.fetchSecret({ kind: "ssm", path: "/app", region: "" });
      if (maxPages === 2) assert.deepEqual(await read, { A: "1", B: "2" });
      else {
        await assert.rejects(read, (error: unknown) => {
          assert.ok(error instanceof SecretSourceError);
          assert.equal(error.code, "TooManyParameterPages");
          return true;
        });
      }
    });
  }
});
