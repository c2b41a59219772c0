/**
 * Everything a script started (stand-ins, the webhook, launchers), stopped in reverse order, with
 * the PIDs it started so that a test can check none survives.
 *
 * @module
 */

import type { LauncherProcess } from "./launcher_process.ts";

/** Everything the demo started, stopped in reverse order. */
export class Running {
  readonly pids: number[] = [];
  /** The webhook's log lines (shown when the demo fails). */
  webhookLogs: string[] = [];
  readonly launchers = new Set<LauncherProcess>();
  readonly #cleanups: Array<{ label: string; run: () => Promise<unknown> | unknown }> = [];

  #aborted = false;

  onCleanup(label: string, run: () => Promise<unknown> | unknown): void {
    this.#cleanups.push({ label, run });
  }

  /** Throws once the demo is being stopped, so that no step starts after that. */
  check(): void {
    if (this.#aborted) throw new Error("The demo is stopping");
  }

  /** Stops starting anything and kills the running launchers. */
  async abort(): Promise<void> {
    this.#aborted = true;
    for (const launcher of this.launchers) {
      launcher.child.kill("SIGKILL");
      await launcher.done.catch(() => undefined);
    }
    this.launchers.clear();
  }

  /**
   * Runs `work` until it ends, SIGINT or SIGTERM arrives, or `watchdogMs` pass. On a failure it
   * stops starting anything, kills the running launchers and gives `work` 3 s to notice.
   *
   * @returns the failure, or undefined when `work` finished
   */
  async guard(work: () => Promise<void>, watchdogMs: number): Promise<unknown> {
    let failure: unknown;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const listeners: Array<[Deno.Signal, () => void]> = [];
    const interrupted = new Promise<never>((_, reject) => {
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        const listener = () => reject(new Error(`Interrupted by ${signal}`));
        Deno.addSignalListener(signal, listener);
        listeners.push([signal, listener]);
      }
      timer = setTimeout(
        () => reject(new Error(`The demo did not finish within ${watchdogMs / 1000} s`)),
        watchdogMs,
      );
    });
    const running = work();
    try {
      await Promise.race([running, interrupted]);
    } catch (error) {
      failure = error;
    } finally {
      clearTimeout(timer);
      for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
    }
    if (failure) {
      // Let the interrupted step notice (its launcher is killed) before the failure is shown.
      await this.abort();
      let grace: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        running.catch(() => undefined),
        new Promise((resolve) => (grace = setTimeout(resolve, 3_000))),
      ]);
      clearTimeout(grace);
    }
    return failure;
  }

  /** Stops everything; returns the failures (never throws). */
  async stopAll(): Promise<string[]> {
    const failures: string[] = [];
    await this.abort();
    for (const { label, run } of this.#cleanups.reverse()) {
      try {
        await run();
      } catch (error) {
        failures.push(`${label}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    this.#cleanups.length = 0;
    return failures;
  }
}
