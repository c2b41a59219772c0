/**
 * Starts the TLS library's one-time random-generator set-up on a background thread.
 *
 * Deno's TLS is rustls over AWS-LC. AWS-LC seeds its random generator once per process, on first
 * use, from CPU-jitter entropy (a few thousand timed memory walks hashed with SHA-3): ~20 ms of CPU
 * on an idle machine, 35 ms and more on a loaded one. The first `Deno.startTls` draws its client
 * random from that generator, so without a warm-up the seeding runs inside `startTls`, on the
 * JavaScript thread, after everything else that precedes the connection. `crypto.subtle.generateKey`
 * for an AES key draws its bytes from the same generator on a thread of Deno's blocking pool:
 * started first, the seeding runs while the launcher reads its files, signs the command and
 * connects, and `startTls` finds it done (or nearly). The key is thrown away.
 *
 * On Node (OpenSSL seeds from the operating system: nothing to hide) it does nothing.
 *
 * @module
 */

import { denoGlobal } from "./deno.ts";

/**
 * Starts seeding AWS-LC's random generator off the JavaScript thread (Deno only).
 *
 * @returns a promise that settles when the generator is seeded (callers need not wait); it never
 *   rejects. Only the first call starts a warm-up; later ones return its promise.
 */
export function warmUpTlsRandom(): Promise<void> {
  if (!denoGlobal()) return Promise.resolve();
  seeding ??= globalThis.crypto.subtle.generateKey({ name: "AES-GCM", length: 128 }, false, [
    "encrypt",
  ]).then(() => {}, () => {});
  return seeding;
}

/** The one warm-up of this process (later calls return it). */
let seeding: Promise<void> | undefined;
