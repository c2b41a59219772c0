// deno-lint-ignore-file no-console
/**
 * `deno task docs`: writes docs/annotations.md from the settings table (src/config/settings.ts),
 * the webhook options table (src/config/webhook_options.ts) and the wire names of
 * src/constants.ts, formatted with `deno fmt`, and the `env` properties of the chart's
 * values.schema.json from the same tables. `--check` writes nothing and exits 1 when a file
 * differs from what the tables produce (tests/docs_test.ts runs the same comparison). `--file
 * <path>` targets another annotations file (and leaves the schema alone).
 *
 * @module
 */

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ANNOTATION_PREFIX,
  DEFAULT_AWS_MAX_ANSWER_BYTES,
  DEFAULT_TOKEN_FILE,
  DEFAULT_VERSION_STAGE,
  ENV,
  LAUNCHER_ONLY_KEYS,
  MAX_AWS_MAX_ANSWER_BYTES,
  PIGGY_UID_ANNOTATION,
  RESERVED_KEYS,
} from "../src/constants.ts";
import { type SettingDefinition, type SettingReader, SETTINGS } from "../src/config/settings.ts";
import {
  chartEnvSchemas,
  DISCOVERY_VARIABLES,
  WEBHOOK_OPTIONS,
  type WebhookOption,
} from "../src/config/webhook_options.ts";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "../src/launcher/options.ts";
import { MAX_ATTEMPTS } from "../src/launcher/args.ts";

/** Repository root. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The generated file. */
export const ANNOTATIONS_DOC = join(ROOT, "docs", "annotations.md");

/** The chart schema whose `env` properties are generated. */
export const CHART_SCHEMA = join(ROOT, "charts", "piggy-webhooks", "values.schema.json");

const OPTION_ROWS: readonly WebhookOption<unknown>[] = Object.values(WEBHOOK_OPTIONS);

const READERS: Record<SettingReader, string> = {
  mutate: "`/mutate`",
  secret: "`/secret`",
  launcher: "piggy-env",
};

const TYPES: Record<SettingDefinition["type"], string> = {
  string: "string",
  bool: "bool",
  int: "integer ≥ 0",
  duration: "Go duration",
  quantity: "quantity",
  pullPolicy: "pull policy",
  medium: '`""` or `Memory`',
};

/**
 * Who reads each `ENV` name, and what it means there. Every key of `ENV` must be listed. `setBy`
 * says where a launcher variable comes from when no setting injects it.
 */
const ENV_DOCS: Record<
  keyof typeof ENV,
  { reader: "launcher" | "webhook"; doc: string; setBy?: string }
