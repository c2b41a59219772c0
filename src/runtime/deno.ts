/**
 * Typed access to the parts of the `Deno` global the runtime helpers use. Declared here (not taken
 * from Deno's own types) so `src/runtime/` also compiles with `tsc` for the Node build, where the
 * global is absent.
 *
 * @module
 */

/** A native function loaded through `Deno.dlopen`. */
export type NativeFunction = (...args: unknown[]) => unknown;

/** A foreign-function signature for `Deno.dlopen`. */
export interface NativeSignature {
  parameters: string[];
  result: string;
}

/** A static (global variable) for `Deno.dlopen`: its symbol resolves to the variable's address. */
export interface NativeStatic {
  type: "pointer";
}

/** The subset of `Deno` used by `src/runtime/`. */
export interface DenoGlobal {
  args: string[];
  pid: number;
  version: { deno: string };
  execPath(): string;
  exit(code?: number): never;
  env: {
    toObject(): Record<string, string>;
    set?: (name: string, value: string) => void;
    delete?: (name: string) => void;
  };
  stdout?: { writeSync(bytes: Uint8Array): number };
  stderr?: { writeSync(bytes: Uint8Array): number };
  readTextFile?: (path: string) => Promise<string>;
  statSync?: (path: string) => { isFile: boolean };
  dlopen?: (
    path: string,
    symbols: Record<string, NativeSignature | NativeStatic>,
  ) => { symbols: Record<string, unknown>; close(): void };
  UnsafePointer?: {
    of(value: ArrayBufferView): unknown;
    value(pointer: unknown): bigint | number;
    create(value: bigint): unknown;
  };
  UnsafePointerView?: {
    new (pointer: unknown): {
      getInt32(offset?: number): number;
      getPointer(offset?: number): unknown;
    };
    getCString(pointer: unknown): string;
  };
}

/** The `Deno` global, or `undefined` on Node. */
export function denoGlobal(): DenoGlobal | undefined {
  return (globalThis as unknown as { Deno?: DenoGlobal }).Deno;
}
