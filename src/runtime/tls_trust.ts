/**
 * Makes the CA handed to `Deno.startTls` the only trust anchor of this process's TLS connections.
 *
 * Deno adds `caCerts` to its default root store, which it builds once per process, at the first
 * TLS connection, from the environment: its bundled Mozilla roots (or the system's, per
 * `DENO_TLS_CA_STORE`), plus the CAs in `DENO_CERT` and `NODE_EXTRA_CA_CERTS`. A certificate for
 * the webhook's name from any of those CAs verified too. `DENO_TLS_CA_STORE` set to the empty
 * string selects no store; without `DENO_CERT` and `NODE_EXTRA_CA_CERTS` the default store is
 * empty, and the CA given is the only anchor.
 *
 * This changes the launcher's own environment only: it builds the command's environment from the
 * one it read at start, so the command still sees its own values of these variables. Call it
 * before the first TLS connection (the store is built then, once). On Node it does nothing:
 * `node:https` with a `ca` option trusts only that CA.
 *
 * @module
 */

import { denoGlobal } from "./deno.ts";

/** Variables Deno reads its default trust anchors from (besides `DENO_TLS_CA_STORE`). */
export const DENO_EXTRA_CA_VARIABLES = ["DENO_CERT", "NODE_EXTRA_CA_CERTS"] as const;

/** Empties Deno's default root store for this process (Deno only). */
export function trustOnlyGivenCa(): void {
  const env = denoGlobal()?.env;
  if (!env?.set || !env.delete) return;
  env.set("DENO_TLS_CA_STORE", "");
  for (const name of DENO_EXTRA_CA_VARIABLES) env.delete(name);
}
