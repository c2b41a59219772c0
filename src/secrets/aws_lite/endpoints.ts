/**
 * Where the light AWS client sends a call, by the SDK's rules: a configured endpoint first
 * (`AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`, both ignored when
 * `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true), else the regional endpoint
 * `https://<prefix>.<region>.<partition DNS suffix>` (STS included: the SDK's STS client is
 * regional).
 *
 * @module
 */

/** Reads one environment variable. */
export type EnvGet = (name: string) => string | undefined;

/** A service the light client calls. */
export interface AwsService {
  /** Endpoint prefix (`secretsmanager`, `ssm`, `sts`), also the signing name. */
  readonly prefix: string;
  /** Suffix of the service-specific endpoint variable (`SECRETS_MANAGER`, `SSM`, `STS`). */
  readonly envSuffix: string;
}

export const SECRETS_MANAGER: AwsService = {
  prefix: "secretsmanager",
  envSuffix: "SECRETS_MANAGER",
};
export const SSM: AwsService = { prefix: "ssm", envSuffix: "SSM" };
export const STS: AwsService = { prefix: "sts", envSuffix: "STS" };

/** DNS suffixes of the partitions that are not `amazonaws.com`, by region name prefix. */
const PARTITION_SUFFIXES: readonly (readonly [string, string])[] = [
  ["cn-", "amazonaws.com.cn"],
  ["us-isob-", "sc2s.sgov.gov"],
  ["us-isof-", "csp.hci.ic.gov"],
  ["us-iso-", "c2s.ic.gov"],
  ["eu-isoe-", "cloud.adc-e.uk"],
];

/** The DNS suffix of the region's partition. */
export function dnsSuffix(region: string): string {
  for (const [prefix, suffix] of PARTITION_SUFFIXES) {
    if (region.startsWith(prefix)) return suffix;
  }
  return "amazonaws.com";
}

/** True for the SDK's boolean `true` spelling of an environment variable. */
export function envTrue(env: EnvGet, name: string): boolean {
  return env(name)?.trim().toLowerCase() === "true";
}

/**
 * The endpoint of `service` in `region`.
 *
 * @throws {TypeError} when a configured endpoint is not an `http:`/`https:` URL
 */
export function endpointFor(service: AwsService, region: string, env: EnvGet): URL {
  if (!envTrue(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) {
    for (const name of [`AWS_ENDPOINT_URL_${service.envSuffix}`, "AWS_ENDPOINT_URL"]) {
      const value = env(name)?.trim();
      if (!value) continue;
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        throw new TypeError(`Cannot use ${name} "${value}": not a URL`);
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new TypeError(`Cannot use ${name} "${value}": expected an http or https URL`);
      }
      return url;
    }
  }
  return new URL(`https://${service.prefix}.${region}.${dnsSuffix(region)}`);
}
