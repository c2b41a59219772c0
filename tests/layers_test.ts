/**
 * The layer rules over the real module graph of src/, cli/, testing/, tests/ and scripts/. Each
 * module's import specifiers (static, type-only and dynamic) and the global identifiers it reads
 * come from the TypeScript parser (not a text search: comments and strings do not count), relative
 * imports are resolved to repository paths, and {@link checkLayers} lists every import or global
 * that breaks a rule. A synthetic graph shows each rule can fail.
 *
 * Layers, top to bottom (a layer imports only from below):
 * - `cli/`: entry points (a few lines of wiring each); `src/mod.ts`: the npm package's barrel.
 * - `src/server/`: the webhook's router and start-up; composes the features.
 * - features: `src/admission/` (/mutate), `src/authz/` (/secret), `src/launcher/` (piggy-env).
 *   They import neither each other nor the server.
 * - shared rooms: `src/pod/`, `src/secrets/`, `src/k8s/`, `src/registry/`, `src/config/`,
 *   `src/http/`, `src/runtime/`. They import no feature and not the server.
 * - base: `src/constants.ts`, `src/errors.ts`, `src/log.ts`.
 * Nothing in `src/` imports `cli/`, `scripts/` or `tests/`, and only the tests beside the source
 * import `testing/`; `cli/` imports none of the four. Only `src/runtime/` and `cli/` read the
 * `Deno` and `process` globals. Outside `src/`: `scripts/` and `tests/` do not import each other,
 * and `testing/` (the stand-ins, process helpers and test PKI both use) imports neither.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), ".."));

/** The few parts of the TypeScript compiler API used here (the `typescript` dev dependency). */
interface TsNode {
  kind: number;
  parent?: TsNode;
  text?: string;
  name?: TsNode;
  getStart(): number;
}
interface TsSourceFile extends TsNode {
  getLineAndCharacterOfPosition(position: number): { line: number };
}
interface TypeScript {
  createSourceFile(name: string, text: string, target: number, setParents: boolean): TsSourceFile;
  forEachChild(node: TsNode, visit: (child: TsNode) => void): void;
  preProcessFile(
    text: string,
    readImportFiles: boolean,
    detectJavaScriptImports: boolean,
  ): { importedFiles: { fileName: string }[] };
  isIdentifier(node: TsNode): boolean;
  isPropertyAccessExpression(node: TsNode): boolean;
  isQualifiedName(node: TsNode): boolean;
  isPropertyAssignment(node: TsNode): boolean;
  isPropertySignature(node: TsNode): boolean;
  isPropertyDeclaration(node: TsNode): boolean;
  isMethodDeclaration(node: TsNode): boolean;
  isShorthandPropertyAssignment(node: TsNode): boolean;
  ScriptTarget: { Latest: number };
}

const ts = createRequire(import.meta.url)(join(ROOT, "node_modules", "typescript")) as TypeScript;

/** One module: its repository path, what it imports (resolved when relative), globals it reads. */
export interface ModuleFacts {
  path: string;
  imports: string[];
  globals: { name: string; line: number }[];
}

const RUNTIME_GLOBALS = new Set(["Deno", "process"]);

/** True when the identifier names a property or member, not a variable in scope. */
function isMemberName(node: TsNode): boolean {
  const parent = node.parent;
  if (!parent) return false;
  if (ts.isPropertyAccessExpression(parent) || ts.isQualifiedName(parent)) {
    return parent.name === node;
  }
  return (ts.isPropertyAssignment(parent) || ts.isPropertySignature(parent) ||
    ts.isPropertyDeclaration(parent) || ts.isMethodDeclaration(parent)) && parent.name === node;
}

/**
 * Parses one module: its import and export specifiers (static, dynamic and type-only) and its
 * reads of the `Deno` or `process` globals.
 */
