// deno-lint-ignore-file no-console
/**
 * Cost of PIGGY_AWS_SESSION_ROLE_ARN, in process against the AWS stand-in (loopback): heap kept per
 * session (its credentials and its Secrets Manager client, after GC), and the time of one read
 * with a new session (AssumeRole + GetSecretValue), with a kept session, and without sessions
 * (the webhook's own identity). The secret cache is not involved: every read goes to the stand-in.
 *
 * Run: `deno run -A --v8-flags=--expose-gc scripts/bench/aws_sessions.ts [SESSIONS]`
 *
 * @module
 */

import { startAwsStandIn, withEnv } from "../../testing/aws.ts";
import { SessionSecretSource } from "../../src/secrets/session_source.ts";
import { AwsSecretSource } from "../../src/secrets/aws_source.ts";

const sessions = Number(Deno.args[0] ?? "200");
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
const heap = () => {
  gc();
  gc();
  return Deno.memoryUsage().heapUsed;
};

const ROLE = "arn:aws:iam::123456789012:role/piggy-sessions";
const aws = await startAwsStandIn();
aws.allowAssumeRole(ROLE);
aws.putSecret("bench/app", { string: JSON.stringify({ A: "b" }) });
const query = {
  kind: "secretsManager",
  name: "bench/app",
  version: "",
  region: "us-east-1",
} as const;

await withEnv(aws.env(), async () => {
  const source = new SessionSecretSource({
    roleArn: ROLE,
    stsRegion: "us-east-1",
    maxSessions: sessions + 1,
  });
  const plain = new AwsSecretSource({});
  try {
    await source.fetchSecret(query, { identity: "warm:up" });
    await plain.fetchSecret(query);
    const before = heap();
    let started = performance.now();
    for (let i = 0; i < sessions; i++) await source.fetchSecret(query, { identity: `ns${i}:sa` });
    const newSessionMs = (performance.now() - started) / sessions;
    const kept = heap();
    started = performance.now();
    for (let i = 0; i < sessions; i++) await source.fetchSecret(query, { identity: `ns${i}:sa` });
    const keptSessionMs = (performance.now() - started) / sessions;
    started = performance.now();
    for (let i = 0; i < sessions; i++) await plain.fetchSecret(query);
    const plainMs = (performance.now() - started) / sessions;
    console.log(`sessions: ${sessions}`);
    console.log(`heap per session: ${((kept - before) / sessions / 1024).toFixed(1)} KiB`);
    console.log(`read, new session (AssumeRole + read): ${newSessionMs.toFixed(2)} ms`);
    console.log(`read, kept session: ${keptSessionMs.toFixed(2)} ms`);
    console.log(`read, webhook's own identity: ${plainMs.toFixed(2)} ms`);
    console.log(
      `ratios: new/own ${(newSessionMs / plainMs).toFixed(2)}, kept/own ${
        (keptSessionMs / plainMs).toFixed(2)
      }`,
    );
  } finally {
    source.destroy();
    plain.destroy();
  }
});
await aws.close();
