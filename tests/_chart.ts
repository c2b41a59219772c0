/**
 * Chart test support: runs the real `helm` (extracted by scripts/fetch_helm.sh into .cache/helm/),
 * parses what it renders, and validates every object against the Kubernetes schemas shipped by
 * kubernetes-models, plus a typo check those schemas cannot do (they accept unknown fields), plus
 * hand-written checks for the cert-manager kinds (no schema ships for them).
 *
 * @module
 */

import { spawn } from "node:child_process";
import process from "node:process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Pod } from "kubernetes-models/v1/Pod";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import { MutatingWebhookConfiguration } from "kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration";
import { ValidatingAdmissionPolicy } from "kubernetes-models/admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy";
import { ValidatingAdmissionPolicyBinding } from "kubernetes-models/admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { Ingress } from "kubernetes-models/networking.k8s.io/v1/Ingress";

/** Repository root. */
export const ROOT: string = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The chart under test. */
export const CHART_DIR: string = join(ROOT, "charts", "piggy-webhooks");

/** Go Piggy values files rewritten as fixtures. */
export const FIXTURES_DIR: string = join(ROOT, "tests", "fixtures", "chart");

/** A rendered Kubernetes object (plain JSON). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/**
 * Path of the helm binary: `$HELM_BIN`, else `.cache/helm/bin/helm`.
 *
 * @throws Error when helm is missing: the chart tests never skip silently
 */
export function helmPath(): string {
  const path = process.env.HELM_BIN || join(ROOT, ".cache", "helm", "bin", "helm");
  if (!existsSync(path)) {
    throw new Error(
      `Cannot find helm at "${path}": run "bash scripts/fetch_helm.sh" first (or set HELM_BIN)`,
    );
  }
  return path;
}

/** Result of one helm run. */
export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Longest a helm run may take before it is killed. */
const HELM_TIMEOUT_MS = 60_000;

/**
 * Runs helm with `args`; never throws on a non-zero exit. Asynchronous on purpose: a fake API
 * server in this process must keep answering while helm runs.
 */
