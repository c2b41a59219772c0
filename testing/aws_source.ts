/**
 * Setup for the AWS secret source's tests: a query built from the settings' fields, and a fresh
 * AWS stand-in with an {@link AwsSecretSource} that reads it through the SDK's environment.
 *
 * @module
 */

import { secretQueryOf } from "../src/secrets/query.ts";
import type { SecretQuery } from "../src/secrets/source.ts";
import { AwsSecretSource, type AwsSecretSourceOptions } from "../src/secrets/aws_source.ts";
import { type AwsStandIn, startAwsStandIn, withEnv } from "./aws.ts";

/** The settings' fields a query is built from. */
export interface SecretFields {
  secretName: string;
  ssmParameterPath: string;
  region: string;
  version: string;
}

/** A query from the settings' fields (secret `app/db` unless told), as `/secret` builds it. */
export function secretQuery(fields: Partial<SecretFields> = {}): SecretQuery {
  const { secretName, ssmParameterPath, region, version } = {
    secretName: "app/db",
    ssmParameterPath: "",
    region: "",
    version: "",
    ...fields,
  };
  return secretQueryOf({
    awsSecretName: secretName,
    awsSsmParameterPath: ssmParameterPath,
    awsRegion: region,
    awsSecretVersion: version,
  })!;
}

/** Options of {@link withAwsSource}. */
export interface WithAwsSourceOptions {
  /** The stand-in's env options, or the whole env built from the stand-in. */
  env?:
    | Parameters<AwsStandIn["env"]>[0]
    | ((aws: AwsStandIn) => Record<string, string | undefined>);
  source?: AwsSecretSourceOptions;
}

/** Runs `fn` against a fresh stand-in with its env applied, then closes everything. */
export async function withAwsSource(
  fn: (aws: AwsStandIn, source: AwsSecretSource) => Promise<void>,
  options: WithAwsSourceOptions = {},
): Promise<void> {
  const aws = await startAwsStandIn();
  const source = new AwsSecretSource(options.source);
  const env = typeof options.env === "function" ? options.env(aws) : aws.env(options.env);
  try {
    await withEnv(env, () => fn(aws, source));
  } finally {
    source.destroy();
    await aws.close();
  }
}
