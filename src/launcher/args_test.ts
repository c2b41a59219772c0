import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../errors.ts";
import { type LauncherCommand, parseAttempts, parseLauncherArgs } from "./args.ts";

const accepted: Array<[string[], LauncherCommand]> = [
  [["install", "/piggy"], { kind: "install", destination: "/piggy" }],
  [["install", "--from", "/opt/l", "/piggy"], {
    kind: "install",
    destination: "/piggy",
    from: "/opt/l",
  }],
  [["install", "--from=/opt/l", "/piggy"], {
    kind: "install",
    destination: "/piggy",
    from: "/opt/l",
  }],
  [["--help"], { kind: "help" }],
  [["-h"], { kind: "help" }],
  [["--version"], { kind: "version" }],
  [["--standalone", "--version"], { kind: "version" }],
  [["--retry", "3", "--help", "--", "ls"], { kind: "help" }],
  [["--", "ls", "-la"], { kind: "run", flags: {}, command: ["ls", "-la"] }],
  [["--", "sh", "-c", "echo hello"], {
    kind: "run",
    flags: {},
    command: ["sh", "-c", "echo hello"],
  }],
  [["--standalone", "--", "app"], { kind: "run", flags: { standalone: true }, command: ["app"] }],
  [["--retry", "3", "--", "app"], { kind: "run", flags: { attempts: 3 }, command: ["app"] }],
  [["--retry=5", "--", "app"], { kind: "run", flags: { attempts: 5 }, command: ["app"] }],
  [
    ["--initial-delay", "1m30s", "--", "app"],
    { kind: "run", flags: { initialDelayMs: 90_000 }, command: ["app"] },
  ],
  [
    ["--initial-delay=300ms", "--standalone", "--retry", "2", "--", "app"],
    {
      kind: "run",
      flags: { initialDelayMs: 300, standalone: true, attempts: 2 },
      command: ["app"],
    },
  ],
  [["--initial-delay", "0", "--", "app"], {
    kind: "run",
    flags: { initialDelayMs: 0 },
    command: ["app"],
  }],
  // Everything after the first "--" belongs to the command, flags and further "--" included.
  [
    ["--", "app", "--retry", "x", "--", "--help"],
    { kind: "run", flags: {}, command: ["app", "--retry", "x", "--", "--help"] },
  ],
];

for (const [argv, expected] of accepted) {
  test(`parseLauncherArgs() accepts ${JSON.stringify(argv)}`, () => {
    assert.deepEqual(parseLauncherArgs(argv), expected);
  });
}

const rejected: Array<[string[], RegExp]> = [
  [[], /Missing "--" before the command/],
  [["ls"], /Unexpected argument "ls"/],
  [["--standalone", "ls"], /Unexpected argument "ls"/],
  [["--"], /Missing the command after "--"/],
  [["--", ""], /Missing the command after "--"/],
  [["--bogus", "--", "ls"], /Unknown flag "--bogus"/],
  [["-v", "--", "ls"], /Unknown flag "-v"/],
  [["--standalone=true", "--", "ls"], /takes no value/],
  [["--retry", "--", "ls"], /Missing the value of "--retry"/],
  [["--retry"], /Missing the value of "--retry"/],
  [["--retry", "0", "--", "ls"], /Invalid "--retry" value/],
  [["--retry", "-1", "--", "ls"], /Missing the value of "--retry"|Invalid "--retry" value/],
  [["--retry", "abc", "--", "ls"], /Invalid "--retry" value/],
  [["--retry", "1.5", "--", "ls"], /Invalid "--retry" value/],
  [["--retry=", "--", "ls"], /Invalid "--retry" value/],
  [["--initial-delay", "5", "--", "ls"], /Invalid "--initial-delay" value/],
  [["--initial-delay", "-1s", "--", "ls"], /Invalid "--initial-delay" value/],
  [["--initial-delay", "soon", "--", "ls"], /Invalid "--initial-delay" value/],
  [["install"], /Missing the install destination/],
  [["install", ""], /Missing the install destination/],
  [["install", "/a", "/b"], /Unexpected argument "\/b"/],
  [["install", "--from", "/a"], /Missing the install destination/],
  [["install", "--from"], /Missing the value of "--from"/],
  [["install", "--from=", "/a"], /Missing the value of "--from"/],
  [["install", "--to", "/a"], /Unknown flag "--to"/],
  [["install", "/a", "--", "ls"], /Unexpected "--" after install/],
];

for (const [argv, message] of rejected) {
  test(`parseLauncherArgs() rejects ${JSON.stringify(argv)} with a UsageError`, () => {
    assert.throws(() => parseLauncherArgs(argv), (error: unknown) => {
      assert.ok(error instanceof UsageError, `expected UsageError, got ${error}`);
      assert.match(error.message, message);
      return true;
    });
  });
}

test("parseLauncherArgs() does not modify its input", () => {
  const argv = ["--retry", "2", "--", "ls"];
  const copy = [...argv];
  const parsed = parseLauncherArgs(argv);
  assert.deepEqual(argv, copy);
  assert.ok(parsed.kind === "run");
  parsed.command.push("changed");
  assert.deepEqual(argv, copy);
});

test("parseAttempts() accepts 1 to 1000 and rejects the rest", () => {
  assert.equal(parseAttempts("1"), 1);
  assert.equal(parseAttempts("1000"), 1000);
  assert.throws(() => parseAttempts("0"), RangeError);
  assert.throws(() => parseAttempts("1001"), RangeError);
  assert.throws(() => parseAttempts("1e3"), SyntaxError);
  assert.throws(() => parseAttempts(""), SyntaxError);
});
