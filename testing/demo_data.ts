/**
 * The demo's data, shared by `deno task demo` (scripts/demo.ts) and the kind + LocalStack loop
 * (scripts/dev.sh): the AWS seed of demo/aws.yaml, the manifests of demo/k8s/, and the small
 * rewrites each environment needs (the demo app's path, the AWS endpoint of standalone pods).
 *
 * Pure apart from the two `load*` functions, which read the files.
 *
 * @module
 */

import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Container, EnvVar, Pod } from "kubernetes-types/core/v1.d.ts";
import { parse, parseAllDocuments } from "yaml";
import { ANNOTATION_PREFIX } from "../src/constants.ts";

/** Repository root. */
export const REPO_ROOT: string = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The demo directory. */
export const DEMO_DIR: string = join(REPO_ROOT, "demo");

/** The demo pods and the objects they need, applied in file-name order. */
export const MANIFEST_DIR: string = join(DEMO_DIR, "k8s");

/** Secrets Manager secrets and SSM parameters of the demo (fake values). */
export const AWS_DATA_FILE: string = join(DEMO_DIR, "aws.yaml");

/** The demo app on this machine. */
export const LOCAL_APP_DIR: string = join(DEMO_DIR, "app");

/** Where the demo pods mount the demo app (the ConfigMap `piggy-demo-app`). */
export const CLUSTER_APP_DIR = "/demo/app";

/** The standalone-mode annotation. */
export const STANDALONE_ANNOTATION = `${ANNOTATION_PREFIX}standalone`;

/** One Secrets Manager secret: a JSON object of strings. */
export interface SeedSecret {
  name: string;
  value: Record<string, string>;
}

/** One SSM parameter. */
export interface SeedParameter {
  name: string;
  type: "String" | "StringList" | "SecureString";
  value: string;
}

/** The content of demo/aws.yaml. */
export interface AwsSeed {
  /** Region every demo pod reads (its `piggysec.com/aws-region`). */
  region: string;
  secrets: SeedSecret[];
  parameters: SeedParameter[];
}

/** A Kubernetes object of a manifest, as parsed. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** One manifest file of demo/k8s. */
export interface DemoManifest {
  /** Path relative to the repository root, e.g. `demo/k8s/10-proxy.yaml`. */
  file: string;
  objects: KubeObject[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringMap(value: unknown, where: string): Record<string, string> {
  if (!isRecord(value)) throw new TypeError(`Cannot read ${where}: expecting a map of strings`);
  const result: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== "string") {
      throw new TypeError(`Cannot read ${where}: the value of "${key}" is not a string`);
    }
    result[key] = item;
  }
  return result;
}

function list(value: unknown, where: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new TypeError(`Cannot read ${where}: expecting a list`);
  return value;
}

/**
 * Parses demo/aws.yaml.
 *
 * @throws {TypeError} when the document does not have the expected shape
 */
export function parseAwsSeed(text: string): AwsSeed {
  const data: unknown = parse(text);
  if (!isRecord(data)) throw new TypeError("Cannot read the AWS seed: expecting a map");
  if (typeof data.region !== "string" || data.region === "") {
    throw new TypeError(`Cannot read the AWS seed: "region" must be a non-empty string`);
  }
  const secrets = list(data.secretsManager, "secretsManager").map((entry, index) => {
    const where = `secretsManager[${index}]`;
    if (!isRecord(entry) || typeof entry.name !== "string" || entry.name === "") {
      throw new TypeError(`Cannot read ${where}: "name" must be a non-empty string`);
    }
    return { name: entry.name, value: stringMap(entry.value, `${where}.value`) };
  });
  const parameters = list(data.ssmParameters, "ssmParameters").map((entry, index) => {
    const where = `ssmParameters[${index}]`;
    if (!isRecord(entry) || typeof entry.name !== "string" || !entry.name.startsWith("/")) {
      throw new TypeError(`Cannot read ${where}: "name" must be a path starting with "/"`);
    }
    const type = entry.type ?? "String";
    if (type !== "String" && type !== "StringList" && type !== "SecureString") {
      throw new TypeError(
        `Cannot read ${where}: "type" must be String, StringList or SecureString`,
      );
    }
    if (typeof entry.value !== "string") {
      throw new TypeError(`Cannot read ${where}: "value" must be a string`);
    }
    return { name: entry.name, type, value: entry.value } as SeedParameter;
  });
  return { region: data.region, secrets, parameters };
}

/** Reads and parses demo/aws.yaml (or `path`). */
export function loadAwsSeed(path: string = AWS_DATA_FILE): AwsSeed {
  return parseAwsSeed(readFileSync(path, "utf8"));
}

/**
 * Parses a multi-document manifest; empty documents are skipped.
 *
 * @throws {SyntaxError} when a document is not valid YAML
 * @throws {TypeError} when a document is not an object with a kind
 */
export function parseManifest(text: string, file: string): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) {
      throw new SyntaxError(`Cannot parse ${file}: ${document.errors[0]?.message}`);
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue;
    if (!isRecord(value) || typeof value.kind !== "string") {
      throw new TypeError(`Cannot read ${file}: every document must be an object with a "kind"`);
    }
    objects.push(value as KubeObject);
  }
  return objects;
}

