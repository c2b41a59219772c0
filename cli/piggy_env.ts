/**
 * piggy-env entry point. It starts seeding the TLS library's random generator on a background
 * thread (src/runtime/tls_warmup.ts) before anything else loads, then imports the launcher
 * (cli/piggy_env_main.ts): bundled, the launcher is a chunk of its own, so the seeding runs while
 * V8 compiles it instead of after. Nearly every start makes a TLS connection (to the webhook, or
 * to AWS in standalone mode); one that does not has spent the seeding's CPU off its main thread.
 *
 * @module
 */

import { warmUpTlsRandom } from "../src/runtime/tls_warmup.ts";

void warmUpTlsRandom();
await import("./piggy_env_main.ts");
