/**
 * The pod diff the demo prints: a pod as YAML lines, a line diff of two of them, the added
 * install-piggy-env init container folded into one line, and the changed lines with some context.
 *
 * @module
 */

import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { Document, isScalar, visit, type YAMLSeq } from "yaml";
import { INSTALLER_NAME } from "../src/constants.ts";

/** Strings longer than this are shortened in the pod diff (CA bundles). */
const MAX_SHOWN_STRING = 120;

/** A deep copy where long strings (CA bundles) are cut to their first line and their length. */
function shortened(value: unknown): unknown {
  if (typeof value === "string") {
    if (value.length <= MAX_SHOWN_STRING) return value;
    const first = value.split("\n", 1)[0]?.slice(0, 60) ?? "";
    return `${first}… (${value.length} chars)`;
  }
  if (Array.isArray(value)) return value.map(shortened);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, shortened(item)]));
  }
  return value;
}

/** The pod as YAML lines; lists of scalars (command, args) on one line, so a diff reads well. */
export function yamlLines(pod: Pod): string[] {
  const document = new Document(shortened(pod));
  visit(document, {
    Seq(_, node: YAMLSeq) {
      if (node.items.every((item) => isScalar(item))) node.flow = true;
    },
  });
  return document.toString({ lineWidth: 0, flowCollectionPadding: false }).trimEnd().split("\n");
}

export type DiffLine = { kind: " " | "-" | "+"; text: string };

/** Line diff by longest common subsequence (pods are a few hundred lines at most). */
export function diffLines(before: string[], after: string[]): DiffLine[] {
  const rows = before.length + 1;
  const columns = after.length + 1;
  const lcs = new Uint16Array(rows * columns);
  for (let i = before.length - 1; i >= 0; i--) {
    for (let j = after.length - 1; j >= 0; j--) {
      lcs[i * columns + j] = before[i] === after[j]
        ? lcs[(i + 1) * columns + j + 1]! + 1
        : Math.max(lcs[(i + 1) * columns + j]!, lcs[i * columns + j + 1]!);
    }
  }
  const lines: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < before.length || j < after.length) {
    if (i < before.length && j < after.length && before[i] === after[j]) {
      lines.push({ kind: " ", text: before[i++]! });
      j++;
    } else if (
      i < before.length &&
      (j === after.length || lcs[(i + 1) * columns + j]! >= lcs[i * columns + j + 1]!)
    ) {
      lines.push({ kind: "-", text: before[i++]! });
    } else {
      lines.push({ kind: "+", text: after[j++]! });
    }
  }
  return lines;
}

/**
 * Replaces an added `install-piggy-env` init container by one line (the demo shows it once).
 */
export function collapseInstaller(lines: DiffLine[]): DiffLine[] {
  const start = lines.findIndex((line) =>
    line.kind === "+" && line.text.trim() === `- name: ${INSTALLER_NAME}`
  );
  if (start === -1) return lines;
  const indent = lines[start]!.text.indexOf("-");
  let end = start + 1;
  while (
    end < lines.length && lines[end]!.kind === "+" &&
    lines[end]!.text.search(/\S/) > indent
  ) end++;
  return [
    ...lines.slice(0, start + 1),
    { kind: "+", text: `${" ".repeat(indent + 2)}# … the same ${end - start - 1} lines as above` },
    ...lines.slice(end),
  ];
}

/** How {@link formatDiff} colours its lines (e.g. with ANSI codes on a terminal). */
export interface DiffPaint {
  added(text: string): string;
  removed(text: string): string;
  unchanged(text: string): string;
}

const PLAIN: DiffPaint = { added: (t) => t, removed: (t) => t, unchanged: (t) => t };

/** The changed lines with `context` unchanged lines around them; `⋮` marks skipped lines. */
export function formatDiff(lines: DiffLine[], context: number, paint: DiffPaint = PLAIN): string[] {
  const keep = lines.map(() => false);
  lines.forEach((line, index) => {
    if (line.kind === " ") return;
    for (let k = Math.max(0, index - context); k <= index + context && k < lines.length; k++) {
      keep[k] = true;
    }
  });
  const out: string[] = [];
  let skipped = false;
  lines.forEach((line, index) => {
    if (!keep[index]) {
      skipped = true;
      return;
    }
    if (skipped && out.length > 0) out.push(paint.unchanged("    ⋮"));
    skipped = false;
    const text = `  ${line.kind} ${line.text}`;
    out.push(
      line.kind === "+"
        ? paint.added(text)
        : line.kind === "-"
        ? paint.removed(text)
        : paint.unchanged(text),
    );
  });
  return out;
}
