/**
 * The AWS credential chain Piggy uses: the pod's own identity, never silently the node's.
 *
 * The SDK's default Node chain ends with the EC2 instance metadata service, so a pod without IRSA
 * or EKS Pod Identity (or a webhook whose IRSA is misconfigured) would read secrets with the node's
 * IAM role. This chain has the same links in the same order — environment keys, shared config and
 * credentials files, IRSA web identity, EKS Pod Identity / container credentials — and ends with
 * a clear error instead, unless the operator opts in to instance metadata.
 *
 * @module
 */

import { fromEnv } from "@aws-sdk/credential-provider-env";
import { fromHttp } from "@aws-sdk/credential-provider-http";
import { fromIni } from "@aws-sdk/credential-provider-ini";
import { fromTokenFile } from "@aws-sdk/credential-provider-web-identity";
import { fromInstanceMetadata } from "@smithy/credential-provider-imds";
import { CredentialsProviderError } from "@smithy/core/config";

/** A credential provider, as the SDK's clients take it. */
export type AwsCredentialIdentityProvider = ReturnType<typeof fromEnv>;
type AwsCredentialIdentity = Awaited<ReturnType<AwsCredentialIdentityProvider>>;

/** Options of {@link podCredentialProvider}. */
export interface PodCredentialOptions {
  /**
   * Use the EC2 instance metadata service (the node's role) as the last link. Only for the
   * webhook, on clusters where the operator gives the nodes the webhook's permissions.
   * @default false
   */
  allowInstanceMetadata?: boolean;
  /**
   * Region of the web-identity (IRSA) exchange with STS. When set, the calling client's
   * configuration is not passed to the chain: a provider shared by clients of many regions (the
   * webhook's, where pods choose the region) must not let one caller's region decide where every
   * caller's credentials come from. When unset (the launcher: one region), the calling client's
   * region and endpoint are used.
   */
  stsRegion?: string;
}

/** Refresh temporary credentials five minutes before they expire (as the SDK does). */
const REFRESH_BEFORE_MS = 5 * 60_000;

function tryNextLink(error: unknown): boolean {
  return (error as { tryNextLink?: unknown } | null)?.tryNextLink === true;
}

/**
 * Caches a provider's credentials until five minutes before they expire, with one call in flight
 * at a time. Unlike `@smithy/core`'s `memoize`, it passes the caller's properties on (they carry
 * the calling client's configuration), and when a refresh fails while the cached credentials are
 * still valid it keeps serving them instead of failing every caller.
 */
function memoizeProvider(provider: AwsCredentialIdentityProvider): AwsCredentialIdentityProvider {
  let cached: AwsCredentialIdentity | undefined;
  let pending: Promise<AwsCredentialIdentity> | undefined;
  return async (properties) => {
    const remaining = cached?.expiration === undefined
      ? Infinity
      : cached.expiration.getTime() - Date.now();
    if (cached !== undefined && remaining >= REFRESH_BEFORE_MS && !properties?.forceRefresh) {
      return cached;
    }
    pending ??= provider(properties).then((credentials) => (cached = credentials)).finally(() => {
      pending = undefined;
    });
    try {
      return await pending;
    } catch (error) {
      if (cached !== undefined && remaining > 0) return cached;
      throw error;
    }
  };
}

/**
 * Builds the memoized credential chain shared by every AWS client of a secret source.
 *
 * @throws (when called) `CredentialsProviderError` naming the identities it looked for
 */
export function podCredentialProvider(
  options: PodCredentialOptions = {},
): AwsCredentialIdentityProvider {
  // Each link is built when it is tried: they read the environment then (fromHttp even throws at
  // construction when its variables are unset), as the SDK's own chain does.
  const links: AwsCredentialIdentityProvider[] = [
    (properties) => fromEnv()(properties),
    (properties) => fromIni()(properties),
    options.stsRegion
      ? () => fromTokenFile({ clientConfig: { region: options.stsRegion } })()
      : (properties) => fromTokenFile()(properties),
    (properties) => fromHttp({})(properties),
    options.allowInstanceMetadata ? () => fromInstanceMetadata()() : () => {
      throw new CredentialsProviderError(
        "Cannot find AWS credentials: no IRSA web identity (AWS_ROLE_ARN, " +
          "AWS_WEB_IDENTITY_TOKEN_FILE), EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI), " +
          "environment keys or shared profile; the node's instance role is not used",
        { tryNextLink: false },
      );
    },
  ];
  // Like the SDK's chain: a link that does not apply says tryNextLink; any other failure (an STS
  // refusal, say) stops the chain rather than falling through to a weaker identity.
  const chain: AwsCredentialIdentityProvider = async (properties) => {
    for (const link of links) {
      try {
        return await link(properties);
      } catch (error) {
        if (!tryNextLink(error)) throw error;
      }
    }
    throw new CredentialsProviderError("Cannot find AWS credentials", { tryNextLink: false });
  };
  return memoizeProvider(chain);
}
