/**
 * Starts the wrapped command. On Deno with FFI the launcher calls libc `execve`, so the command
 * takes over the PID and receives signals directly; elsewhere (Node, or no FFI) it spawns the
 * command with inherited stdio, forwards signals and exits with the child's code.
 *
 * @module
 */

import type { Logger } from "../log.ts";
import { type DenoGlobal, denoGlobal } from "./deno.ts";
import {
  type ExecutableCheck,
  EXIT_NOT_EXECUTABLE,
  EXIT_NOT_FOUND,
  type FileKindCheck,
  lookPath,
} from "./look_path.ts";

/** Shared-object names tried for libc (glibc first). */
export const LIBC_NAMES = ["libc.so.6", "libc.so"] as const;

const SIGPIPE = 13;
const SIG_SETMASK = 2;
const SIGSET_BYTES = 128;
const ENOENT = 2;

/** Options of {@link execCommand}. */
export interface ExecOptions {
  /** Where failures are reported. */
  logger: Logger;
  /** `PATH` used to find the command (the launcher's own, as `execvp`). */
  searchPath: string | undefined;
  /** Skip FFI and always spawn (the Node path; also used by tests). @default false */
  forceSpawn?: boolean;
}

/** Why FFI `execve` did not replace the process. */
export interface ExecFailure {
  errno: number;
  message: string;
}

/** The libc functions the launcher calls through Deno FFI. */
export interface Libc {
  /** `access(path, X_OK) == 0`. */
  canExecute(path: string): boolean;
  /**
   * Replaces the process through `execve`. Before the call SIGPIPE, which the Deno runtime ignores,
   * goes back to its default action and the signal mask is cleared: `execve` keeps both, and the
   * command must see what a normal exec from a shell would give it. Other ignored signals inherited
   * from the launcher's parent stay ignored, as with `execvp`.
   *
   * @returns only when the process was not replaced: the errno and its text
   */
  execve(
    path: string,
    argv: readonly string[],
    env: ReadonlyArray<readonly [string, string]>,
  ): ExecFailure;
  /** Unloads the library. */
  close(): void;
}

const encoder = new TextEncoder();

function cString(text: string): Uint8Array {
  if (text.includes("\0")) throw new TypeError("Cannot pass a string containing a NUL byte");
  const bytes = encoder.encode(text);
  const buffer = new Uint8Array(bytes.length + 1);
  buffer.set(bytes);
  return buffer;
}

type PointerApi = NonNullable<DenoGlobal["UnsafePointer"]>;

function pointerArray(pointers: PointerApi, buffers: readonly Uint8Array[]): BigUint64Array {
  const array = new BigUint64Array(buffers.length + 1);
  buffers.forEach((buffer, index) => {
    array[index] = BigInt(pointers.value(pointers.of(buffer)));
  });
  return array;
}

const X_OK = 1;

/**
 * Loads libc through `Deno.dlopen`.
 *
 * @returns the functions, or a reason when FFI or libc is unavailable (no permission, Node, musl)
 */
export function openLibc(deno: DenoGlobal): Libc | { unavailable: string } {
  const { dlopen, UnsafePointer, UnsafePointerView } = deno;
  if (!dlopen || !UnsafePointer || !UnsafePointerView) return { unavailable: "no FFI" };
  let library: ReturnType<typeof dlopen> | undefined;
  const problems: string[] = [];
  for (const name of LIBC_NAMES) {
    try {
      library = dlopen(name, {
        access: { parameters: ["buffer", "i32"], result: "i32" },
        execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
        signal: { parameters: ["i32", "pointer"], result: "pointer" },
        pthread_sigmask: { parameters: ["i32", "buffer", "pointer"], result: "i32" },
        __errno_location: { parameters: [], result: "pointer" },
        strerror: { parameters: ["i32"], result: "pointer" },
      });
      break;
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
    }
  }
  if (!library) return { unavailable: problems.join("; ") };
  const opened = library;
  const fn = opened.symbols as unknown as Record<
    "access" | "execve" | "signal" | "pthread_sigmask" | "__errno_location" | "strerror",
    (...args: unknown[]) => unknown
  >;
  return {
    canExecute: (path) => fn.access(cString(path), X_OK) === 0,
    execve(path, argv, env) {
      // Keep every buffer referenced until execve returns: the pointer arrays hold raw addresses.
      const pathBuffer = cString(path);
      const argBuffers = argv.map(cString);
      const envBuffers = env.map(([name, value]) => cString(`${name}=${value}`));
      const argPointers = pointerArray(UnsafePointer, argBuffers);
      const envPointers = pointerArray(UnsafePointer, envBuffers);
      const emptySet = new Uint8Array(SIGSET_BYTES);

      const previousPipe = fn.signal(SIGPIPE, null);
      fn.pthread_sigmask(SIG_SETMASK, emptySet, null);
      fn.execve(pathBuffer, argPointers, envPointers);

      // Only reached when execve failed.
      const errno = new UnsafePointerView(fn.__errno_location()).getInt32();
      const message = UnsafePointerView.getCString(fn.strerror(errno));
      fn.signal(SIGPIPE, previousPipe);
      return { errno, message };
    },
    close: () => opened.close(),
  };
}

