import { test } from "node:test";
import assert from "node:assert/strict";
import { SecretSourceError } from "./errors.ts";
import { chooseLogLevel, describeError, Logger } from "./log.ts";

test("Logger writes Go Piggy's JSON lines with child fields, above its level only", () => {
  const lines: string[] = [];
  const logger = new Logger({
    level: "info",
    sink: (line) => lines.push(line),
    now: () => new Date("2026-01-27T11:27:47.123Z"),
  });
  logger.child({ namespace: "demo", pod_name: undefined }).info("Pod 'x' has been mutated");
  logger.debug("hidden");
  assert.deepEqual(lines.map((line) => JSON.parse(line)), [
    {
      level: "info",
      namespace: "demo",
      time: "2026-01-27T11:27:47Z",
      message: "Pod 'x' has been mutated",
    },
  ]);
  assert.ok(lines[0]!.startsWith('{"level":"info",'), "level first, as zerolog");
});

test("Logger: a line's field overrides the child's in its place, undefined drops it; time per line", () => {
  const lines: string[] = [];
  const times = [
    "2026-01-27T11:27:47.100Z",
    "2026-01-27T11:27:47.900Z",
    "2026-01-27T11:27:48.000Z",
  ];
  let call = 0;
  const logger = new Logger({
    sink: (line) => lines.push(line),
    now: () => new Date(times[call++ % times.length]!),
  });
  const child = logger.child({ uid: "u", dry_run: true, pod_name: "p" });
  child.info("one", { containers: "a,b", dry_run: false });
  child.info("two", { pod_name: undefined, extra: 1 });
  child.info("three");
  assert.deepEqual(lines, [
    '{"level":"info","uid":"u","dry_run":false,"pod_name":"p","containers":"a,b",' +
    '"time":"2026-01-27T11:27:47Z","message":"one"}',
    '{"level":"info","uid":"u","dry_run":true,"extra":1,"time":"2026-01-27T11:27:47Z",' +
    '"message":"two"}',
    '{"level":"info","uid":"u","dry_run":true,"pod_name":"p","time":"2026-01-27T11:27:48Z",' +
    '"message":"three"}',
  ]);
});

test("chooseLogLevel() prefers LOG_LEVEL, then the debug switch", () => {
  assert.equal(chooseLogLevel("warning", true), "warn");
  assert.equal(chooseLogLevel(undefined, true), "debug");
  assert.equal(chooseLogLevel("nonsense", false), "info");
});

test("describeError() appends causes without repeating a message already included", () => {
  const aws = new Error("Secrets Manager can't find the specified secret.");
  const wrapped = new SecretSourceError(`Cannot load secret "x": ${aws.message}`, { cause: aws });
  assert.equal(
    describeError(wrapped),
    `Cannot load secret "x": Secrets Manager can't find the specified secret.`,
  );
  const network = new SecretSourceError("Cannot reach the webhook: ECONNREFUSED", {
    cause: new Error("connect ECONNREFUSED 127.0.0.1:9"),
  });
  assert.equal(
    describeError(network),
    "Cannot reach the webhook: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9",
  );
  assert.equal(describeError("text"), "text");
});
