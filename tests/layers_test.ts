/**
 * The layer rules over the real module graph. Each module's import specifiers and the global
 * identifiers it reads come from the TypeScript parser (not a text search: comments and strings
 * do not count), relative imports are resolved to repository paths, and {@link checkLayers} lists
 * every import or global that breaks a rule. A synthetic graph shows each rule can fail.
 *
 * Layers, top to bottom (a layer imports only from below):
 * - `cli/`: entry points (a few lines of wiring each); `src/mod.ts`: the npm package's barrel.
 * - `src/server/`: the webhook's router and start-up; composes the features.
 * - features: `src/admission/` (the /mutate endpoint over the pure `src/mutate/`), `src/authz/`
 *   (/secret), `src/launcher/` (piggy-env), `src/mutate/`. They do not import each other (one
 *   allowance below) nor the server.
 * - shared rooms: `src/pod/`, `src/secrets/`, `src/k8s/`, `src/config/`, `src/http/`,
 *   `src/runtime/`. They import no feature and not the server.
 * - base: `src/constants.ts`, `src/errors.ts`, `src/log.ts`.
 * Nothing in `src/` (tests beside the source aside) imports `cli/`, `scripts/`, `tests/` or
 * `testing/`. Only `src/runtime/` and `cli/` read the `Deno` and `process` globals.
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

const FEATURES = new Set(["src/admission", "src/authz", "src/launcher", "src/mutate"]);
const SHARED = new Set([
  "src/pod",
  "src/secrets",
  "src/k8s",
  "src/config",
  "src/http",
  "src/runtime",
]);
const BASE = new Set(["src/constants.ts", "src/errors.ts", "src/log.ts"]);
const OUTSIDE_SRC = new Set(["cli", "scripts", "tests", "testing"]);
/** Feature → feature imports that are one feature in two folders. */
const FEATURE_ALLOWANCES = new Set([
  // admit() is the /mutate endpoint around the pure mutation: admission is its AdmissionReview
  // side, mutate its core; the core never imports admission.
  "src/admission -> src/mutate",
]);
/** Single files that break a rule today, each with the issue that removes it. */
const KNOWN_EXCEPTIONS = new Set([
  // TODO(#12): launcher wiring (it builds the AWS sources for piggy-env) moves out of runtime/.
  "src/runtime/launcher_deps.ts -> src/launcher",
]);
/** Where the runtime globals may be read. */
const GLOBALS_ALLOWED = new Set(["cli", "src/runtime"]);

function isTest(path: string): boolean {
  return /_test\.ts$/.test(path);
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
    if (!module.path.startsWith("src/") || isTest(module.path)) {
      // Outside src/ (and tests beside the source) only the globals rule below applies.
    } else {
      for (const target of module.imports) {
        if (!/^(src|cli|scripts|tests|testing)\//.test(target)) continue;
        const to = roomOf(target);
        if (KNOWN_EXCEPTIONS.has(`${module.path} -> ${to}`)) continue;
        const edge = `${module.path} imports ${target}`;
        if (OUTSIDE_SRC.has(to)) {
          problems.push(`${edge}: nothing in src/ imports ${to}/`);
        } else if (to === "src/server" && from !== "src/server" && module.path !== "src/mod.ts") {
          problems.push(`${edge}: only src/mod.ts and cli/ import the server`);
        } else if (
          FEATURES.has(from) && FEATURES.has(to) && from !== to &&
          !FEATURE_ALLOWANCES.has(`${from} -> ${to}`)
        ) {
          problems.push(`${edge}: features do not import each other`);
        } else if ((SHARED.has(from) || BASE.has(module.path)) && FEATURES.has(to)) {
          problems.push(`${edge}: shared rooms import no feature`);
        } else if (BASE.has(module.path) && SHARED.has(to)) {
          problems.push(`${edge}: constants, errors and log import only each other`);
        }
      }
    }
    if (module.path.startsWith("src/") && !isTest(module.path) && !GLOBALS_ALLOWED.has(from)) {
      for (const { name, line } of module.globals) {
        problems.push(
          `${module.path}:${line} reads the global ${name}: only src/runtime/ and cli/`,
        );
      }
    }
  }
  // Scripts, tests and test tooling keep their own rules: tests/tooling_layers_test.ts.
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
  return ["src", "cli"].flatMap(listTypeScript).map((path) =>
    scanModule(path, readFileSync(join(ROOT, path), "utf8"))
  );
}

test("the module graph of src/ and cli/ keeps the layer rules", () => {
  const graph = repositoryGraph();
  assert.ok(graph.length > 50, `only ${graph.length} modules found under ${ROOT}`);
  assert.deepEqual(checkLayers(graph), []);
});

test("scanModule() reads imports and globals from the syntax, not from comments or strings", () => {
  const facts = scanModule(
    "src/mutate/example.ts",
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
    "src/mutate/other.ts",
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
    module("src/mutate/a.ts", ["tests/_flow.ts", "testing/standins/aws.ts", "scripts/pki.ts"]),
    module("src/authz/b.ts", ["src/server/app.ts", "src/mutate/mutate_pod.ts"]),
    module("src/pod/c.ts", ["src/launcher/run.ts", "cli/webhook.ts"]),
    module("src/errors.ts", ["src/config/parse.ts"]),
    module("src/secrets/d.ts", [], ["Deno", "process"]),
    // Allowed: the barrel, the server, tests beside the source, allowances, runtime globals.
    module("src/mod.ts", ["src/server/app.ts", "src/admission/admit.ts"]),
    module("src/server/app.ts", ["src/admission/mutate_handler.ts", "src/authz/secret_handler.ts"]),
    module("src/admission/admit.ts", ["src/mutate/mutate_pod.ts", "src/pod/gather_facts.ts"]),
    module("src/k8s/e_test.ts", ["tests/standins/kube_api.ts"], ["Deno"]),
    module("src/runtime/env.ts", [], ["Deno", "process"]),
    module("cli/webhook.ts", ["src/server/app.ts"], ["Deno"]),
  ]);
  assert.deepEqual(problems, [
    "src/mutate/a.ts imports tests/_flow.ts: nothing in src/ imports tests/",
    "src/mutate/a.ts imports testing/standins/aws.ts: nothing in src/ imports testing/",
    "src/mutate/a.ts imports scripts/pki.ts: nothing in src/ imports scripts/",
    "src/authz/b.ts imports src/server/app.ts: only src/mod.ts and cli/ import the server",
    "src/authz/b.ts imports src/mutate/mutate_pod.ts: features do not import each other",
    "src/pod/c.ts imports src/launcher/run.ts: shared rooms import no feature",
    "src/pod/c.ts imports cli/webhook.ts: nothing in src/ imports cli/",
    "src/errors.ts imports src/config/parse.ts: constants, errors and log import only each other",
    "src/secrets/d.ts:1 reads the global Deno: only src/runtime/ and cli/",
    "src/secrets/d.ts:1 reads the global process: only src/runtime/ and cli/",
  ]);
});
