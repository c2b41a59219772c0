/**
 * Signal forwarding for the spawn fallback (runtimes without FFI `execve`): the launcher stays the
 * parent and passes the usual termination and user signals on to the child.
 *
 * @module
 */

import type { ChildProcess } from "node:child_process";
import { constants } from "node:os";
import process from "node:process";

/** Signals the launcher forwards to the child. */
export const FORWARDED_SIGNALS = [
  "SIGTERM",
  "SIGINT",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
] as const;

/** Number of a signal name (`SIGTERM` → 15), or 0 when unknown. */
export function signalNumber(name: string): number {
  return (constants.signals as Record<string, number>)[name] ?? 0;
}

/**
 * Forwards {@link FORWARDED_SIGNALS} received by this process to `child`.
 *
 * @returns a function that removes the listeners
 */
export function forwardSignals(child: ChildProcess): () => void {
  const listeners = FORWARDED_SIGNALS.map((name) => {
    const listener = () => {
      child.kill(name);
    };
    process.on(name, listener);
    return [name, listener] as const;
  });
  return () => {
    for (const [name, listener] of listeners) process.off(name, listener);
  };
}