/** Reads every `*.yaml` of demo/k8s (or `dir`), in file-name order. */
export function loadManifests(dir: string = MANIFEST_DIR): DemoManifest[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(".yaml"))
    .sort()
    .map((name) => {
      const path = join(dir, name);
      const file = path.startsWith(REPO_ROOT) ? path.slice(REPO_ROOT.length + 1) : path;
      return { file, objects: parseManifest(readFileSync(path, "utf8"), file) };
    });
}

/** True when the pod asks for standalone mode through its annotation. */
export function isStandalonePod(pod: Pod): boolean {
  return pod.metadata?.annotations?.[STANDALONE_ANNOTATION] === "true";
}

function everyContainer(pod: Pod): Container[] {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
}

/**
 * Points the AWS SDK of a standalone pod's launcher at another endpoint (LocalStack, or the demo's
 * AWS stand-in): adds `AWS_ENDPOINT_URL` to every container that does not set it. Other pods are
 * returned unchanged: in proxy mode only the webhook talks to AWS.
 *
 * @returns a copy; `pod` is not modified
 */
export function withAwsEndpoint(pod: Pod, endpoint: string): Pod {
  const copy = structuredClone(pod);
  if (!isStandalonePod(copy)) return copy;
  for (const container of everyContainer(copy)) {
    const env: EnvVar[] = container.env ?? [];
    if (!env.some((entry) => entry.name === "AWS_ENDPOINT_URL")) {
      env.push({ name: "AWS_ENDPOINT_URL", value: endpoint });
    }
    container.env = env;
  }
  return copy;
}

/**
 * Replaces the cluster path of the demo app (`/demo/app/…`) in `command` and `args` with
 * `localDir`, so the same pod runs the script of this checkout.
 *
 * @returns a copy; `pod` is not modified
 */
export function withLocalApp(pod: Pod, localDir: string = LOCAL_APP_DIR): Pod {
  const copy = structuredClone(pod);
  const prefix = `${CLUSTER_APP_DIR}/`;
  const map = (items: string[] | undefined) =>
    items?.map((item) =>
      item.startsWith(prefix) ? join(localDir, item.slice(prefix.length)) : item
    );
  for (const container of everyContainer(copy)) {
    const command = map(container.command);
    const args = map(container.args);
    if (command) container.command = command;
    if (args) container.args = args;
  }
  return copy;
}

/**
 * The Secret as the API server stores it: `stringData` merged into base64 `data`.
 *
 * @returns a copy; `secret` is not modified
 */
export function storedSecret(secret: KubeObject): KubeObject {
  const copy = structuredClone(secret);
  const data = isRecord(copy.data) ? { ...copy.data } as Record<string, string> : {};
  const stringData = isRecord(copy.stringData) ? stringMap(copy.stringData, "stringData") : {};
  for (const [key, value] of Object.entries(stringData)) {
    data[key] = btoa(String.fromCharCode(...new TextEncoder().encode(value)));
  }
  delete copy.stringData;
  copy.data = data;
  return copy;
}

/** The decoded values of a stored Secret's `data`. */
export function secretValues(secret: KubeObject): Record<string, string> {
  const data = isRecord(secret.data) ? stringMap(secret.data, "data") : {};
  const values: Record<string, string> = {};
  for (const [key, encoded] of Object.entries(data)) {
    values[key] = new TextDecoder().decode(Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0)));
  }
  return values;
}

const SECRET_NAME_ANNOTATION = `${ANNOTATION_PREFIX}aws-secret-name`;
const SSM_PATH_ANNOTATION = `${ANNOTATION_PREFIX}aws-ssm-parameter-path`;

/** Where the pod's secrets come from, and their values per key (from demo/aws.yaml). */
export function expectedSource(
  pod: Pod,
  seed: AwsSeed,
): { label: string; values: Map<string, string> } {
  const annotations = pod.metadata?.annotations ?? {};
  const ssmPath = annotations[SSM_PATH_ANNOTATION] ?? "";
  if (ssmPath !== "") {
    const prefix = `${ssmPath.replace(/\/+$/, "")}/`;
    const values = new Map<string, string>();
    for (const parameter of seed.parameters) {
      if (parameter.name.startsWith(prefix)) {
        values.set(parameter.name.slice(parameter.name.lastIndexOf("/") + 1), parameter.value);
      }
    }
    return { label: `SSM Parameter Store path ${ssmPath}`, values };
  }
  const named = annotations[SECRET_NAME_ANNOTATION] ?? "";
  const name = named !== ""
    ? named
    : `${pod.metadata?.namespace}/${pod.spec?.serviceAccountName ?? "default"}`;
  const secret = seed.secrets.find((entry) => entry.name === name);
  return {
    label: named !== ""
      ? `Secrets Manager secret ${name}`
      : `Secrets Manager secret ${name} (the default secret name)`,
    values: new Map(Object.entries(secret?.value ?? {})),
  };
}

/** Parses the demo app's `  NAME=value` lines. */
export function printedValues(stdout: string): Map<string, string> {
  const printed = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const match = /^ {2}([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (match) printed.set(match[1]!, match[2]!);
  }
  return printed;
}
