/**
 * Preloaded into a launcher process by the proxy tests (`deno run --preload`, see
 * `LauncherSpec.denoFlags`): `Deno.connect` to a name under `.piggy.test` (a reserved TLD, RFC
 * 6761) connects to 127.0.0.1 instead, as an `/etc/hosts` entry would. The tests give AWS
 * endpoints such names (which the proxy rules treat as any remote host, where `localhost` and
 * 127.0.0.1 are never proxied) and still reach the loopback stand-ins when `NO_PROXY` sends a
 * request direct. Server names for TLS are untouched: verification is still against the name.
 *
 * @module
 */

/** The suffix of the names that resolve to 127.0.0.1. */
export const TEST_HOST_SUFFIX = ".piggy.test";

const connect = Deno.connect;
Object.defineProperty(Deno, "connect", {
  configurable: true,
  value: (options: Deno.ConnectOptions) =>
    connect(
      options.hostname?.endsWith(TEST_HOST_SUFFIX)
        ? { ...options, hostname: "127.0.0.1" }
        : options,
    ),
});
