/**
 * The Deno permission flags of each binary, in one place: `deno compile` (scripts/compile.ts),
 * the `deno task` entries and the process tests all use these, so what is tested is what ships.
 *
 * @module
 */

/** piggy-webhooks: serves HTTPS, reads certificates and kubeconfig, calls Kubernetes and AWS. */
export const WEBHOOK_FLAGS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-sys=osRelease,hostname",
];

/**
 * piggy-env: reads the token/CA files, calls the webhook or AWS, writes its own copy for
 * `install`, and calls libc `execve` through FFI. `--no-config`: its graph is relative files and
 * `node:` built-ins (standalone mode adds the bundled AWS source), so no start resolves an npm
 * package, under `deno run` as in the compiled binary.
 */
export const LAUNCHER_FLAGS: readonly string[] = [
  "--no-config",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys=osRelease",
];
