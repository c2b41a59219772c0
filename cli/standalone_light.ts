/**
 * piggy-env's standalone AWS source, light first: `scripts/bundle_launcher.ts` bundles this module
 * (the light AWS client, no SDK) into `gen/standalone_light.js`, which piggy-env imports in
 * standalone mode. It decides from the environment whether the SDK is needed
 * (src/secrets/aws_lite/choose.ts) and only then imports the SDK bundle
 * (`gen/standalone_source.js`, through `loadSdk`).
 *
 * @module
 */

import type { StandaloneSourceSettings } from "../src/launcher/fetch.ts";
import type { Logger } from "../src/log.ts";
import { pathExists, readTextFile } from "../src/runtime/files.ts";
import { createStandaloneAwsSource } from "../src/secrets/aws_lite/choose.ts";
import type { SecretSource } from "../src/secrets/source.ts";
import type { SendRequest } from "../src/secrets/aws_lite/http.ts";

/**
 * Creates the AWS source of standalone mode (it may log AWS reads, never values).
 *
 * @param env the launcher's environment
 * @param loadSdk loads the SDK-based source when the environment needs it
 * @param settings the launcher's settings for the light client
 * @param send the launcher's `requestText` (src/runtime/http_post.ts), which its proxy path already
 *   loaded: this bundle holds no copy of its own
 */
export function createStandaloneSource(
  logger: Logger,
  env: (name: string) => string | undefined,
  loadSdk: (logger: Logger) => Promise<SecretSource>,
  settings: StandaloneSourceSettings,
  send: SendRequest,
): Promise<SecretSource> {
  return createStandaloneAwsSource(logger, {
    env,
    exists: pathExists,
    readTextFile,
    loadSdk,
    maxAnswerBytes: settings.awsMaxAnswerBytes,
    send,
  });
}
