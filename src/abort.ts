/**
 * Waiting on shared work with a caller's own abort signal.
 *
 * @module
 */

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
  if (signal.aborted) return Promise.reject(reason(signal));
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