export async function helm(
  args: string[],
  options: { env?: Record<string, string> } = {},
): Promise<HelmResult> {
  const home = mkdtempSync(join(tmpdir(), "piggy-helm-home-"));
  try {
    const child = spawn(helmPath(), args, {
      stdio: ["ignore", "pipe", "pipe"],
      timeout: HELM_TIMEOUT_MS,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        // Keep helm away from the user's config, caches and clusters (HOME: kubectl's discovery
        // cache, which otherwise lands in ./.kube).
        HOME: home,
        HELM_CONFIG_HOME: join(home, "config"),
        HELM_CACHE_HOME: join(home, "cache"),
        HELM_DATA_HOME: join(home, "data"),
        KUBECONFIG: join(home, "no-kubeconfig"),
        ...options.env,
      },
    });
    const stdout: string[] = [];
    const stderr: string[] = [];
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => stdout.push(chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => stderr.push(chunk));
    const status = await new Promise<number>((done, fail) => {
      child.on("error", fail);
      child.on("close", (code, signal) => done(code ?? (signal ? 128 : 1)));
    });
    return { status, stdout: stdout.join(""), stderr: stderr.join("") };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** How to render the chart. */
export interface RenderOptions {
  /** Values (written to a temporary JSON values file). */
  values?: Record<string, unknown>;
  /** Values files, applied before `values`. */
  valuesFiles?: string[];
  /** @default "piggy" */
  release?: string;
  /** @default "piggy-system" */
  namespace?: string;
  /** `--kube-version` (helm's default is its own client version). */
  kubeVersion?: string;
  /** `--api-versions` entries. */
  apiVersions?: string[];
  /** Extra helm arguments. */
  args?: string[];
  /** Extra environment of helm. */
  env?: Record<string, string>;
}

function valuesArgs(options: RenderOptions, dir: string): string[] {
  const args: string[] = [];
  for (const file of options.valuesFiles ?? []) args.push("-f", file);
  if (options.values) {
    const file = join(dir, "values.json");
    writeFileSync(file, JSON.stringify(options.values));
    args.push("-f", file);
  }
  if (options.kubeVersion) args.push("--kube-version", options.kubeVersion);
  for (const api of options.apiVersions ?? []) args.push("--api-versions", api);
  return [...args, ...(options.args ?? [])];
}

/** Runs `helm template` and returns the raw result. */
export async function helmTemplate(options: RenderOptions = {}): Promise<HelmResult> {
  const dir = mkdtempSync(join(tmpdir(), "piggy-chart-"));
  try {
    return await helm([
      "template",
      options.release ?? "piggy",
      CHART_DIR,
      "--namespace",
      options.namespace ?? "piggy-system",
      ...valuesArgs(options, dir),
    ], options.env ? { env: options.env } : {});
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs `helm install --dry-run` and returns its NOTES section: client-side, or server-side against
 * `cluster` (the only way to give `helm install` another Kubernetes version).
 */
export async function renderNotes(
  options: RenderOptions = {},
  cluster?: FakeCluster,
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "piggy-chart-"));
  try {
    const result = await helm([
      "install",
      options.release ?? "piggy",
      CHART_DIR,
      "--namespace",
      options.namespace ?? "piggy-system",
      ...(cluster ? ["--dry-run=server", "--disable-openapi-validation"] : ["--dry-run=client"]),
      ...valuesArgs(options, dir),
    ], cluster ? { env: { KUBECONFIG: cluster.kubeconfig } } : {});
    if (result.status !== 0) throw new Error(`helm install --dry-run failed: ${result.stderr}`);
    const at = result.stdout.indexOf("NOTES:");
    if (at < 0) throw new Error("helm install --dry-run printed no NOTES");
    return result.stdout.slice(at);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Parses a multi-document manifest the way Kubernetes does (YAML 1.1: `0644` is octal).
 *
 * @throws SyntaxError on invalid YAML
 */
export function parseManifests(text: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(text, { version: "1.1" })) {
    if (doc.errors.length > 0) {
      throw new SyntaxError(`Cannot parse the rendered YAML: ${doc.errors[0]?.message}`);
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    objects.push(value as K8sObject);
  }
  return objects;
}

/**
 * Renders the chart, parses the output and validates every object.
 *
 * @throws Error when helm fails or any object is invalid (all problems in the message)
 */
export async function renderChart(options: RenderOptions = {}): Promise<K8sObject[]> {
  const result = await helmTemplate(options);
  if (result.status !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  const objects = parseManifests(result.stdout);
  const problems = objects.flatMap((object) =>
    validateObject(object, options.namespace ?? "piggy-system").map((problem) =>
      `${object.kind}/${object.metadata?.name}: ${problem}`
    )
  );
  if (problems.length > 0) throw new Error(`Invalid rendered objects:\n${problems.join("\n")}`);
  return objects;
}

/**
 * Finds exactly one object of `kind` (and `name` when given).
 *
 * @throws Error when there is not exactly one
 */
export function findObject(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) =>
    o.kind === kind && (name === undefined || o.metadata.name === name)
  );
  if (found.length !== 1) {
    throw new Error(`Expected one ${kind}${name ? ` "${name}"` : ""}, found ${found.length}`);
  }
  return found[0] as K8sObject;
}

/** Reads a nested value by path, `undefined` when any step is missing. */
export function dig(value: unknown, ...path: (string | number)[]): unknown {
  let current = value;
  for (const step of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string | number, unknown>)[step];
  }
  return current;
}

// ---------------------------------------------------------------------------------------------
// Validation

/** A kubernetes-models class: only its prototype's schema validator is used. */
type ModelClass = { prototype: { validate: () => void } };

const MODELS: Record<string, ModelClass> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Pod": Pod,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": Deployment,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "rbac.authorization.k8s.io/v1/ClusterRole": ClusterRole,
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": ClusterRoleBinding,
  "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration": MutatingWebhookConfiguration,
  "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy": ValidatingAdmissionPolicy,
  "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding":
    ValidatingAdmissionPolicyBinding,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "networking.k8s.io/v1/Ingress": Ingress,
};

const CLUSTER_SCOPED = new Set([
  "ClusterRole",
  "ClusterRoleBinding",
  "MutatingWebhookConfiguration",
  "ValidatingAdmissionPolicy",
  "ValidatingAdmissionPolicyBinding",
]);

interface Access {
  read: Set<string>;
  enumerated: boolean;
}

/**
 * Runs a schema validator over a proxy of `value` that records which properties the validator
 * reads. The compiled schemas read every property they know (`data.x !== undefined`) and
 * enumerate the keys of free-form maps, so a key the validator never read on an object whose
 * known properties it did read is a field the schema does not have: a typo.
 */
