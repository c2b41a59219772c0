// deno-lint-ignore-file no-console
/**
 * `deno task start`: runs piggy-webhooks locally over HTTPS with a freshly generated development
 * certificate (127.0.0.1, localhost, ::1) and the current kubeconfig. The CA is written next to the
 * certificate so clients (or a kind cluster's webhook config) can trust it.
 *
 * Environment: LISTEN_ADDRESS (default 127.0.0.1:8443), KUBECONFIG (default ~/.kube/config), and any
 * webhook setting (AWS_REGION, PIGGY_ENV_IMAGE, …), passed through.
 *
 * @module
 */

import { createTestCa } from "../testing/pki.ts";
import { WEBHOOK_FLAGS } from "../cli/permissions.ts";

const ca = createTestCa("piggy-dev");
const server = ca.issue("webhook", {
  serverNames: ["localhost", "127.0.0.1", "::1", "host.docker.internal"],
});
console.error(`Development CA: ${ca.certFile}`);

const env: Record<string, string> = {
  TLS_CERT_FILE: server.certFile,
  TLS_PRIVATE_KEY_FILE: server.keyFile,
  PIGGY_CA_BUNDLE_FILE: ca.certFile,
  LISTEN_ADDRESS: Deno.env.get("LISTEN_ADDRESS") ?? "127.0.0.1:8443",
};
const child = new Deno.Command(Deno.execPath(), {
  // --allow-run on top of the shipped permissions: kubeconfig exec credential plugins (aws eks
  // get-token, gke-gcloud-auth-plugin, kubelogin) run only here, never in the shipped webhook.
  args: [
    "run",
    ...WEBHOOK_FLAGS,
    "--allow-run",
    new URL("../cli/webhook.ts", import.meta.url).pathname,
  ],
  env,
  stdin: "null",
}).spawn();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => child.kill(signal));
}
const status = await child.status;
await Deno.remove(ca.dir, { recursive: true }).catch(() => {});
Deno.exit(status.code);
