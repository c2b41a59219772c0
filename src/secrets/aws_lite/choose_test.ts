import assert from "node:assert/strict";
import { test } from "node:test";
import { chooseAwsClient } from "./choose.ts";
import { containerUrlAllowed } from "./credentials.ts";
import { dnsSuffix, endpointFor, SECRETS_MANAGER, SSM, STS } from "./endpoints.ts";

function choose(env: Record<string, string>, files: string[] = []) {
  return chooseAwsClient((name) => env[name], (path) => Promise.resolve(files.includes(path)));
}

test("chooseAwsClient() keeps the light client for a pod's usual environment", async () => {
  for (
    const env of [
      { HOME: "/root" },
      { HOME: "/home/app", AWS_ACCESS_KEY_ID: "A", AWS_SECRET_ACCESS_KEY: "S" },
      {
        HOME: "/",
        AWS_ROLE_ARN: "arn",
        AWS_WEB_IDENTITY_TOKEN_FILE: "/t",
        AWS_REGION: "eu-west-1",
      },
      { HOME: "/", AWS_CONTAINER_CREDENTIALS_FULL_URI: "http://169.254.170.23/v1/credentials" },
      { HOME: "/", AWS_USE_FIPS_ENDPOINT: "false", AWS_ENDPOINT_URL: "http://127.0.0.1:1" },
      { HOME: "/", AWS_CONFIG_FILE: "/absent/config" },
      // The light client honours the proxy variables (proxy_env.ts); ALL_PROXY is not read.
      { HOME: "/", HTTPS_PROXY: "http://proxy:3128", NO_PROXY: "169.254.170.23" },
      { HOME: "/", https_proxy: "proxy:3128", HTTP_PROXY: "http://proxy:3128" },
      { HOME: "/", ALL_PROXY: "socks5://proxy:1080" },
    ]
  ) {
    assert.deepEqual(await choose(env), { client: "light" }, JSON.stringify(env));
  }
});

test("chooseAwsClient() takes the SDK for what only the SDK does, and says why", async () => {
  const cases: [Record<string, string>, string[], string][] = [
    [{ HOME: "/root", AWS_PROFILE: "dev" }, [], "AWS_PROFILE is set"],
    [{ HOME: "/root", AWS_USE_FIPS_ENDPOINT: "TRUE" }, [], "AWS_USE_FIPS_ENDPOINT is true"],
    [
      { HOME: "/root", AWS_USE_DUALSTACK_ENDPOINT: "true" },
      [],
      "AWS_USE_DUALSTACK_ENDPOINT is true",
    ],
    [{ HOME: "/root", AWS_REGION: "us-east-1-fips" }, [], "AWS_REGION is a FIPS region"],
    [
      { HOME: "/root", PIGGY_AWS_REGION: "fips-us-gov-west-1" },
      [],
      "PIGGY_AWS_REGION is a FIPS region",
    ],
    [{}, [], "HOME is unset"],
    [{ HOME: "/root" }, ["/root/.aws/config"], 'the shared AWS file "/root/.aws/config" exists'],
    [
      { HOME: "/root" },
      ["/root/.aws/credentials"],
      'the shared AWS file "/root/.aws/credentials" exists',
    ],
    [
      { HOME: "/root", AWS_SHARED_CREDENTIALS_FILE: "/etc/aws/creds" },
      ["/etc/aws/creds"],
      'the shared AWS file "/etc/aws/creds" exists',
    ],
  ];
  for (const [env, files, reason] of cases) {
    assert.deepEqual(await choose(env, files), { client: "sdk", reason }, JSON.stringify(env));
  }
});

test("endpointFor() follows the SDK: service variable, then AWS_ENDPOINT_URL, then regional", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.equal(
    endpointFor(SECRETS_MANAGER, "eu-west-1", env({})).href,
    "https://secretsmanager.eu-west-1.amazonaws.com/",
  );
  assert.equal(
    endpointFor(SSM, "cn-north-1", env({})).href,
    "https://ssm.cn-north-1.amazonaws.com.cn/",
  );
  assert.equal(
    endpointFor(STS, "us-gov-west-1", env({})).href,
    "https://sts.us-gov-west-1.amazonaws.com/",
  );
  const both = {
    AWS_ENDPOINT_URL: "http://127.0.0.1:1",
    AWS_ENDPOINT_URL_SSM: "http://127.0.0.1:2",
  };
  assert.equal(endpointFor(SSM, "eu-west-1", env(both)).href, "http://127.0.0.1:2/");
  assert.equal(endpointFor(SECRETS_MANAGER, "eu-west-1", env(both)).href, "http://127.0.0.1:1/");
  assert.equal(
    endpointFor(SSM, "eu-west-1", env({ ...both, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "true" }))
      .href,
    "https://ssm.eu-west-1.amazonaws.com/",
  );
  assert.throws(
    () => endpointFor(SSM, "eu-west-1", env({ AWS_ENDPOINT_URL: "ftp://x" })),
    TypeError,
  );
  assert.throws(
    () => endpointFor(SSM, "eu-west-1", env({ AWS_ENDPOINT_URL: "not a url" })),
    TypeError,
  );
  assert.equal(dnsSuffix("us-isob-east-1"), "sc2s.sgov.gov");
  assert.equal(dnsSuffix("us-iso-east-1"), "c2s.ic.gov");
});

test("containerUrlAllowed() is the SDK's rule: https, loopback, the ECS and EKS hosts", () => {
  for (
    const url of [
      "https://credentials.example/v1",
      "http://127.0.0.1:8080/creds",
      "http://127.255.0.9/creds",
      "http://localhost/creds",
      "http://[::1]:9/creds",
      "http://169.254.170.2/v2/credentials/x",
      "http://169.254.170.23/v1/credentials",
      "http://[fd00:ec2::23]/v1/credentials",
    ]
  ) {
    assert.equal(containerUrlAllowed(new URL(url)), true, url);
  }
  for (
    const url of [
      "http://10.0.0.1/creds",
      "http://169.254.169.254/latest/meta-data",
      "http://127.0.0.1.example/creds",
      "http://[::2]/creds",
      "http://credentials.example/v1",
      "ftp://127.0.0.1/creds",
      "file:///etc/passwd",
    ]
  ) {
    assert.equal(containerUrlAllowed(new URL(url)), false, url);
  }
});
