/**
 * Waiting on shared work with a caller's own abort signal.
 *
 * @module
 */

import { clearTimeout, setTimeout } from "node:timers";

/**
 * Waits for `promise`, or rejects as soon as `signal` aborts; the shared work keeps running for
 * its other waiters.
 *
 * @param reason what to reject with on abort. @default the signal's reason
 */
export function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  reason: (signal: AbortSignal) => unknown = (aborted) => aborted.reason,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined); // its failure is no longer this caller's
    return Promise.reject(reason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(reason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** A deadline for one piece of work: its signal, and whether it was the clock that aborted. */
export interface Deadline {
  /** Aborts when the deadline passes or the parent signal aborts, whichever comes first. */
  readonly signal: AbortSignal;
  /** True once the deadline itself has passed (not when only the parent aborted). */
  readonly expired: boolean;
  /** Stops the clock and detaches from the parent: call it as soon as the work has ended. */
  dispose(): void;
}

/** One started deadline in its length's queue: `fire` is dropped when it is disposed. */
interface Pending {
  at: number;
  fire: (() => void) | undefined;
}

/**
 * The started deadlines of one length, oldest first (they also pass in that order: the clock is
 * monotonic), under one timer armed for the oldest one still pending.
 */
interface DeadlineQueue {
  entries: Pending[];
  /** Index of the oldest entry not yet passed or dropped. */
  head: number;
  /** Entries not yet disposed or fired. */
  live: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** The timer keeps the process alive (it does while a deadline is pending). */
  held: boolean;
}

const queues = new Map<number, DeadlineQueue>();

/** Fires what has passed, drops what was disposed, and arms the timer for the next one. */
function runQueue(ms: number, queue: DeadlineQueue): void {
  queue.timer = undefined;
  const at = performance.now();
  const { entries } = queue;
  while (queue.head < entries.length) {
    const entry = entries[queue.head]!;
    if (entry.fire !== undefined && entry.at > at) break;
    queue.head++;
    const fire = entry.fire;
    entry.fire = undefined;
    if (fire !== undefined) {
      queue.live--;
      fire();
    }
  }
  // A callback may have started (and armed the timer for) or disposed deadlines of this length.
  if (queue.timer !== undefined) clearTimeout(queue.timer);
  queue.timer = undefined;
  if (queue.live === 0) {
    if (queues.get(ms) === queue) queues.delete(ms);
    return;
  }
  if (queue.head > 1024 && queue.head * 2 > entries.length) {
    entries.splice(0, queue.head);
    queue.head = 0;
  }
  arm(ms, queue, Math.max(0, entries[queue.head]!.at - at));
}

function arm(ms: number, queue: DeadlineQueue, delay: number): void {
  queue.timer = setTimeout(() => runQueue(ms, queue), delay);
  queue.held = true;
}

/**
 * Calls `fire` once `ms` milliseconds have passed, unless the returned function is called first.
 * One timer per deadline length instead of one per deadline: a deadline per request under load
 * set and cleared a runtime timer each time (~2 % of a `/mutate` request's CPU); here starting one
 * appends to a queue and disposing it drops its callback. When none is left pending, the timer
 * stays armed but no longer keeps the process alive: requests handled one after the other (each
 * ends before the next starts) would otherwise set and clear it once each. A timer that fires
 * with nothing pending ends; one started later gets a new one.
 */
export function schedule(ms: number, fire: () => void): () => void {
  let queue = queues.get(ms);
  if (queue === undefined) {
    queue = { entries: [], head: 0, live: 0, timer: undefined, held: false };
    queues.set(ms, queue);
  }
  const entry: Pending = { at: performance.now() + ms, fire };
  queue.entries.push(entry);
  queue.live++;
  const owner = queue;
  // An armed timer fires no later than this entry's time (it was armed for an earlier one).
  if (owner.timer === undefined) arm(ms, owner, ms);
  else if (!owner.held) {
    owner.timer.ref();
    owner.held = true;
  }
  return () => {
    if (entry.fire === undefined) return;
    entry.fire = undefined;
    owner.live--;
    if (owner.live === 0) {
      // Every entry is dropped: forget them; the timer finds nothing when it fires.
      owner.entries.length = 0;
      owner.head = 0;
      owner.timer?.unref();
      owner.held = false;
    }
  };
}

/**
 * Starts a deadline of `ms` milliseconds, linked to `parent` (e.g. the request's signal).
 *
 * Unlike `AbortSignal.timeout(ms)` combined with `AbortSignal.any`, nothing of it outlives
 * {@link Deadline.dispose}: a pending `AbortSignal.timeout` keeps its signal, and the signals
 * combined with it, reachable until the timer fires. One per request under load (7 s at 2,000
 * requests/s) kept ~14,000 of them, ~900 B each, on the heap at any time. Here a disposed deadline
 * leaves only a small queue entry (no signal) until the oldest pending one of its length passes.
 *
 * @param reason what the signal aborts with when the deadline passes
 */
export function startDeadline(
  ms: number,
  parent?: AbortSignal,
  reason: () => unknown = () => new DOMException(`deadline of ${ms} ms passed`, "TimeoutError"),
): Deadline {
  const controller = new AbortController();
  let expired = false;
  const cancel = schedule(ms, () => {
    expired = true;
    controller.abort(reason());
  });
  const onParentAbort = () => controller.abort(parent?.reason);
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener("abort", onParentAbort, { once: true });
  return {
    signal: controller.signal,
    get expired() {
      return expired;
    },
    dispose() {
      cancel();
      parent?.removeEventListener("abort", onParentAbort);
    },
  };
}
