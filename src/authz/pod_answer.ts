/**
 * What a pod is told when reading its secret fails on the AWS side: a short code and a generic
 * message, never AWS's own text (which names the webhook's role ARN and account on AccessDenied)
 * and never the cause. The full reason goes to the webhook's log with the request's audit line.
 *
 * @module
 */

import { SecretSourceError } from "../errors.ts";

/** The classes of AWS failures a pod may learn, with the message it gets. */
const CLASSES = {
  SecretNotFound: "the secret or parameter path does not exist",
  AwsAccessDenied: "the webhook's AWS identity may not read it",
  AwsUnavailable: "AWS is unavailable or throttling: retry later",
  SecretFormat: "its content is not a flat JSON object of values",
  AwsRegion: "no valid AWS region is configured (set aws-region, or AWS_REGION on the webhook)",
  AwsSessionUnavailable:
    "the webhook could not start this pod's AWS session (PIGGY_AWS_SESSION_ROLE_ARN)",
  AwsError: "AWS refused the request",
} as const;

/** A short code a pod may see in the `error` field of a failed `/secret` answer. */
export type PodErrorCode = keyof typeof CLASSES;

const NOT_FOUND = new Set(["ResourceNotFoundException", "ParameterNotFound"]);
const DENIED = new Set([
  "AccessDeniedException",
  "AccessDenied",
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "ExpiredTokenException",
  "ExpiredToken",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "DecryptionFailure",
  "KMSAccessDeniedException",
  "KMSDisabledException",
  "KMSInvalidStateException",
  "KMSNotFoundException",
  "CredentialsProviderError",
]);
const FORMAT = new Set([
  "InvalidSecretFormat",
  "InvalidSecretContent",
  "BinarySecretNotSupported",
  "ParameterNameCollision",
  "TooManyParameterPages",
]);

/** The class of an AWS failure. */
export function podErrorCode(error: SecretSourceError): PodErrorCode {
  if (NOT_FOUND.has(error.code)) return "SecretNotFound";
  if (DENIED.has(error.code)) return "AwsAccessDenied";
  if (FORMAT.has(error.code)) return "SecretFormat";
  if (error.code === "RegionMissing" || error.code === "InvalidRegion") return "AwsRegion";
  if (error.retryable) return "AwsUnavailable";
  if (error.code === "AwsSessionUnavailable") return "AwsSessionUnavailable";
  return "AwsError";
}

/**
 * The error a pod is answered with for a failed secret read: same status (502), a code from
 * {@link PodErrorCode} and a message that names only what the pod itself asked for.
 *
 * @param error the source's error (its message and cause stay in the webhook's log)
 * @param label the secret name or SSM path the pod's settings chose
 */
export function podFacingError(error: SecretSourceError, label: string): SecretSourceError {
  const code = podErrorCode(error);
  return new SecretSourceError(
    `Cannot load "${label}": ${CLASSES[code]} (the webhook's log has the details)`,
    { code, retryable: error.retryable },
  );
}
