import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../errors.ts";
import { VERSION } from "../version.ts";
import {
  answerWebhookArgs,
  parseWebhookArgs,
  WEBHOOK_USAGE,
  WEBHOOK_VERSION_LINE,
} from "./webhook_args.ts";

test("parseWebhookArgs() serves without arguments, answers --help, -h and --version", () => {
  assert.deepEqual(parseWebhookArgs([]), { kind: "serve" });
  assert.deepEqual(parseWebhookArgs(["--help"]), { kind: "help" });
  assert.deepEqual(parseWebhookArgs(["-h"]), { kind: "help" });
  assert.deepEqual(parseWebhookArgs(["--version"]), { kind: "version" });
  assert.deepEqual(parseWebhookArgs(["--version", "--help"]), { kind: "help" });
});

test("parseWebhookArgs() refuses any other argument", () => {
  const usage = (message: RegExp) => (error: unknown) =>
    error instanceof UsageError && message.test(error.message);
  assert.throws(() => parseWebhookArgs(["--port", "1"]), usage(/Unknown flag "--port"/));
  assert.throws(() => parseWebhookArgs(["serve"]), usage(/Unexpected argument "serve"/));
});

test("answerWebhookArgs() prints help or version on stdout, a usage error on stderr", () => {
  const run = (argv: string[]) => {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const code = answerWebhookArgs(argv, {
      writeStdout: (text) => stdout.push(text),
      writeStderr: (text) => stderr.push(text),
    });
    return { code, stdout, stderr };
  };
  assert.deepEqual(run([]), { code: undefined, stdout: [], stderr: [] });
  assert.deepEqual(run(["--help"]), { code: 0, stdout: [WEBHOOK_USAGE], stderr: [] });
  assert.deepEqual(run(["--version"]), {
    code: 0,
    stdout: [`piggy-webhooks ${VERSION}`],
    stderr: [],
  });
  assert.equal(WEBHOOK_VERSION_LINE, `piggy-webhooks ${VERSION}`);
  const bad = run(["--bogus"]);
  assert.equal(bad.code, 2);
  assert.deepEqual(bad.stdout, []);
  assert.match(
    bad.stderr[0] ?? "",
    /^piggy-webhooks: Unknown flag "--bogus"\nUsage: piggy-webhooks/,
  );
});
