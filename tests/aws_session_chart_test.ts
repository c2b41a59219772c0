/**
 * PIGGY_AWS_SESSION_ROLE_ARN outside the process: the chart value `aws.sessionRoleArn` (rendered
 * into the webhook's env, refused by the schema when it is not a role ARN) and docs/iam.md (the
 * session role's trust policy with sts:AssumeRole and sts:TagSession, a permissions policy scoped
 * by the session tag, every JSON block valid).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseWebhookOptions } from "../src/config/webhook_options.ts";
import { dig, findObject, helmTemplate, type K8sObject, renderChart, ROOT } from "./_chart.ts";

const ROLE = "arn:aws:iam::123456789012:role/teams/piggy-sessions";

function envOf(objects: K8sObject[]): Record<string, string> {
  const env = dig(
    findObject(objects, "Deployment"),
    "spec",
    "template",
    "spec",
    "containers",
    0,
    "env",
  ) as { name: string; value?: string }[];
  return Object.fromEntries(env.map((e) => [e.name, e.value ?? ""]));
}

test("aws.sessionRoleArn becomes PIGGY_AWS_SESSION_ROLE_ARN, which the webhook accepts", async () => {
  assert.equal(envOf(await renderChart()).PIGGY_AWS_SESSION_ROLE_ARN, undefined);
  const env = envOf(
    await renderChart({
      values: {
        aws: { roleArn: "arn:aws:iam::123456789012:role/piggy-webhooks", sessionRoleArn: ROLE },
        env: { PIGGY_AWS_SESSION_DURATION: "1h", PIGGY_AWS_SESSION_CACHE_SIZE: 64 },
      },
    }),
  );
  assert.equal(env.PIGGY_AWS_SESSION_ROLE_ARN, ROLE);
  const options = parseWebhookOptions((name) => env[name]);
  assert.equal(options.awsSessionRoleArn, ROLE);
  assert.equal(options.awsSessionDurationMs, 3_600_000);
  assert.equal(options.awsSessionCacheSize, 64);
});

for (
  const bad of [
    "piggy-sessions",
    "arn:aws:iam::123456789012:user/piggy",
    "arn:aws:iam::1234:role/piggy",
    "arn:aws:iam::123456789012:role/",
  ]
) {
  test(`values.schema.json refuses aws.sessionRoleArn=${JSON.stringify(bad)}`, async () => {
    const result = await helmTemplate({ values: { aws: { sessionRoleArn: bad } } });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /sessionRoleArn/);
    assert.throws(
      () => parseWebhookOptions((name) => name === "PIGGY_AWS_SESSION_ROLE_ARN" ? bad : undefined),
      /Cannot use PIGGY_AWS_SESSION_ROLE_ARN=.*not an IAM role ARN/,
    );
  });
}

test("docs/iam.md gives the session role's trust policy with sts:TagSession and a tag-scoped policy", () => {
  const text = readFileSync(join(ROOT, "docs", "iam.md"), "utf8");
  const at = text.indexOf("## Proxy mode with per-pod sessions");
  assert.ok(at > 0, "the section exists");
  const section = text.slice(at, text.indexOf("\n## ", at + 1));
  const blocks = [...section.matchAll(/```json\n([\s\S]*?)```/g)].map((m) =>
    JSON.parse(m[1] ?? "") as { Statement: Record<string, unknown>[] }
  );
  assert.equal(blocks.length, 3);
  const actions = (block: { Statement: Record<string, unknown>[] }) =>
    block.Statement.flatMap((s) => [s.Action].flat());
  // The webhook's role and the trust policy both allow AssumeRole with tags.
  for (const block of blocks.slice(0, 2)) {
    assert.deepEqual(actions(block).sort(), ["sts:AssumeRole", "sts:TagSession"]);
  }
  const permissions = JSON.stringify(blocks[2]);
  assert.match(permissions, /secretsmanager:GetSecretValue/);
  assert.match(permissions, /\$\{aws:PrincipalTag\/kubernetes-namespace\}/);
});
