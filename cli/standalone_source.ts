/**
 * piggy-env's standalone secret source: the one launcher module that loads the AWS SDK.
 * `scripts/bundle_launcher.ts` bundles it with the SDK into one file (`gen/standalone_source.js`,
 * no `npm:` or bare imports left) that piggy-env imports on first use, so proxy mode neither loads
 * nor resolves the SDK, and standalone mode loads one module instead of ~400.
 *
 * @module
 */

import type { Logger } from "../src/log.ts";
import { AwsSecretSource } from "../src/secrets/aws_source.ts";
import type { SecretSource } from "../src/secrets/source.ts";

/** Creates the AWS source of standalone mode (it may log AWS reads, never values). */
export function createStandaloneSource(logger: Logger): SecretSource {
  return new AwsSecretSource({ logger });
}
