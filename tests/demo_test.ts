/**
 * `deno task demo` end to end (scripts/demo.ts as a process): every demo pod is mutated, every
 * wrapped container's app prints the values of demo/aws.yaml, a failure exits 1 with a message, and
 * no process the demo started survives it. Also the static checks of
 * the kind + LocalStack loop (scripts/dev.sh), which needs Docker and cannot run here.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import { parse, stringify } from "yaml";
import {
  expectedSource,
  type KubeObject,
  loadAwsSeed,
  loadManifests,
  REPO_ROOT,
} from "../testing/demo_data.ts";
import { runDemo, survivors } from "../testing/demo_run.ts";

const ROOT = REPO_ROOT;
const DEV_SH = join(ROOT, "scripts", "dev.sh");

function pods(): Pod[] {
  return loadManifests().flatMap((manifest) => manifest.objects)
    .filter((object) => object.kind === "Pod") as Pod[];
}

function secretsOf(): Map<string, Record<string, string>> {
  const found = new Map<string, Record<string, string>>();
  for (const object of loadManifests().flatMap((manifest) => manifest.objects)) {
    if (object.kind === "Secret") {
      found.set(
        object.metadata?.name ?? "",
        (object as KubeObject & {
          stringData: Record<string, string>;
        }).stringData,
      );
    }
  }
  return found;
}

/** `NAME=value` lines the app of `container` must print (only the names in its args). */
function expectedLines(container: Container, values: Map<string, string>): string[] {
  const refs = new Map<string, string>();
  const secrets = secretsOf();
  for (const source of container.envFrom ?? []) {
    for (const [key, value] of Object.entries(secrets.get(source.secretRef?.name ?? "") ?? {})) {
      refs.set(key, value);
    }
  }
  for (const entry of container.env ?? []) {
    const ref = entry.valueFrom?.secretKeyRef;
    const value = entry.value ?? (ref ? secrets.get(ref.name ?? "")?.[ref.key] : undefined);
    if (value !== undefined) refs.set(entry.name, value);
  }
  const lines: string[] = [];
  for (const name of container.args ?? []) {
    const key = /^piggy:([^\n]+)/.exec(refs.get(name) ?? "")?.[1];
    if (key === undefined) continue;
    assert.ok(values.has(key), `the demo data has no "${key}" for ${container.name}`);
    lines.push(`${name}=${values.get(key)}`);
  }
  return lines;
}

test("deno task demo mutates every demo pod, shows each app's values, and leaves nothing running", async () => {
  const run = await runDemo();
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  assert.ok(!run.stdout.includes("\x1b["), "no colours when stdout is not a terminal");
  assert.match(run.stdout, /webhook listening on https:\/\/127\.0\.0\.1:\d+/);

  const seed = loadAwsSeed();
  let wrapped = 0;
  for (const pod of pods()) {
    const id = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const start = run.stdout.indexOf(`admitting Pod ${id}:`);
    assert.ok(start !== -1, `pod ${id} was not admitted`);
    const section = run.stdout.slice(start).split("\n── ")[0]!;
    assert.match(section, /allowed with a JSON Patch of [1-9]\d* operations/, id);
    assert.match(section, /^ {2}\+ +command: \[\/piggy\/piggy-env\]$/m, `${id}: command rewritten`);
    assert.match(section, /^ {2}\+ +- name: install-piggy-env$/m, `${id}: installer added`);
    assert.match(section, /admitting the mutated pod again returns no patch/, id);
    const values = expectedSource(pod, seed).values;
    for (const container of pod.spec?.containers ?? []) {
      const lines = expectedLines(container, values);
      if (lines.length === 0) continue;
      wrapped++;
      for (const line of lines) {
        assert.ok(section.includes(`  │   ${line}\n`), `${id}/${container.name}: missing ${line}`);
      }
    }
  }
  assert.ok(wrapped >= 5, `only ${wrapped} containers ran`);
  const clean = run.stdout.match(/launcher variables left in my environment: none/g) ?? [];
  assert.equal(clean.length, wrapped, "every app ran without piggy-env's own variables");
  assert.match(run.stdout, /refused \(exit 1\): the command is not the one signed at admission/);
  assert.match(run.stdout, /demo finished in [\d.]+ s/);

  assert.ok(run.pids.length >= wrapped + 1, `PIDs: ${run.pids.join(" ")}`);
  assert.deepEqual(survivors(run.pids), []);
});

test("deno task demo fails with a clear message and stops everything when a secret is missing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piggy-demo-test-"));
  try {
    const data = parse(readFileSync(join(ROOT, "demo", "aws.yaml"), "utf8")) as {
      secretsManager: Array<{ name: string }>;
    };
    data.secretsManager = data.secretsManager.filter((secret) => secret.name !== "demo/default");
    const file = join(dir, "aws.yaml");
    writeFileSync(file, stringify(data));
    const run = await runDemo({ env: { DEMO_AWS_DATA: file } });
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stdout, /✖ demo failed: Container "myapp" of pod demo\/myapp-default-secret/);
    assert.match(
      run.stdout,
      /Webhook answered 502: Cannot load "demo\/default": the secret or parameter path does not exist/,
    );
    assert.doesNotMatch(run.stdout, /demo finished/);
    assert.ok(run.pids.length >= 2, run.stdout);
    assert.deepEqual(survivors(run.pids), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("scripts/dev.sh parses, has a usage, and every repository path it names exists", async () => {
  const syntax = await new Deno.Command("bash", { args: ["-n", DEV_SH], stderr: "piped" }).output();
  assert.equal(syntax.code, 0, new TextDecoder().decode(syntax.stderr));

  const text = readFileSync(DEV_SH, "utf8");
  const paths = new Set(
    [...text.matchAll(
      /(?:^|[\s"'(=])((?:scripts|demo|charts|docs|src|cli)\/[\w./-]*[\w]|Dockerfile)/g,
    )]
      .map((match) => match[1]!),
  );
  assert.ok(paths.size >= 8, `only ${[...paths].join(", ")}`);
  for (const path of paths) assert.ok(existsSync(join(ROOT, path)), `scripts/dev.sh names ${path}`);
  for (const target of ["piggy-webhooks", "piggy-env"]) {
    assert.match(readFileSync(join(ROOT, "Dockerfile"), "utf8"), new RegExp(` AS ${target}$`, "m"));
    assert.match(text, new RegExp(`--target ${target} `));
  }

  const help = await new Deno.Command("bash", { args: [DEV_SH, "help"], stdout: "piped" }).output();
  assert.equal(help.code, 0);
  const usage = new TextDecoder().decode(help.stdout);
  const commands = [...text.matchAll(/^ {2}([a-z]+)\) cmd_/gm)].map((match) => match[1]!);
  assert.ok(commands.length >= 8);
  for (const command of commands) {
    assert.match(
      usage,
      new RegExp(`^ {2}${command} `, "m"),
      `usage does not describe "${command}"`,
    );
  }
  const unknown = await new Deno.Command("bash", {
    args: [DEV_SH, "no-such-command"],
    stdout: "null",
    stderr: "null",
  }).output();
  assert.equal(unknown.code, 2);
});
