/**
 * Static tests of the Dockerfile (no Docker engine here): a small parser checks the stages, the
 * pinned versions, users, entrypoints and that every file copied from the build context exists and
 * is not excluded by .dockerignore. What the compile script builds comes from the script itself
 * (`scripts/compile.ts --print`), run as the Dockerfile runs it.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { defaultInstallSource } from "../src/launcher/install.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** One Dockerfile instruction, continuation lines joined. */
interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** One build stage. */
interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
}

interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let pending = "";
  let start = 0;
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (pending === "" && (line === "" || line.startsWith("#"))) return;
    if (pending === "") start = index + 1;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1).trimEnd()} `;
      return;
    }
    const full = (pending + line).trim();
    pending = "";
    const match = /^(\S+)\s*(.*)$/s.exec(full);
    if (match) {
      instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!, line: start });
    }
  });
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === "FROM") {
      const [image, as, name] = instruction.args.split(/\s+/);
      assert.ok(image, `FROM without an image at line ${instruction.line}`);
      if (as !== undefined) assert.equal(as.toUpperCase(), "AS");
      stages.push({ image, ...(name ? { name } : {}), instructions: [] });
    } else if (stages.length === 0) {
      assert.equal(instruction.keyword, "ARG", `${instruction.keyword} before FROM`);
      const [name, value = ""] = instruction.args.split(/=(.*)/s);
      globalArgs[name!] = value.replace(/^"(.*)"$/, "$1");
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return { globalArgs, stages };
}

function substitute(value: string, args: Record<string, string>): string {
  return value.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => {
    const name = a ?? b;
    assert.ok(name in args, `undefined ARG ${name}`);
    return args[name] as string;
  });
}

/** COPY/ADD split into flags, sources and destination. */
function parseCopy(
  args: string,
): { flags: Record<string, string>; sources: string[]; dest: string } {
  const words = args.trim().startsWith("[") ? JSON.parse(args) as string[] : args.split(/\s+/);
  const flags: Record<string, string> = {};
  while (words[0]?.startsWith("--")) {
    const [name, value = ""] = words.shift()!.slice(2).split(/=(.*)/s);
    flags[name!] = value;
  }
  const dest = words.pop()!;
  return { flags, sources: words, dest };
}

/** .dockerignore semantics: last matching pattern wins; a pattern also matches a path's parents. */
function dockerIgnored(path: string, patterns: string[]): boolean {
  const toRegExp = (glob: string) => {
    const tokens = glob.replace(/\/+$/, "").match(/\*\*\/|\*\*|\*|\?|[^*?]+/g) ?? [];
    const body = tokens.map((token) => {
      if (token === "**/") return "(?:.*/)?";
      if (token === "**") return ".*";
      if (token === "*") return "[^/]*";
      if (token === "?") return "[^/]";
      return token.replace(/[.+^$()|[\]{}\\]/g, "\\$&");
    });
    return new RegExp(`^${body.join("")}$`);
  };
  const parts = path.replace(/\/+$/, "").split("/");
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith("!");
    const re = toRegExp(negate ? raw.slice(1) : raw);
    if (candidates.some((c) => re.test(c))) ignored = !negate;
  }
  return ignored;
}

function readDockerignore(): string[] {
  return readFileSync(join(ROOT, ".dockerignore"), "utf8").split("\n").map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

const dockerfile = parseDockerfile(readFileSync(join(ROOT, "Dockerfile"), "utf8"));

function stage(name: string): Stage {
  const found = dockerfile.stages.find((s) => s.name === name);
  assert.ok(found, `no stage "${name}"`);
  return found;
}

function only(s: Stage, keyword: string): Instruction[] {
  return s.instructions.filter((i) => i.keyword === keyword);
}

/** What `scripts/compile.ts <binary>` builds: its entry point and output, from `--print`. */
function compiled(
  binary: "webhook" | "env",
): { entry: string; output: string; dist?: string; source?: string } {
  const result = spawnSync(
    process.execPath,
    ["run", "-A", join(ROOT, "scripts/compile.ts"), binary, "--print"],
    { encoding: "utf8", cwd: ROOT, env: { ...process.env, NO_COLOR: "1" } },
  );
  assert.equal(result.status, 0, result.stderr);
  const printed = JSON.parse(result.stdout) as {
    command: string[];
    dist?: string;
    source?: string;
  };
  const command = printed.command;
  const output = command[command.indexOf("--output") + 1];
  assert.ok(output !== undefined && command.includes("--output"), command.join(" "));
  return {
    entry: command.at(-1)!,
    output,
    ...(printed.dist ? { dist: printed.dist } : {}),
    ...(printed.source ? { source: printed.source } : {}),
  };
}

test("Dockerfile pins Deno to the project's version", () => {
  // The pinned binary package (scripts/npm-deno/deno.cjs runs it as `npx deno`).
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const pinned = pkg.devDependencies["@deno/linux-x64-glibc"];
  assert.match(pinned, /^\d+\.\d+\.\d+$/);
  assert.equal(dockerfile.globalArgs.DENO_VERSION, pinned);
  const image = substitute(stage("builder").image, dockerfile.globalArgs);
  assert.equal(image, `denoland/deno:debian-${pinned}`);
});

test("Dockerfile base images all carry an explicit, non-latest tag", () => {
  for (const s of dockerfile.stages) {
    const image = substitute(s.image, dockerfile.globalArgs);
    const tag = /^[^@]+:([^/@]+)(@sha256:[0-9a-f]{64})?$/.exec(image)?.[1];
    assert.ok(tag, `${image} has no tag`);
    assert.notEqual(tag, "latest");
  }
});

test("Dockerfile final images are distroless (no shell), non-root, exec-form entrypoints", () => {
  const values = parseYaml(readFileSync(join(ROOT, "charts/piggy-webhooks/values.yaml"), "utf8"));
  for (
    const [name, binary] of [
      ["piggy-env", "/usr/local/bin/piggy-env"],
      ["piggy-webhooks", "/piggy-webhooks"],
    ]
  ) {
    const s = stage(name as string);
    assert.match(
      substitute(s.image, dockerfile.globalArgs),
      /^gcr\.io\/distroless\/cc-debian12:nonroot/,
    );
    const users = only(s, "USER");
    assert.equal(users.length, 1, `${name}: one USER`);
    const [uid, gid] = users[0]!.args.split(":");
    assert.ok(/^[0-9]+$/.test(uid!) && uid !== "0", `${name}: numeric non-root user`);
    assert.equal(Number(uid), values.securityContext.runAsUser, `${name}: chart runAsUser`);
    assert.equal(Number(gid), values.securityContext.runAsGroup, `${name}: chart runAsGroup`);
    const entrypoints = only(s, "ENTRYPOINT");
    assert.equal(entrypoints.length, 1);
    assert.deepEqual(JSON.parse(entrypoints[0]!.args), [binary]);
    assert.deepEqual(only(s, "RUN"), [], `${name}: nothing to RUN without a shell`);
    assert.deepEqual(only(s, "CMD"), [], `${name}: arguments come from the pod spec`);
  }
});

test("Dockerfile webhook image listens on the chart's port", () => {
  const values = parseYaml(readFileSync(join(ROOT, "charts/piggy-webhooks/values.yaml"), "utf8"));
  const s = stage("piggy-webhooks");
  assert.deepEqual(only(s, "EXPOSE").map((i) => i.args), [String(values.port)]);
  assert.deepEqual(only(s, "ENV").map((i) => i.args), [`LISTEN_ADDRESS=":${values.port}"`]);
});

test("Dockerfile copies what the compile script writes into each image", () => {
  const workdir = only(stage("builder"), "WORKDIR").map((i) => i.args).at(-1);
  for (const [name, binary] of [["piggy-env", "env"], ["piggy-webhooks", "webhook"]] as const) {
    const copies = only(stage(name), "COPY").map((i) => parseCopy(i.args));
    assert.equal(copies[0]!.flags.from, "builder");
    assert.deepEqual(copies[0]!.sources, [`${workdir}/${compiled(binary).output}`]);
    assert.equal(copies[0]!.dest, JSON.parse(only(stage(name), "ENTRYPOINT")[0]!.args)[0]);
  }
  // The launcher image also holds the launcher directory where `install` looks by default.
  const copies = only(stage("piggy-env"), "COPY").map((i) => parseCopy(i.args));
  assert.equal(copies.length, 2);
  assert.deepEqual(copies[1]!.sources, [`${workdir}/${compiled("env").dist}/`]);
  const entrypoint = JSON.parse(only(stage("piggy-env"), "ENTRYPOINT")[0]!.args)[0];
  assert.equal(copies[1]!.dest.replace(/\/$/, ""), defaultInstallSource(entrypoint));
  const runs = only(stage("builder"), "RUN").map((i) => i.args).join("\n");
  assert.match(runs, /apt-get install .*patchelf/, "the builder has patchelf");
});

test("Dockerfile copies only context files that exist and .dockerignore keeps", () => {
  const patterns = readDockerignore();
  const sources = only(stage("builder"), "COPY").flatMap((i) => parseCopy(i.args).sources);
  assert.ok(sources.includes("deno.lock"), "the lock file is copied");
  for (const source of sources) {
    assert.ok(existsSync(join(ROOT, source)), `${source} exists`);
    assert.equal(dockerIgnored(source, patterns), false, `${source} is not ignored`);
  }
  for (const binary of [compiled("webhook"), compiled("env")]) {
    if (binary.source === undefined) {
      assert.equal(dockerIgnored(binary.entry, patterns), false, binary.entry);
    } else {
      // The launcher's entry is the bundle scripts/compile.ts builds in the image from its source:
      // the source is in the context, a bundle left in a local gen/ is not.
      assert.equal(dockerIgnored(binary.source, patterns), false, binary.source);
      assert.match(binary.entry, /^gen\//);
      assert.equal(dockerIgnored(binary.entry, patterns), true, binary.entry);
    }
  }
});

test("Dockerfile's dependency step succeeds on a copy of the builder's context", () => {
  // Rebuild the builder's context (its COPY sources) and run its `deno install` RUN line as is:
  // a lock file out of date with what the image copies fails here as it would in `docker build`.
  const context = mkdtempSync(join(tmpdir(), "piggy-docker-context-"));
  try {
    for (const copy of only(stage("builder"), "COPY").map((i) => parseCopy(i.args))) {
      for (const source of copy.sources) {
        const target = copy.dest.endsWith("/") && !source.endsWith("/")
          ? join(context, copy.dest, source.split("/").at(-1)!)
          : join(context, copy.dest === "./" ? source : copy.dest);
        cpSync(join(ROOT, source), target, {
          recursive: true,
          filter: (path) => !path.endsWith("_test.ts"),
        });
      }
    }
    const install = only(stage("builder"), "RUN").map((i) => i.args)
      .find((r) => r.startsWith("deno install"))!;
    const result = spawnSync(process.execPath, install.split(/\s+/).slice(1), {
      cwd: context,
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1" },
    });
    assert.equal(result.status, 0, result.stderr);
    // deno.json says nodeModulesDir "manual" (development reads npm's tree): the image build must
    // not turn that into an npm install of package.json, dev tools and a second Deno included.
    assert.equal(existsSync(join(context, "node_modules")), false, "no node_modules in the build");
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
});

test("dockerIgnored() follows Docker's last-match-wins rules", () => {
  const patterns = ["*", "!src/", "!deno.json", "**/*_test.ts"];
  assert.equal(dockerIgnored("node_modules/x.js", patterns), true);
  assert.equal(dockerIgnored("deno.json", patterns), false);
  assert.equal(dockerIgnored("src/a/b.ts", patterns), false);
  assert.equal(dockerIgnored("src/a/b_test.ts", patterns), true);
  assert.equal(dockerIgnored("tests", patterns), true);
  assert.equal(dockerIgnored("a/b/c.ts", ["a/**"]), true);
  assert.equal(dockerIgnored("a.b", ["a?b"]), true);
  assert.equal(dockerIgnored("axb", ["a.b"]), false);
});

test("parseDockerfile() joins continuation lines and reads global ARGs", () => {
  const parsed = parseDockerfile(
    'ARG V="1"\nFROM a:${V} AS one\n# c\nLABEL x=1 \\\n  y=2\nFROM one\n',
  );
  assert.deepEqual(parsed.globalArgs, { V: "1" });
  assert.deepEqual(parsed.stages.map((s) => [s.image, s.name]), [["a:${V}", "one"], [
    "one",
    undefined,
  ]]);
  assert.deepEqual(parsed.stages[0]!.instructions, [{
    keyword: "LABEL",
    args: "x=1 y=2",
    line: 4,
  }]);
});