function unknownFields(value: unknown, validate: (data: unknown) => void): string[] {
  const accesses = new Map<object, Access>();
  const wrap = (node: unknown): unknown => {
    if (node === null || typeof node !== "object") return node;
    const access: Access = { read: new Set(), enumerated: false };
    accesses.set(node, access);
    const children = new Map<string | symbol, unknown>();
    return new Proxy(node, {
      get(target, key) {
        if (typeof key === "string") access.read.add(key);
        if (!children.has(key)) {
          children.set(key, wrap((target as Record<string | symbol, unknown>)[key]));
        }
        return children.get(key);
      },
      has(target, key) {
        if (typeof key === "string") access.read.add(key);
        return key in target;
      },
      ownKeys(target) {
        access.enumerated = true;
        return Reflect.ownKeys(target);
      },
    });
  };
  validate(wrap(value));
  const unknown: string[] = [];
  const walk = (node: unknown, path: string) => {
    if (node === null || typeof node !== "object") return;
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, `${path}[${i}]`));
      return;
    }
    const access = accesses.get(node);
    for (const [key, child] of Object.entries(node)) {
      if (access && access.read.size > 0 && !access.enumerated && !access.read.has(key)) {
        unknown.push(`${path}.${key}`);
      }
      walk(child, `${path}.${key}`);
    }
  };
  walk(value, "");
  return unknown;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const GO_DURATION = /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;

function checkKeys(value: unknown, allowed: string[], path: string, problems: string[]): void {
  if (value === undefined) return;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    problems.push(`${path} must be an object`);
    return;
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) problems.push(`unknown field ${path}.${key}`);
  }
}

function checkString(value: unknown, path: string, problems: string[], required = true): void {
  if (value === undefined && !required) return;
  if (typeof value !== "string" || value === "") {
    problems.push(`${path} must be a non-empty string`);
  }
}

/** Hand-written checks of the cert-manager.io/v1 kinds the chart renders (Issuer, Certificate). */
function validateCertManager(object: K8sObject): string[] {
  const problems: string[] = [];
  checkKeys(object, ["apiVersion", "kind", "metadata", "spec"], "", problems);
  const spec = object.spec as Record<string, unknown> | undefined;
  if (!spec || typeof spec !== "object") return [...problems, ".spec is required"];
  if (object.kind === "Issuer") {
    const kinds = ["selfSigned", "ca", "acme", "vault", "venafi"];
    checkKeys(spec, kinds, ".spec", problems);
    const present = kinds.filter((k) => k in spec);
    if (present.length !== 1) problems.push(`.spec needs exactly one issuer type, got ${present}`);
    if ("ca" in spec) {
      checkKeys(
        spec.ca,
        ["secretName", "crlDistributionPoints", "ocspServers"],
        ".spec.ca",
        problems,
      );
      checkString(dig(spec, "ca", "secretName"), ".spec.ca.secretName", problems);
    }
    if ("selfSigned" in spec) {
      checkKeys(spec.selfSigned, ["crlDistributionPoints"], ".spec.selfSigned", problems);
    }
    return problems;
  }
  if (object.kind === "Certificate") {
    checkKeys(
      spec,
      [
        "secretName",
        "secretTemplate",
        "commonName",
        "dnsNames",
        "ipAddresses",
        "uris",
        "emailAddresses",
        "duration",
        "renewBefore",
        "isCA",
        "usages",
        "privateKey",
        "issuerRef",
        "subject",
        "keystores",
        "revisionHistoryLimit",
        "additionalOutputFormats",
        "literalSubject",
        "nameConstraints",
        "encodeUsagesInRequest",
        "otherNames",
        "renewBeforePercentage",
      ],
      ".spec",
      problems,
    );
    checkString(spec.secretName, ".spec.secretName", problems);
    checkKeys(spec.issuerRef, ["name", "kind", "group"], ".spec.issuerRef", problems);
    checkString(dig(spec, "issuerRef", "name"), ".spec.issuerRef.name", problems);
    const issuerKind = dig(spec, "issuerRef", "kind");
    if (issuerKind !== undefined && issuerKind !== "Issuer" && issuerKind !== "ClusterIssuer") {
      problems.push(`.spec.issuerRef.kind "${issuerKind}" is not Issuer or ClusterIssuer`);
    }
    for (const field of ["duration", "renewBefore"]) {
      const value = spec[field];
      if (value !== undefined && (typeof value !== "string" || !GO_DURATION.test(value))) {
        problems.push(`.spec.${field} "${value}" is not a Go duration`);
      }
    }
    if (spec.isCA !== undefined && typeof spec.isCA !== "boolean") {
      problems.push(".spec.isCA must be a boolean");
    }
    if (typeof spec.commonName === "string" && spec.commonName.length > 64) {
      problems.push(".spec.commonName is longer than 64 characters");
    }
    if (spec.dnsNames !== undefined) {
      if (!Array.isArray(spec.dnsNames) || spec.dnsNames.some((n) => typeof n !== "string")) {
        problems.push(".spec.dnsNames must be a list of strings");
      }
    }
    checkKeys(spec.secretTemplate, ["labels", "annotations"], ".spec.secretTemplate", problems);
    checkKeys(
      spec.privateKey,
      ["algorithm", "size", "encoding", "rotationPolicy"],
      ".spec.privateKey",
      problems,
    );
    const algorithm = dig(spec, "privateKey", "algorithm");
    if (algorithm !== undefined && !["RSA", "ECDSA", "Ed25519"].includes(algorithm as string)) {
      problems.push(`.spec.privateKey.algorithm "${algorithm}" is not RSA, ECDSA or Ed25519`);
    }
    const usages = [
      "signing",
      "digital signature",
      "content commitment",
      "key encipherment",
      "key agreement",
      "data encipherment",
      "cert sign",
      "crl sign",
      "encipher only",
      "decipher only",
      "any",
      "server auth",
      "client auth",
      "code signing",
      "email protection",
      "s/mime",
      "ipsec end system",
      "ipsec tunnel",
      "ipsec user",
      "timestamping",
      "ocsp signing",
      "microsoft sgc",
      "netscape sgc",
    ];
    for (const usage of (spec.usages as unknown[] | undefined) ?? []) {
      if (!usages.includes(usage as string)) problems.push(`.spec.usages has unknown "${usage}"`);
    }
    return problems;
  }
  return [`unknown cert-manager kind ${object.kind}`];
}

