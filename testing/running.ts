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
