/**
 * Who calls `/secret`: the token is reviewed for Piggy's audiences (`PIGGY_TOKEN_AUDIENCES`, the
 * first being the audience of the projected token the mutation mounts). Launchers of earlier
 * releases and Go Piggy's send the pod's default token, whose audience is the API server's: under
 * the compatibility option `PIGGY_LEGACY_PODS` such a token is reviewed again for the API server's
 * audience and accepted, and the caller is told to warn once per request.
 *
 * @module
 */

import { UnauthenticatedError } from "../errors.ts";
import type { TokenReviewStatus } from "kubernetes-types/authentication/v1.d.ts";
import type { KubeCallOptions, KubeClient } from "../k8s/client.ts";
import type { DeepReadonly } from "../lookup_cache.ts";
import { type CallerIdentity, identifyCaller, reviewedServiceAccount } from "./decide.ts";

/** What {@link reviewCaller} needs. */
export interface TokenPolicy {
  /** Audiences a token must be valid for (`PIGGY_TOKEN_AUDIENCES`). */
  audiences: readonly string[];
  /** `PIGGY_LEGACY_PODS`: also accept a token for the API server's audience. */
  legacyPods: boolean;
  /**
   * Learns the service account of an authenticated token before any other check, so that the
   * audit line names it even when the token is then refused (e.g. a bound token replayed for
   * another pod).
   */
  onAuthenticated?: (account: { namespace: string; serviceAccount: string }) => void;
}

/** The caller, and whether its token was only valid for the API server (legacy). */
export interface ReviewedCaller {
  identity: CallerIdentity;
  /** True when the token was accepted for the API server's audience under `PIGGY_LEGACY_PODS`. */
  legacyToken: boolean;
}

/**
 * Reviews the token for Piggy's audiences, then (under `PIGGY_LEGACY_PODS`, when that fails for
 * lack of authentication or audience) for the API server's.
 *
 * @param requestName the pod name of the request body
 * @throws {UnauthenticatedError} the token is valid for none of the accepted audiences
 * @throws {AccessDeniedError} see `identifyCaller`
 */
export async function reviewCaller(
  kube: Pick<KubeClient, "reviewToken">,
  token: string,
  requestName: string,
  policy: TokenPolicy,
  options: KubeCallOptions = {},
): Promise<ReviewedCaller> {
  const audiences = [...policy.audiences];
  const review = await kube.reviewToken(token, audiences, options);
  tellAuthenticated(policy, review);
  try {
    return { identity: identifyCaller(review, requestName, { audiences }), legacyToken: false };
  } catch (error) {
    if (!(error instanceof UnauthenticatedError) || !policy.legacyPods) throw error;
  }
  // An empty audience list asks for the API server's own audience.
  const legacy = await kube.reviewToken(token, [], options);
  tellAuthenticated(policy, legacy);
  try {
    return { identity: identifyCaller(legacy, requestName), legacyToken: true };
  } catch (error) {
    if (!(error instanceof UnauthenticatedError)) throw error;
    throw new UnauthenticatedError(
      `Token is not authenticated for audience ${audiences.map((a) => `"${a}"`).join(", ")} ` +
        "nor, under PIGGY_LEGACY_PODS, for the API server",
      { cause: error },
    );
  }
}

function tellAuthenticated(policy: TokenPolicy, review: DeepReadonly<TokenReviewStatus>): void {
  const account = reviewedServiceAccount(review);
  if (account !== undefined) policy.onAuthenticated?.(account);
}