/** Hand-written checks of the monitoring.coreos.com/v1 kinds (ServiceMonitor, PrometheusRule). */
function validateMonitoring(object: K8sObject): string[] {
  const problems: string[] = [];
  checkKeys(object, ["apiVersion", "kind", "metadata", "spec"], "", problems);
  const spec = object.spec as Record<string, unknown> | undefined;
  if (!spec || typeof spec !== "object") return [...problems, ".spec is required"];
  if (object.kind === "ServiceMonitor") {
    checkKeys(
      spec,
      ["selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels", "podTargetLabels"],
      ".spec",
      problems,
    );
    checkKeys(spec.selector, ["matchLabels", "matchExpressions"], ".spec.selector", problems);
    const endpoints = spec.endpoints;
    if (!Array.isArray(endpoints) || endpoints.length === 0) {
      return [...problems, ".spec.endpoints must be a non-empty list"];
    }
    endpoints.forEach((endpoint: unknown, i: number) => {
      const path = `.spec.endpoints[${i}]`;
      checkKeys(
        endpoint,
        [
          "port",
          "path",
          "scheme",
          "interval",
          "scrapeTimeout",
          "tlsConfig",
          "relabelings",
          "metricRelabelings",
          "honorLabels",
        ],
        path,
        problems,
      );
      checkString(dig(endpoint, "port"), `${path}.port`, problems);
      const scheme = dig(endpoint, "scheme");
      if (scheme !== "http" && scheme !== "https") problems.push(`${path}.scheme is ${scheme}`);
      for (const field of ["interval", "scrapeTimeout"]) {
        const value = dig(endpoint, field);
        if (value !== undefined && (typeof value !== "string" || !GO_DURATION.test(value))) {
          problems.push(`${path}.${field} "${value}" is not a duration`);
        }
      }
      const tls = dig(endpoint, "tlsConfig");
      checkKeys(
        tls,
        ["ca", "serverName", "insecureSkipVerify", "cert", "keySecret"],
        path,
        problems,
      );
      const ca = dig(tls, "ca") as Record<string, unknown> | undefined;
      if (ca !== undefined) {
        checkKeys(ca, ["configMap", "secret"], `${path}.tlsConfig.ca`, problems);
        if (Object.keys(ca).length !== 1) problems.push(`${path}.tlsConfig.ca needs one source`);
        for (const source of Object.values(ca)) {
          checkKeys(source, ["name", "key", "optional"], `${path}.tlsConfig.ca`, problems);
          checkString(dig(source, "name"), `${path}.tlsConfig.ca.*.name`, problems);
          checkString(dig(source, "key"), `${path}.tlsConfig.ca.*.key`, problems);
        }
      }
    });
    return problems;
  }
  if (object.kind === "PrometheusRule") {
    checkKeys(spec, ["groups"], ".spec", problems);
    const groups = spec.groups;
    if (!Array.isArray(groups) || groups.length === 0) return [...problems, ".spec.groups empty"];
    groups.forEach((group: unknown, g: number) => {
      checkKeys(group, ["name", "interval", "rules", "limit"], `.spec.groups[${g}]`, problems);
      checkString(dig(group, "name"), `.spec.groups[${g}].name`, problems);
      const rules = dig(group, "rules");
      if (!Array.isArray(rules)) return void problems.push(`.spec.groups[${g}].rules not a list`);
      rules.forEach((rule: unknown, r: number) => {
        const path = `.spec.groups[${g}].rules[${r}]`;
        checkKeys(
          rule,
          ["alert", "record", "expr", "for", "labels", "annotations"],
          path,
          problems,
        );
        checkString(dig(rule, "expr"), `${path}.expr`, problems);
        if ((dig(rule, "alert") === undefined) === (dig(rule, "record") === undefined)) {
          problems.push(`${path} needs exactly one of alert and record`);
        }
        const duration = dig(rule, "for");
        if (duration !== undefined && !GO_DURATION.test(String(duration))) {
          problems.push(`${path}.for "${duration}" is not a duration`);
        }
        for (const map of ["labels", "annotations"]) {
          const value = dig(rule, map);
          if (value === undefined) continue;
          if (typeof value !== "object" || value === null) problems.push(`${path}.${map}`);
          for (const v of Object.values(value as object)) {
            if (typeof v !== "string") problems.push(`${path}.${map} values must be strings`);
          }
        }
      });
    });
    return problems;
  }
  return [`unknown monitoring kind ${object.kind}`];
}

