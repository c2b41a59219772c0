/**
 * Which AWS client piggy-env's standalone mode uses, decided from the environment before any call
 * (never "try light, then the SDK"): the light client (`source.ts`) unless the environment asks
 * for something only the SDK does. The SDK is chosen when
 *
 * - `AWS_PROFILE` is set, or a shared config or credentials file exists (`AWS_CONFIG_FILE`,
 *   `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/config` and `~/.aws/credentials`): profiles,
 *   `credential_process`, SSO, assume-role chains, a region or endpoint from the profile;
 * - `HOME` is unset (the SDK would find its files through the user database);
 * - `AWS_USE_FIPS_ENDPOINT` or `AWS_USE_DUALSTACK_ENDPOINT` is true, or the region
 *   (`PIGGY_AWS_REGION`, `AWS_REGION`) is a FIPS pseudo-region (`fips-…`, `…-fips`);
 *
 * A proxy variable is no reason for the SDK: the light client honours `HTTPS_PROXY`,
 * `HTTP_PROXY` and `NO_PROXY` as Go's `http.ProxyFromEnvironment` does (`proxy_env.ts`), which
 * the SDK path does not.
 *
 * @module
 */

import { ENV } from "../../constants.ts";
import type { Logger } from "../../log.ts";
import type { SecretSource } from "../source.ts";
import { type EnvGet, envTrue } from "./endpoints.ts";
import type { SendRequest } from "./http.ts";
import { proxyFromEnvironment } from "./proxy_env.ts";
import { LightAwsSource } from "./source.ts";

/** The client chosen, and why the SDK when it is. */
export type AwsClientChoice = { client: "light" } | { client: "sdk"; reason: string };

/** The proxy variables the light client reads (`proxy_env.ts`), named in its debug line. */
const PROXY_VARIABLES = [
  "HTTPS_PROXY",
  "https_proxy",
  "HTTP_PROXY",
  "http_proxy",
  "NO_PROXY",
  "no_proxy",
];

/**
 * Chooses the client for this environment.
 *
 * @param exists true when a file exists at the path (any error: false)
 */
export async function chooseAwsClient(
  env: EnvGet,
  exists: (path: string) => Promise<boolean>,
): Promise<AwsClientChoice> {
  if (env("AWS_PROFILE")) return { client: "sdk", reason: "AWS_PROFILE is set" };
  for (const name of ["AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"]) {
    if (envTrue(env, name)) return { client: "sdk", reason: `${name} is true` };
  }
  for (const name of [ENV.AWS_REGION, "AWS_REGION"]) {
    const region = env(name) ?? "";
    if (region.startsWith("fips-") || region.endsWith("-fips")) {
      return { client: "sdk", reason: `${name} is a FIPS region` };
    }
  }
  const home = env("HOME");
  if (!home) return { client: "sdk", reason: "HOME is unset" };
  const files: [string, string][] = [
    ["AWS_CONFIG_FILE", env("AWS_CONFIG_FILE") || `${home}/.aws/config`],
    [
      "AWS_SHARED_CREDENTIALS_FILE",
      env("AWS_SHARED_CREDENTIALS_FILE") || `${home}/.aws/credentials`,
    ],
  ];
  for (const [, path] of files) {
    if (await exists(path)) {
      return { client: "sdk", reason: `the shared AWS file "${path}" exists` };
    }
  }
  return { client: "light" };
}

/** What {@link createStandaloneAwsSource} needs. */
export interface StandaloneAwsDeps {
  env: EnvGet;
  /** See {@link chooseAwsClient}. */
  exists(path: string): Promise<boolean>;
  /** Reads token files. */
  readTextFile(path: string): Promise<string>;
  /** Largest AWS answer body the light client reads (`PIGGY_AWS_MAX_ANSWER_BYTES`). */
  maxAnswerBytes: number;
  /** The light client's transport: `requestText` (src/runtime/http_post.ts). */
  send: SendRequest;
  /** Loads and creates the SDK-based source (only when it is chosen). */
  loadSdk(logger: Logger): Promise<SecretSource>;
}

/**
 * The AWS source of piggy-env's standalone mode: the light client, or the SDK when
 * {@link chooseAwsClient} says so. Logs the choice at debug level.
 */
export async function createStandaloneAwsSource(
  logger: Logger,
  deps: StandaloneAwsDeps,
): Promise<SecretSource> {
  const choice = await chooseAwsClient(deps.env, deps.exists);
  if (choice.client === "sdk") {
    logger.debug("AWS client chosen", { aws_client: "sdk", reason: choice.reason });
    return await deps.loadSdk(logger);
  }
  // Names only: a proxy variable's value may hold a password.
  const proxyVariables = PROXY_VARIABLES.filter((name) => deps.env(name));
  logger.debug("AWS client chosen", {
    aws_client: "light",
    ...(proxyVariables.length > 0 ? { proxy_variables: proxyVariables.join(",") } : {}),
  });
  return new LightAwsSource({
    env: deps.env,
    readTextFile: deps.readTextFile,
    logger,
    maxAnswerBytes: deps.maxAnswerBytes,
    send: deps.send,
    proxyFor: proxyFromEnvironment(deps.env),
  });
}
