/**
 * The light client's SigV4 against the AWS SDK's own signer (`@smithy/signature-v4`) as the
 * oracle: the same requests signed at the same time with the same keys give the same
 * `authorization` header, for every service, region, credential kind and request shape used here
 * (and some that are not: a path, a query, odd header spacing).
 */

import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { test } from "node:test";
import { SignatureV4 } from "@smithy/signature-v4";
import { amzDate, type AwsCredentials, signRequest } from "./sigv4.ts";

/** Bytes of the SDK's `SourceData`. */
function bytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The SDK's `Checksum` interface over node:crypto (plain SHA-256, or HMAC with a secret). */
class Sha256 {
  readonly #hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
  reset(): void {}
}

interface Case {
  name: string;
  service: string;
  region: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  credentials: AwsCredentials;
}

const STATIC: AwsCredentials = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};
const TEMPORARY: AwsCredentials = {
  accessKeyId: "ASIAEXAMPLE0000000000",
  secretAccessKey: "c2VjcmV0LWtleS1vZi1hLXNlc3Npb24=",
  sessionToken: "FwoGZXIvYXdzE//////////session+token/with=padding==",
};

const CASES: Case[] = [
  {
    name: "Secrets Manager GetSecretValue, static keys",
    service: "secretsmanager",
    region: "eu-west-1",
    url: "https://secretsmanager.eu-west-1.amazonaws.com/",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "secretsmanager.GetSecretValue",
    },
    body: '{"SecretId":"app/db","VersionStage":"AWSCURRENT"}',
    credentials: STATIC,
  },
  {
    name: "SSM GetParametersByPath, session token, loopback endpoint with a port",
    service: "ssm",
    region: "us-east-1",
    url: "http://127.0.0.1:43127/",
    headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": "AmazonSSM.GetParametersByPath",
    },
    body:
      '{"Path":"/app/prod","Recursive":true,"WithDecryption":true,"MaxResults":10,"NextToken":"a+b/c=="}',
    credentials: TEMPORARY,
  },
  {
    name: "STS query protocol, China partition",
    service: "sts",
    region: "cn-north-1",
    url: "https://sts.cn-north-1.amazonaws.com.cn/",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr",
    credentials: TEMPORARY,
  },
  {
    name: "a path, a query and spaces inside a header value",
    service: "secretsmanager",
    region: "ap-southeast-1",
    url: "https://proxy.example:8443/aws/sm/a%20b/./c/../d?b=2&a=1&a=0&z=x%2Fy&e=!'()*",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "secretsmanager.GetSecretValue",
      "x-custom": "  several   spaces\tand a tab  ",
    },
    body: '{"SecretId":"ünïcödé/näme"}',
    credentials: STATIC,
  },
  {
    name: "empty body",
    service: "ssm",
    region: "us-gov-west-1",
    url: "https://ssm.us-gov-west-1.amazonaws.com/",
    headers: { "content-type": "application/x-amz-json-1.1" },
    body: "",
    credentials: TEMPORARY,
  },
];

async function sdkSignature(item: Case, date: Date): Promise<Record<string, string>> {
  const url = new URL(item.url);
  const signer = new SignatureV4({
    service: item.service,
    region: item.region,
    credentials: {
      accessKeyId: item.credentials.accessKeyId,
      secretAccessKey: item.credentials.secretAccessKey,
      ...(item.credentials.sessionToken ? { sessionToken: item.credentials.sessionToken } : {}),
    },
    sha256: Sha256,
  });
  const query: Record<string, string | string[]> = {};
  for (const [name, value] of url.searchParams) {
    const previous = query[name];
    query[name] = previous === undefined
      ? value
      : Array.isArray(previous)
      ? [...previous, value]
      : [previous, value];
  }
  const signed = await signer.sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    query,
    headers: { ...item.headers, host: url.host },
    body: item.body,
  }, { signingDate: date });
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(signed.headers)) headers[name.toLowerCase()] = value;
  return headers;
}

for (const item of CASES) {
  test(`signRequest() signs as the AWS SDK does: ${item.name}`, async () => {
    const date = new Date("2026-03-14T15:09:26Z");
    const ours = await signRequest(
      { method: "POST", url: new URL(item.url), headers: item.headers, body: item.body },
      { service: item.service, region: item.region, credentials: item.credentials, date },
    );
    const sdk = await sdkSignature(item, date);
    assert.equal(ours.authorization, sdk.authorization);
    assert.equal(ours["x-amz-date"], sdk["x-amz-date"]);
    assert.equal(ours["x-amz-security-token"], sdk["x-amz-security-token"]);
  });
}

test("signRequest() reuses the day's signing key and derives a new one for another day", async () => {
  const item = CASES[0]!;
  const request = {
    method: "POST",
    url: new URL(item.url),
    headers: item.headers,
    body: item.body,
  };
  const credentials = { ...STATIC };
  for (const day of ["2026-03-14T00:00:01Z", "2026-03-14T23:59:59Z", "2026-03-15T00:00:00Z"]) {
    const date = new Date(day);
    const ours = await signRequest(request, {
      service: item.service,
      region: item.region,
      credentials,
      date,
    });
    assert.equal(
      ours.authorization,
      (await sdkSignature({ ...item, credentials }, date)).authorization,
    );
  }
  // A wrong key gives another signature: the comparison above can fail.
  const wrong = await signRequest(request, {
    service: item.service,
    region: item.region,
    credentials: { ...STATIC, secretAccessKey: "other" },
    date: new Date("2026-03-14T00:00:01Z"),
  });
  const right = await sdkSignature(item, new Date("2026-03-14T00:00:01Z"));
  assert.notEqual(wrong.authorization, right.authorization);
});

test("amzDate() is the basic ISO 8601 form", () => {
  assert.equal(amzDate(new Date("2026-03-04T05:06:07.891Z")), "20260304T050607Z");
});