/** libc opened ahead by {@link preloadLibc}, taken by the next {@link execCommand}. */
let preloaded: Libc | { unavailable: string } | undefined;

/**
 * Opens libc now for the next {@link execCommand} (Deno with FFI only; nothing on Node). `dlopen`
 * and its FFI bindings take 2-4 ms on the JavaScript thread: the launcher calls this while its
 * request is in flight, so that time overlaps the wait instead of following the answer.
 */
export function preloadLibc(): void {
  const deno = denoGlobal();
  if (deno?.dlopen && !preloaded) preloaded = openLibc(deno);
}

/** The preloaded libc (once), else a new one. */
function takeLibc(deno: DenoGlobal): Libc | { unavailable: string } {
  const libc = preloaded ?? openLibc(deno);
  preloaded = undefined;
  return libc;
}

/**
 * Runs the command as a child with inherited stdio, forwarding signals.
 *
 * @returns the child's exit code, or 128 + the signal number when it was killed
 */
export async function spawnCommand(
  path: string,
  argv: readonly string[],
  env: ReadonlyArray<readonly [string, string]>,
  logger: Logger,
): Promise<number> {
  // Loaded here, not at the top: on Deno the launcher execs and never needs them, and loading
  // node:child_process and node:os is a measurable part of the launcher's start.
  const { spawn } = await import("node:child_process");
  const { forwardSignals, signalNumber } = await import("./signals.ts");
  return await new Promise((resolve) => {
    let child;
    try {
      child = spawn(path, argv.slice(1), {
        argv0: argv[0] ?? path,
        env: Object.fromEntries(env),
        stdio: "inherit",
      });
    } catch (error) {
      // Node's message may quote the environment (e.g. a value with a NUL byte): log the code only.
      const code = (error as { code?: unknown } | null)?.code;
      logger.error(`Cannot execute "${path}": ${typeof code === "string" ? code : "spawn failed"}`);
      resolve(EXIT_NOT_EXECUTABLE);
      return;
    }
    const stopForwarding = forwardSignals(child);
    child.on("error", (error: Error & { code?: string }) => {
      stopForwarding();
      logger.error(`Cannot execute "${path}": ${error.code ?? "spawn failed"}`);
      resolve(error.code === "ENOENT" ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE);
    });
    child.on("exit", (code, signal) => {
      stopForwarding();
      resolve(code ?? 128 + (signal ? signalNumber(signal) : 0));
    });
  });
}

/**
 * Finds the command on the launcher's `PATH` and replaces the process with it (FFI `execve`), or
 * spawns it where FFI is unavailable.
 *
 * @param command the command vector (`command[0]` is looked up; the vector is passed as argv)
 * @param env the complete child environment, in order
 * @returns 127 when not found, 126 when not executable, the child's exit code on the spawn path;
 *   never returns when the process was replaced
 */
export async function execCommand(
  command: readonly string[],
  env: ReadonlyArray<readonly [string, string]>,
  options: ExecOptions,
): Promise<number> {
  const { logger } = options;
  const deno = options.forceSpawn ? undefined : denoGlobal();
  const libc = deno ? takeLibc(deno) : { unavailable: "not running on Deno" };
  let canExecute: ExecutableCheck;
  let fileKind: FileKindCheck;
  if ("canExecute" in libc && deno?.statSync) {
    const statSync = deno.statSync;
    canExecute = libc.canExecute;
    fileKind = (path) => {
      try {
        return statSync(path).isFile ? "file" : "other";
      } catch {
        return "missing";
      }
    };
  } else {
    // Node, or no FFI: node:fs, loaded only then.
    const { nodeAccessCheck, nodeFileKind } = await import("./look_path_node.ts");
    canExecute = "canExecute" in libc ? libc.canExecute : nodeAccessCheck;
    fileKind = nodeFileKind;
  }
  const file = command[0] ?? "";
  const found = lookPath(file, options.searchPath, canExecute, fileKind);
  if (!found.found) {
    logger.error(
      found.exitCode === EXIT_NOT_FOUND
        ? `Command not found "${file}": ${found.reason}`
        : `Cannot execute "${file}": ${found.reason}`,
    );
    if ("close" in libc) libc.close();
    return found.exitCode;
  }
  if ("execve" in libc) {
    const failure = libc.execve(found.path, command, env);
    libc.close();
    logger.error(`Cannot execute "${found.path}": ${failure.message}`, { errno: failure.errno });
    return failure.errno === ENOENT ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE;
  }
  if (deno) logger.debug(`Cannot use execve (${libc.unavailable}): running the command as a child`);
  return await spawnCommand(found.path, command, env, logger);
}