export function scanModule(path: string, text: string): ModuleFacts {
  const imports = ts.preProcessFile(text, true, true).importedFiles.map(({ fileName }) =>
    fileName.startsWith(".") ? normalize(join(dirname(path), fileName)) : fileName
  );
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const globals: ModuleFacts["globals"] = [];
  const visit = (node: TsNode) => {
    if (
      ts.isIdentifier(node) && RUNTIME_GLOBALS.has(node.text ?? "") &&
      (!isMemberName(node) || (node.parent && ts.isShorthandPropertyAssignment(node.parent)))
    ) {
      const { line } = source.getLineAndCharacterOfPosition(node.getStart());
      globals.push({ name: node.text ?? "", line: line + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { path, imports, globals };
}

/** The room a path belongs to: `cli`, `scripts`, `tests`, `testing`, `src/<folder>` or `src`. */
function roomOf(path: string): string {
  const parts = path.split("/");
  if (parts[0] !== "src") return parts[0] ?? "";
  return parts.length > 2 ? `src/${parts[1]}` : "src";
}

const FEATURES = new Set(["src/admission", "src/authz", "src/launcher"]);
const SHARED = new Set([
  "src/pod",
  "src/secrets",
  "src/k8s",
  "src/config",
  "src/http",
  "src/runtime",
  "src/registry",
]);
const BASE = new Set(["src/constants.ts", "src/errors.ts", "src/log.ts"]);
const TOOLING = new Set(["cli", "scripts", "tests", "testing"]);
/** Top-level folders outside src/ and the folders each must not import. */
const OUTSIDE_FORBIDDEN: Readonly<Record<string, ReadonlySet<string>>> = {
  cli: new Set(["scripts", "tests", "testing"]),
  scripts: new Set(["tests"]),
  tests: new Set(["scripts"]),
  testing: new Set(["scripts", "tests"]),
};
/** Where the runtime globals may be read. */
const GLOBALS_ALLOWED = new Set(["cli", "src/runtime"]);

function isTest(path: string): boolean {
  return /_test\.ts$/.test(path);
}

/** What is wrong with one import of a module in src/, or undefined when it keeps the rules. */
function srcImportProblem(path: string, to: string): string | undefined {
  const from = roomOf(path);
  if (isTest(path)) {
    // Tests beside the source may use the test tooling, nothing else outside src/.
    return TOOLING.has(to) && to !== "testing" ? `nothing in src/ imports ${to}/` : undefined;
  }
  if (TOOLING.has(to)) return `nothing in src/ imports ${to}/`;
  if (to === "src/server" && from !== "src/server" && path !== "src/mod.ts") {
    return "only src/mod.ts and cli/ import the server";
  }
  if (FEATURES.has(from) && FEATURES.has(to) && from !== to) {
    return "features do not import each other";
  }
  if ((SHARED.has(from) || BASE.has(path)) && FEATURES.has(to)) {
    return "shared rooms import no feature";
  }
  if (BASE.has(path) && SHARED.has(to)) {
    return "constants, errors and log import only each other";
  }
  return undefined;
}

/**
 * Lists every broken layer rule of a module graph, one line each (empty when none).
 *
 * @param modules the graph; paths are repository-relative with `/`
 */
export function checkLayers(modules: readonly ModuleFacts[]): string[] {
  const problems: string[] = [];
  for (const module of modules) {
    const from = roomOf(module.path);
    for (const target of module.imports) {
      if (!/^(src|cli|scripts|tests|testing)\//.test(target)) continue;
      const to = roomOf(target);
      const problem = module.path.startsWith("src/")
        ? srcImportProblem(module.path, to)
        : OUTSIDE_FORBIDDEN[from]?.has(to)
        ? `${from}/ does not import ${to}/`
        : undefined;
      if (problem) problems.push(`${module.path} imports ${target}: ${problem}`);
    }
    if (module.path.startsWith("src/") && !isTest(module.path) && !GLOBALS_ALLOWED.has(from)) {
      for (const { name, line } of module.globals) {
        problems.push(
          `${module.path}:${line} reads the global ${name}: only src/runtime/ and cli/`,
        );
      }
    }
  }
  return problems;
}

function listTypeScript(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...listTypeScript(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

function repositoryGraph(): ModuleFacts[] {
  return ["src", "cli", "testing", "tests", "scripts"].flatMap(listTypeScript).map((path) =>
    scanModule(path, readFileSync(join(ROOT, path), "utf8"))
  );
}

test("the module graph of src/, cli/, testing/, tests/ and scripts/ keeps the layer rules", () => {
  const graph = repositoryGraph();
  assert.ok(graph.length > 150, `only ${graph.length} modules found under ${ROOT}`);
  assert.deepEqual(checkLayers(graph), []);
});

test("scanModule() reads imports and globals from the syntax, not from comments or strings", () => {
  const facts = scanModule(
    "src/admission/example.ts",
    [
      '// import { x } from "../server/app.ts"; Deno.exit(1)',
      'import type { Pod } from "../pod/container_refs.ts";',
      'export { y } from "./other.ts";',
      'const text = "Deno.env and process.env";',
      "const lazy = () => import('../k8s/client.ts');",
      "const options = { process: 1 }; options.process; type T = { Deno: string };",
      "const home = process.env.HOME;",
    ].join("\n"),
  );
  assert.deepEqual(facts.imports, [
    "src/pod/container_refs.ts",
    "src/admission/other.ts",
    "src/k8s/client.ts",
  ]);
  assert.deepEqual(facts.globals, [{ name: "process", line: 7 }]);
});

test("checkLayers() flags every kind of violation in a synthetic graph", () => {
  const module = (path: string, imports: string[], globals: string[] = []) => ({
    path,
    imports,
    globals: globals.map((name) => ({ name, line: 1 })),
  });
  const problems = checkLayers([
    module("src/admission/a.ts", ["tests/flow.ts", "testing/aws.ts", "scripts/pki.ts"]),
    module("src/authz/b.ts", ["src/server/app.ts", "src/admission/mutate_pod.ts"]),
    module("src/pod/c.ts", ["src/launcher/run.ts", "cli/webhook.ts"]),
    module("src/errors.ts", ["src/config/parse.ts"]),
    module("src/secrets/d.ts", [], ["Deno", "process"]),
    module("src/k8s/f_test.ts", ["tests/fixtures/x.ts", "scripts/demo.ts", "testing/kube_api.ts"]),
    module("cli/piggy_env.ts", ["testing/aws.ts", "src/launcher/run.ts"]),
    module("scripts/demo.ts", ["tests/demo_test.ts", "testing/aws.ts"]),
    module("tests/demo_test.ts", ["scripts/demo.ts", "testing/demo_run.ts"]),
    module("testing/helper.ts", ["scripts/bench/load.ts", "tests/demo_test.ts", "src/log.ts"]),
    // Allowed: the barrel, the server, tests beside the source, runtime globals, tooling outside src/.
    module("src/mod.ts", ["src/server/app.ts", "src/admission/admit.ts"]),
    module("src/server/app.ts", ["src/admission/mutate_handler.ts", "src/authz/secret_handler.ts"]),
    module("src/admission/admit.ts", ["src/admission/mutate_pod.ts", "src/pod/gather_facts.ts"]),
    module("src/k8s/e_test.ts", ["testing/kube_api.ts"], ["Deno"]),
    module("src/runtime/env.ts", [], ["Deno", "process"]),
    module("cli/webhook.ts", ["src/server/app.ts"], ["Deno"]),
    module("scripts/bench/mutate.ts", ["testing/aws.ts", "src/admission/admit.ts"], ["Deno"]),
    module("tests/x_test.ts", ["testing/aws.ts", "cli/webhook.ts"], ["Deno"]),
  ]);
  assert.deepEqual(problems, [
    "src/admission/a.ts imports tests/flow.ts: nothing in src/ imports tests/",
    "src/admission/a.ts imports testing/aws.ts: nothing in src/ imports testing/",
    "src/admission/a.ts imports scripts/pki.ts: nothing in src/ imports scripts/",
    "src/authz/b.ts imports src/server/app.ts: only src/mod.ts and cli/ import the server",
    "src/authz/b.ts imports src/admission/mutate_pod.ts: features do not import each other",
    "src/pod/c.ts imports src/launcher/run.ts: shared rooms import no feature",
    "src/pod/c.ts imports cli/webhook.ts: nothing in src/ imports cli/",
    "src/errors.ts imports src/config/parse.ts: constants, errors and log import only each other",
    "src/secrets/d.ts:1 reads the global Deno: only src/runtime/ and cli/",
    "src/secrets/d.ts:1 reads the global process: only src/runtime/ and cli/",
    "src/k8s/f_test.ts imports tests/fixtures/x.ts: nothing in src/ imports tests/",
    "src/k8s/f_test.ts imports scripts/demo.ts: nothing in src/ imports scripts/",
    "cli/piggy_env.ts imports testing/aws.ts: cli/ does not import testing/",
    "scripts/demo.ts imports tests/demo_test.ts: scripts/ does not import tests/",
    "tests/demo_test.ts imports scripts/demo.ts: tests/ does not import scripts/",
    "testing/helper.ts imports scripts/bench/load.ts: testing/ does not import scripts/",
    "testing/helper.ts imports tests/demo_test.ts: testing/ does not import tests/",
  ]);
});
