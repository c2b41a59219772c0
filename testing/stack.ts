/**
 * The webhook as a cluster runs it, on loopback: the Kubernetes API and AWS stand-ins and the real
 * webhook process (HTTPS with a fresh test CA) pointed at both. For tests and benchmarks that
 * admit pods, persist them and call `/secret`.
 *
 * @module
 */

import { rmSync } from "node:fs";
import { type AwsStandIn, startAwsStandIn } from "./aws.ts";
import { type KubeApiStandIn, startKubeApi } from "./kube_api.ts";
import { createTestCa, type TestCa } from "./pki.ts";
import { startWebhook, type WebhookProcess } from "./webhook_process.ts";

/** Options of {@link startStack}. */
export interface StackOptions {
  /** Region of the webhook's AWS clients. @default "us-east-1" */
  region?: string;
  /** Label of the CA that issues the serving certificate. @default "piggy-test" */
  caLabel?: string;
  /**
   * Publish the CA to wrapped containers (`PIGGY_CA_BUNDLE_FILE`), as the chart does, so that
   * piggy-env verifies the webhook. @default true
   */
  publishCa?: boolean;
  /** More webhook environment (settings; `PIGGY_ENV_IMAGE` replaces the test image). */
  env?: Record<string, string>;
  /**
   * Allow the webhook's own URL as a `piggy-address` (see `startWebhook`), for pods whose
   * launcher calls the webhook. @default false
   */
  allowOwnAddress?: boolean;
}

/** The running stand-ins and webhook. */
export interface Stack {
  kube: KubeApiStandIn;
  aws: AwsStandIn;
  webhook: WebhookProcess;
  ca: TestCa;
  /** Stops the webhook and the stand-ins and removes the CA. */
  stop(): Promise<void>;
}

/**
 * Starts the stand-ins, a CA and the webhook; the webhook reads AWS with static credentials.
 *
 * @throws {Error} when one does not start (what did start is stopped)
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const kube = await startKubeApi();
  let aws: AwsStandIn | undefined;
  let ca: TestCa | undefined;
  try {
    aws = await startAwsStandIn();
    ca = createTestCa(options.caLabel ?? "piggy-test");
    const webhook = await startWebhook({
      allowOwnAddress: options.allowOwnAddress ?? false,
      ca,
      env: {
        KUBECONFIG: kube.kubeconfigPath,
        PIGGY_ENV_IMAGE: "ghcr.io/piggysec/piggy-env:test",
        ...(options.publishCa ?? true ? { PIGGY_CA_BUNDLE_FILE: ca.certFile } : {}),
        ...aws.env({ credentials: "static", region: options.region ?? "us-east-1" }),
        ...options.env,
      },
    });
    const started = { kube, aws, ca };
    return {
      ...started,
      webhook,
      stop: async () => {
        await webhook.stop();
        await started.aws.close();
        await kube.close();
        rmSync(started.ca.dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await aws?.close();
    await kube.close();
    if (ca) rmSync(ca.dir, { recursive: true, force: true });
    throw error;
  }
}
