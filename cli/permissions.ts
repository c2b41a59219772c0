/**
 * The Deno permission flags of each binary, in one place: `deno compile` (scripts/compile.ts),
 * the `deno task` entries and the process tests all use these, so what is tested is what ships.
 *
 * @module
 */

/**
 * V8 flags of piggy-webhooks: heap sizing that fits the chart's 256Mi memory limit (see
 * docs/memory.md). Without them V8 sizes its heap from the host's memory and, under load, commits
 * 100+ MiB for ~22 MiB of live objects. `deno compile` bakes them into the binary (a compiled
 * binary ignores `DENO_V8_FLAGS`), and every `deno run` of the webhook passes them too.
 */
export const WEBHOOK_V8_FLAGS: readonly string[] = [
  "--max-semi-space-size=4",
  "--max-old-space-size=128",
];

/**
 * The permission flags of piggy-webhooks, `--unstable-no-legacy-abort`, then `--v8-flags=…` when
 * there are any. `--unstable-no-legacy-abort`: `Deno.serve` aborts a request's signal only when the
 * request is cancelled (the client went away), not after every successful answer; the legacy abort
 * built a `DOMException` and dispatched an abort event for each request whose handler had read
 * `request.signal` (`/secret` does, to stop when its caller leaves): ~20 µs of CPU per request
 * measured on a bare `Deno.serve`, against ~5 µs with the flag.
 */
function webhookFlags(v8Flags: readonly string[]): string[] {
  return [
    "--allow-net",
    "--allow-read",
    "--allow-env",
    "--allow-sys=osRelease,hostname,ca",
    "--unstable-no-legacy-abort",
    ...(v8Flags.length > 0 ? [`--v8-flags=${v8Flags.join(",")}`] : []),
  ];
}

/**
 * piggy-webhooks: serves HTTPS, reads certificates and kubeconfig, calls Kubernetes, AWS and image
 * registries. `ca`: `node:tls` lists its root certificates, which an extra registry CA bundle must
 * be added to (a `ca` option replaces the roots, under Deno as under Node).
 */
export const WEBHOOK_FLAGS: readonly string[] = webhookFlags(WEBHOOK_V8_FLAGS);

/**
 * {@link WEBHOOK_FLAGS} with other V8 flags than the shipped ones (`deno run` accepts one
 * `--v8-flags`): benchmarks comparing heap settings, tests adding `--expose-gc`.
 */
export function webhookFlagsWithV8(v8Flags: readonly string[]): string[] {
  return webhookFlags(v8Flags);
}

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
