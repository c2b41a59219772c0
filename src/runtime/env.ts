/**
 * The process environment as ordered name/value pairs, on Deno and Node.
 *
 * @module
 */

import process from "node:process";
import { type DenoGlobal, denoGlobal } from "./deno.ts";
import { LIBC_NAMES } from "./exec.ts";

/**
 * Names in the order of libc's `environ`, read through Deno FFI (Deno's own `env.toObject()` is a
 * hash map; `/proc/self/environ` needs `--allow-all` under Deno).
 *
 * @returns the names, or `undefined` when FFI or libc is unavailable
 */
export function environOrder(deno: DenoGlobal): string[] | undefined {
  const { dlopen, UnsafePointerView } = deno;
  if (!dlopen || !UnsafePointerView) return undefined;
  let library: ReturnType<typeof dlopen> | undefined;
  try {
    library = dlopen(LIBC_NAMES[0], { environ: { type: "pointer" } });
    // The static resolves to the address of `char **environ`; read the array pointer from it.
    const array = new UnsafePointerView(library.symbols.environ).getPointer(0);
    if (!array) return [];
    const view = new UnsafePointerView(array);
    const names: string[] = [];
    for (let offset = 0;; offset += 8) {
      const entry = view.getPointer(offset);
      if (!entry) break;
      const text = UnsafePointerView.getCString(entry);
      const equals = text.indexOf("=");
      if (equals > 0) names.push(text.slice(0, equals));
    }
    return names;
  } catch {
    return undefined;
  } finally {
    library?.close();
  }
}

/**
 * A snapshot of the environment in `environ` order (what Go's `os.Environ()` gives): through FFI
 * on Deno, `process.env` (which follows `environ`) on Node. Without FFI, Deno's order is arbitrary.
 *
 * @returns a new array; later changes to the environment do not affect it
 */
export function environmentEntries(): Array<[string, string]> {
  const deno = denoGlobal();
  const record: Record<string, string | undefined> = deno ? deno.env.toObject() : process.env;
  const order = (deno && environOrder(deno)) ?? [];
  // The runtime's view is authoritative for the values; libc only supplies the order.
  const entries: Array<[string, string]> = [];
  const placed = new Set<string>();
  for (const name of [...order, ...Object.keys(record)]) {
    const value = record[name];
    if (value !== undefined && !placed.has(name)) {
      entries.push([name, value]);
      placed.add(name);
    }
  }
  return entries;
}