> = {
  AWS_SECRET_NAME: {
    reader: "launcher",
    doc: "Secrets Manager secret name or ARN (standalone mode; in proxy mode the webhook decides)",
  },
  AWS_REGION: { reader: "launcher", doc: "AWS region of the secret (standalone mode)" },
  AWS_SSM_PARAMETER_PATH: {
    reader: "launcher",
    doc: "SSM path read instead of Secrets Manager when set (standalone mode)",
  },
  AWS_SECRET_VERSION: {
    reader: "launcher",
    doc: `Version id (a UUID) or stage label; empty means \`${DEFAULT_VERSION_STAGE}\` ` +
      "(standalone mode)",
  },
  DEBUG: { reader: "launcher", doc: "`true`: debug log lines on stderr" },
  STANDALONE: {
    reader: "launcher",
    doc: "`true`: read AWS with the pod's own identity instead of the webhook (overrides " +
      "`--standalone`)",
  },
  ADDRESS: { reader: "launcher", doc: "Base URL of the webhook; `/secret` is appended" },
  POD_NAME: {
    reader: "launcher",
    doc: "Pod name sent to `/secret`",
    setBy: "the webhook, proxy mode (downward API `metadata.name`)",
  },
  UID: {
    reader: "launcher",
    doc: "This container's UID, sent to `/secret`",
    setBy: "the webhook, proxy mode",
  },
  IGNORE_NO_ENV: {
    reader: "launcher",
    doc: "`true`: start the command even when secrets cannot be fetched or references stay " +
      "unresolved (a warning is logged)",
  },
  DNS_RESOLVER: {
    reader: "launcher",
    doc: "Go Piggy's resolver switch: accepted and ignored (the system resolver is used)",
  },
  INITIAL_DELAY: {
    reader: "launcher",
    doc: "Go duration to wait before the first fetch (overrides `--initial-delay`)",
  },
  NUMBER_OF_RETRY: {
    reader: "launcher",
    doc: `Total fetch attempts, 1 to ${MAX_ATTEMPTS}; default 1 (overrides \`--retry\`). ` +
      "Attempts are separated by an exponential backoff with jitter; a refusal of the " +
      "webhook (4xx other than 408/429) or a permanent AWS error in standalone mode ends them",
  },
  SKIP_VERIFY_TLS: {
    reader: "launcher",
    doc: "`true` turns off the verification of the webhook's certificate (explicit opt-out; " +
      "the default is to verify)",
    setBy: "you, in the container's env",
  },
  CA_FILE: {
    reader: "launcher",
    doc: "Path of a PEM bundle that verifies the webhook (added to `PIGGY_CA_BUNDLE`)",
    setBy: "you, in the container's env",
  },
  CA_BUNDLE: {
    reader: "launcher",
    doc: "PEM bundle that verifies the webhook; the webhook injects it from its " +
      "`PIGGY_CA_BUNDLE_FILE`. Without either, the system roots verify",
  },
  TOKEN_FILE: {
    reader: "launcher",
    doc: `Service-account token sent as \`X-Token\`, read again at every attempt; default ` +
      `\`${DEFAULT_TOKEN_FILE}\` (the API server's token, which only launchers of earlier ` +
      "releases send)",
    setBy: "the webhook, proxy mode: the projected token for `PIGGY_TOKEN_AUDIENCES`",
  },
  COMMAND_TEMPLATE: {
    reader: "launcher",
    doc: "The command as admitted, before the kubelet expands `$(VAR)`, and the variables with a " +
      "literal value it may expand (JSON): piggy-env checks that its argv is that expansion and " +
      "then sends the admitted signature",
    setBy: "the webhook, proxy mode, when the command holds `$(` or `$$`",
  },
  REQUEST_TIMEOUT: {
    reader: "launcher",
    doc: `Go duration: timeout of one attempt; default ${DEFAULT_REQUEST_TIMEOUT_MS / 1000}s`,
    setBy: "you, in the container's env",
  },
  AWS_MAX_ANSWER_BYTES: {
    reader: "launcher",
    doc: "Largest AWS answer body, in bytes, that standalone mode's light AWS client reads " +
      `(1 to ${MAX_AWS_MAX_ANSWER_BYTES}); default ${DEFAULT_AWS_MAX_ANSWER_BYTES} (1 MiB, far ` +
      "above a Secrets Manager secret's 64 KiB and an SSM page of 10 parameters of 8 KiB). A " +
      "larger answer fails the read for good with a message naming this variable. The AWS SDK, " +
      "used instead when a shared profile, FIPS or dual-stack endpoints or a proxy variable is " +
      "set, reads without this limit",
    setBy: "you, in the container's env",
  },
  ALLOWED_SA: {
    reader: "webhook",
    doc: "A key of the secret (or a parameter under the SSM path), not an env var: the " +
      "comma-separated `namespace:serviceaccount` pairs that `/secret` serves. Never returned",
  },
  ENFORCE_SERVICE_ACCOUNT: {
    reader: "webhook",
    doc: "See `piggy-enforce-service-account` above",
  },
  ANSWER_ALL_KEYS: {
    reader: "webhook",
    doc: "See the webhook process environment below",
  },
  DEFAULT_SECRET_NAME_PREFIX: {
    reader: "webhook",
    doc: "See `piggy-default-secret-name-prefix` above",
  },
  DEFAULT_SECRET_NAME_SUFFIX: {
    reader: "webhook",
    doc: "See `piggy-default-secret-name-suffix` above",
  },
  TOKEN_AUDIENCES: {
    reader: "webhook",
    doc: "Comma-separated audiences `/secret` passes to TokenReview and requires in the answer " +
      "(default `piggysec.com`); the first is the audience of the projected token `/mutate` " +
      "mounts. The API server's own audience (what launchers of earlier releases send) is " +
      "accepted only under `PIGGY_LEGACY_PODS`",
  },
};

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

function code(text: string): string {
  return `\`${text}\``;
}

function defaultText(entry: SettingDefinition): string {
  if (entry.default === "") return "empty";
  return code(String(entry.default));
}

function notes(entry: SettingDefinition): string {
  const parts = [cell(entry.doc)];
  if (entry.envOnly) {
    parts.push("**Operator only**: the pod annotation is ignored with a warning");
  }
  if (entry.denyOnBadValue) {
    parts.push("A bad value denies the pod instead of falling back");
  }
  if (entry.unused) parts.push(`**No effect yet**: ${cell(entry.unused)}`);
  return parts.join(". ");
}

function table(header: string[], rows: string[][]): string[] {
  return [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ];
}