/**
 * Validates one rendered object: the Kubernetes schema (kubernetes-models), unknown fields (typos),
 * metadata name and namespace. cert-manager kinds are checked by hand.
 *
 * @param namespace the release namespace every namespaced object must carry
 * @returns the problems found (empty when valid)
 */
export function validateObject(object: K8sObject, namespace: string): string[] {
  const problems: string[] = [];
  const name = object.metadata?.name;
  if (typeof name !== "string" || name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    problems.push(`metadata.name "${name}" is not a DNS subdomain`);
  }
  if (CLUSTER_SCOPED.has(object.kind)) {
    if (object.metadata.namespace !== undefined) {
      problems.push("cluster-scoped object has a namespace");
    }
  } else if (object.metadata?.namespace !== namespace) {
    problems.push(`metadata.namespace is "${object.metadata?.namespace}", not "${namespace}"`);
  }
  if (object.apiVersion === "cert-manager.io/v1") {
    return [...problems, ...validateCertManager(object)];
  }
  if (object.apiVersion === "monitoring.coreos.com/v1") {
    return [...problems, ...validateMonitoring(object)];
  }
  const model = MODELS[`${object.apiVersion}/${object.kind}`];
  if (!model) return [...problems, `no schema for ${object.apiVersion} ${object.kind}`];
  try {
    for (const field of unknownFields(object, (data) => model.prototype.validate.call(data))) {
      problems.push(`unknown field ${field}`);
    }
  } catch (error) {
    problems.push(`schema: ${(error as Error).message}`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// A discovery-only Kubernetes API, for `helm template --dry-run=server` (lookup)

/** API groups and kinds the chart may render: [plural, kind, namespaced]. */
const DISCOVERY: Record<string, [string, string, boolean][]> = {
  "v1": [
    ["secrets", "Secret", true],
    ["configmaps", "ConfigMap", true],
    ["services", "Service", true],
    ["serviceaccounts", "ServiceAccount", true],
    ["pods", "Pod", true],
  ],
  "apps/v1": [["deployments", "Deployment", true]],
  "policy/v1": [["poddisruptionbudgets", "PodDisruptionBudget", true]],
  "rbac.authorization.k8s.io/v1": [
    ["clusterroles", "ClusterRole", false],
    ["clusterrolebindings", "ClusterRoleBinding", false],
  ],
  "admissionregistration.k8s.io/v1": [
    ["mutatingwebhookconfigurations", "MutatingWebhookConfiguration", false],
    ["validatingadmissionpolicies", "ValidatingAdmissionPolicy", false],
    ["validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding", false],
  ],
  "autoscaling/v2": [["horizontalpodautoscalers", "HorizontalPodAutoscaler", true]],
  "networking.k8s.io/v1": [["ingresses", "Ingress", true]],
  "cert-manager.io/v1": [["issuers", "Issuer", true], ["certificates", "Certificate", true]],
};

/** A running fake API server that serves discovery and a set of stored objects. */
export interface FakeCluster {
  /** kubeconfig file pointing at the server. */
  kubeconfig: string;
  /** Paths requested so far. */
  requests: string[];
  close(): Promise<void>;
}

/** What the fake API server holds. */
export interface FakeClusterOptions {
  /** Objects answered to GET. */
  objects?: K8sObject[];
  /**
   * Kubernetes minor version reported by /version.
   * @default 30
   */
  minor?: number;
}

/**
 * Starts a plain-HTTP API server on 127.0.0.1 that answers discovery and GETs of `objects`
 * (everything else is a 404 Status), enough for helm's `lookup` and `--dry-run=server`.
 */
export async function startFakeCluster(options: FakeClusterOptions = {}): Promise<FakeCluster> {
  const objects = options.objects ?? [];
  const minor = options.minor ?? 30;
  const { createServer } = await import("node:http");
  const requests: string[] = [];
  const byPath = new Map<string, K8sObject>();
  for (const object of objects) {
    const [plural, , namespaced] = DISCOVERY[object.apiVersion]?.find(([, kind]) =>
      kind === object.kind
    ) ?? [];
    if (!plural) throw new Error(`Cannot serve ${object.apiVersion} ${object.kind}`);
    const base = object.apiVersion === "v1" ? "/api/v1" : `/apis/${object.apiVersion}`;
    const ns = namespaced ? `/namespaces/${object.metadata.namespace}` : "";
    byPath.set(`${base}${ns}/${plural}/${object.metadata.name}`, object);
  }
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    requests.push(`${req.method} ${path}`);
    const send = (body: unknown, status = 200) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (path === "/version") {
      return send({
        major: "1",
        minor: String(minor),
        gitVersion: `v1.${minor}.0`,
        platform: "linux/amd64",
      });
    }
    if (path === "/api") return send({ kind: "APIVersions", versions: ["v1"] });
    if (path === "/apis") {
      return send({
        kind: "APIGroupList",
        apiVersion: "v1",
        groups: Object.keys(DISCOVERY).filter((gv) => gv !== "v1").map((gv) => {
          const [group, version] = gv.split("/");
          const preferred = { groupVersion: gv, version };
          return { name: group, versions: [preferred], preferredVersion: preferred };
        }),
      });
    }
    const groupVersion = path === "/api/v1" ? "v1" : path.replace(/^\/apis\//, "");
    const resources = DISCOVERY[groupVersion];
    if (resources) {
      return send({
        kind: "APIResourceList",
        groupVersion,
        resources: resources.map(([name, kind, namespaced]) => ({
          name,
          singularName: kind.toLowerCase(),
          namespaced,
          kind,
          verbs: ["get", "list", "create", "update", "patch", "delete"],
        })),
      });
    }
    const object = req.method === "GET" ? byPath.get(path) : undefined;
    if (object) return send(object);
    send(
      { kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404 },
      404,
    );
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("Cannot read the port");
  const dir = mkdtempSync(join(tmpdir(), "piggy-fake-cluster-"));
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "fake", cluster: { server: `http://127.0.0.1:${address.port}` } }],
      users: [{ name: "fake", user: { token: "fake" } }],
      contexts: [{ name: "fake", context: { cluster: "fake", user: "fake" } }],
      "current-context": "fake",
    }),
  );
  return {
    kubeconfig,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((done, fail) => server.close((e) => (e ? fail(e) : done())));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Marks `object` as owned by a helm release, as `helm install` leaves it in the cluster. */
export function ownedByRelease(object: K8sObject, release: string, namespace: string): K8sObject {
  const copy = structuredClone(object);
  const metadata = copy.metadata as Record<string, unknown>;
  metadata.labels = { ...(metadata.labels as object), "app.kubernetes.io/managed-by": "Helm" };
  metadata.annotations = {
    ...(metadata.annotations as object),
    "meta.helm.sh/release-name": release,
    "meta.helm.sh/release-namespace": namespace,
  };
  return copy;
}