/** The markdown of docs/annotations.md before formatting. */
export function renderAnnotationsDoc(): string {
  for (const [key, name] of Object.entries(ENV)) {
    const entry = ENV_DOCS[key as keyof typeof ENV];
    if (!entry) throw new Error(`Cannot document ENV.${key}: add it to ENV_DOCS`);
    // The page says every launcher variable is removed from the application's environment.
    if (entry.reader === "launcher" && !RESERVED_KEYS.has(name) && !LAUNCHER_ONLY_KEYS.has(name)) {
      throw new Error(`Cannot document ${name}: piggy-env passes it to the application`);
    }
  }
  const settingRows = SETTINGS.map((entry) => [
    code(entry.annotation.slice(ANNOTATION_PREFIX.length)),
    code(entry.env),
    TYPES[entry.type],
    defaultText(entry),
    entry.readBy.length > 0 ? entry.readBy.map((reader) => READERS[reader]).join(", ") : "nobody",
    entry.injectedAs ? code(entry.injectedAs) : "",
    notes(entry),
  ]);
  const launcherRows = Object.entries(ENV_DOCS)
    .filter(([, entry]) => entry.reader === "launcher")
    .map(([key, entry]) => {
      const name = ENV[key as keyof typeof ENV];
      const setting = SETTINGS.find((candidate) => candidate.injectedAs === name);
      if (!setting && !entry.setBy) throw new Error(`Cannot document ${name}: who sets it?`);
      return [
        code(name),
        setting ? `setting ${code(setting.key)}` : cell(entry.setBy ?? ""),
        cell(entry.doc),
      ];
    });
  const envOnly = SETTINGS.filter((entry) => entry.envOnly).map((entry) => code(entry.env));
  const unsupported = SETTINGS.filter((entry) => entry.readBy.length === 0)
    .map((entry) => code(entry.annotation));
  const reserved = [...RESERVED_KEYS].map(code).join(", ");

  const lines = [
    "<!-- Generated by scripts/gen_docs.ts from src/config/settings.ts and src/constants.ts.",
    "     Do not edit: change the table and run `deno task docs`. -->",
    "",
    "# Annotations and settings",
    "",
    `Every setting is a pod annotation \`${ANNOTATION_PREFIX}<key>\` with a cluster-wide default ` +
    "in the webhook's environment: drop the prefix, upper-case it and replace `-` with `_` " +
    "(`aws-region` → `AWS_REGION`). With the Helm chart, set those defaults under `env:` in the " +
    "values.",
    "",
    "## How a value is chosen",
    "",
    "- **Annotation > webhook env > default.** A string annotation that exists wins even when " +
    "it is empty; an env var set to the empty string counts as unset.",
    "- A bad value (not a boolean, a negative or non-integer count, a malformed duration or " +
    "quantity, an unknown pull policy or medium) is never read as `false` or `0`: it is " +
    "reported as an admission warning, logged, and the next source applies (env, then default). " +
    "Go Piggy read a bad boolean as `false`, which could turn `piggy-enforce-integrity` off.",
    "- Settings marked _a bad value denies the pod_ are not guessed: the pod is refused with a " +
    "message.",
    `- Operator-only settings (${envOnly.join(", ")}) come from the webhook env alone; their ` +
    "annotations are ignored with a warning, so a pod author cannot weaken them.",
    `- Unknown \`${ANNOTATION_PREFIX}\` annotations (typos) are ignored with a warning.`,
    "- The pod is mutated only when `aws-secret-name`, `aws-ssm-parameter-path` or " +
    "`piggy-address` resolves to a non-empty value, and only containers with a `piggy:` value " +
    "(literal, `valueFrom` or `envFrom` of a ConfigMap or Secret) are wrapped.",
    "- `/secret` resolves the settings again from the **live** pod's annotations (with the " +
    "webhook's env), not from what the launcher sends.",
    "",
    "Read by: `/mutate` at admission, `/secret` when the launcher asks for the values (proxy " +
    "mode), piggy-env through the variable the webhook injects into wrapped containers.",
    "",
    "## Settings",
    "",
    ...table(
      ["Annotation", "Webhook env", "Type", "Default", "Read by", "Injected as", "What it does"],
      settingRows,
    ),
    "",
    `Not supported: ${unsupported.join(", ")} (a warning says so).`,
    "",
    "`image-pull-secret`, `image-pull-secret-namespace`, `image-skip-verify-registry` and " +
    "`image-platform` configure the image lookup of wrapped containers without `command`: see " +
    "[image-lookup.md](image-lookup.md).",
    "",
    "## Written by Piggy",
    "",
    `- ${code(PIGGY_UID_ANNOTATION)}: written by \`/mutate\`, read by \`/secret\`. Compact JSON ` +
    "map of each wrapped container's UID (`PIGGY_UID`) to the SHA-256 of its original command " +
    "(the arguments after `--`, joined with spaces). Kept across re-invocations.",
    "",
    "## piggy-env environment",
    "",
    "What the launcher reads; the webhook injects most of it into each wrapped container. Every " +
    "`PIGGY_*` name below and the reserved names are removed from the application's environment.",
    "",
    ...table(["Variable", "Set by", "Meaning"], launcherRows),
    "",
    "Flags before `--` (`piggy-env [--standalone] [--retry N] [--initial-delay D] -- command " +
    "[args...]`) are overridden by the variables above when those are set; unknown flags are " +
    "an error (exit 2). `LOG_LEVEL` (debug, info, warn, error) overrides `PIGGY_DEBUG`. " +
    "`piggy-env install <dir>` copies the launcher into `<dir>` (mode 0755). In standalone " +
    "mode the AWS calls go through `HTTPS_PROXY`/`HTTP_PROXY` except for the hosts `NO_PROXY` " +
    "names, as Go's `http.ProxyFromEnvironment` reads them " +
    "([how-it-works.md](how-it-works.md#through-an-egress-proxy)); the call to the webhook " +
    "never uses a proxy.",
    "",
    `Reserved names, never returned by \`/secret\` nor used as values: ${reserved}.`,
    "",
    "## Webhook process environment",
    "",
    "Options of the webhook itself (src/config/webhook_options.ts), on top of the fallbacks of the " +
    "settings table. They and the fallbacks are checked once at start-up: an invalid value stops " +
    "the webhook with one log line naming the variable (empty counts as unset). Where the chart " +
    "sets a variable, its values.schema.json refuses the same values.",
    "",
    ...table(
      ["Variable", "Type", "Default", "Meaning", "Chart value"],
      OPTION_ROWS.map((row) => [
        code(row.env),
        row.type,
        row.defaultText,
        cell(row.doc),
        row.chart ? code(row.chart.value) : "",
      ]),
    ),
    "",
    "Read by the libraries that use them, not parsed by Piggy:",
    "",
    ...table(
      ["Variable", "Meaning"],
      DISCOVERY_VARIABLES.map(({ name, doc }) => [
        name.split(", ").map(code).join(", "),
        cell(doc),
      ]),
    ),
    "",
    `${code(ENV.TOKEN_AUDIENCES)}: ${cell(ENV_DOCS.TOKEN_AUDIENCES.doc)}. ` +
    `${code(ENV.ALLOWED_SA)}: ${cell(ENV_DOCS.ALLOWED_SA.doc)}.`,
    "",
  ];
  return lines.join("\n");
}

/** Formats markdown with the repository's `deno fmt` settings. */
export async function formatMarkdown(text: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=md", "-"],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) {
    throw new Error(`Cannot format the markdown: ${new TextDecoder().decode(stderr)}`);
  }
  return new TextDecoder().decode(stdout);
}

/** values.schema.json as it must be: `properties.env.properties` from the tables. */
export function generateChartSchema(): string {
  const schema = JSON.parse(readFileSync(CHART_SCHEMA, "utf8"));
  schema.properties.env.properties = chartEnvSchemas();
  return `${JSON.stringify(schema, null, 2)}\n`;
}

/** docs/annotations.md as it must be. */
export async function generateAnnotationsDoc(): Promise<string> {
  return await formatMarkdown(renderAnnotationsDoc());
}

if (import.meta.main) {
  const fileIndex = Deno.args.indexOf("--file");
  const target = fileIndex === -1 ? ANNOTATIONS_DOC : Deno.args[fileIndex + 1];
  if (!target) {
    console.error("Usage: gen_docs.ts [--check] [--file <path>]");
    Deno.exit(2);
  }
  const outputs: [string, string][] = [[target, await generateAnnotationsDoc()]];
  if (fileIndex === -1) outputs.push([CHART_SCHEMA, generateChartSchema()]);
  let stale = false;
  for (const [path, expected] of outputs) {
    if (Deno.args.includes("--check")) {
      let current = "";
      try {
        current = readFileSync(path, "utf8");
      } catch {
        // missing counts as different
      }
      if (current !== expected) {
        console.error(`${path} is out of date: run \`deno task docs\``);
        stale = true;
      } else {
        console.error(`${path} is up to date`);
      }
    } else {
      writeFileSync(path, expected);
      console.error(`wrote ${path}`);
    }
  }
  if (stale) Deno.exit(1);
}
