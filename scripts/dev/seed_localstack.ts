// deno-lint-ignore-file no-console
/**
 * Seeds LocalStack (or any Secrets Manager + SSM endpoint) with demo/aws.yaml, with the AWS SDK the
 * project already depends on: creates or updates each secret, puts each parameter (overwrite).
 * Used by scripts/dev.sh; safe to run again.
 *
 * ```sh
 * deno run -A scripts/dev/seed_localstack.ts [--endpoint http://127.0.0.1:4566] [--file demo/aws.yaml]
 * ```
 *
 * Credentials: the usual AWS_* variables; `test`/`test` (what LocalStack accepts) when none are
 * set. The region is the one of the seed file.
 *
 * @module
 */

import {
  CreateSecretCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { AWS_DATA_FILE, type AwsSeed, loadAwsSeed } from "../../testing/demo_data.ts";

/** Default LocalStack edge endpoint (published on the host by scripts/dev/kind.yaml). */
export const DEFAULT_ENDPOINT = "http://127.0.0.1:4566";

/** The calls that seed `seed`, in order (no values are logged). */
export function seedPlan(seed: AwsSeed): Array<
  | { service: "secretsmanager"; name: string; secretString: string }
  | { service: "ssm"; name: string; type: string; value: string }
> {
  return [
    ...seed.secrets.map((secret) => ({
      service: "secretsmanager" as const,
      name: secret.name,
      secretString: JSON.stringify(secret.value),
    })),
    ...seed.parameters.map((parameter) => ({
      service: "ssm" as const,
      name: parameter.name,
      type: parameter.type,
      value: parameter.value,
    })),
  ];
}

function option(args: string[], name: string): string | undefined {
  const index = args.indexOf(name);
  if (index === -1) return undefined;
  const value = args[index + 1];
  if (value === undefined || value.startsWith("--")) {
    throw new TypeError(`Missing the value of ${name}`);
  }
  return value;
}

async function main(args: string[]): Promise<number> {
  const endpoint = option(args, "--endpoint") ?? Deno.env.get("AWS_ENDPOINT_URL") ??
    DEFAULT_ENDPOINT;
  const seed = loadAwsSeed(option(args, "--file") ?? AWS_DATA_FILE);
  const credentials = Deno.env.get("AWS_ACCESS_KEY_ID")
    ? undefined
    : { accessKeyId: "test", secretAccessKey: "test" };
  const config = { endpoint, region: seed.region, ...(credentials ? { credentials } : {}) };
  const secrets = new SecretsManagerClient(config);
  const ssm = new SSMClient(config);
  try {
    for (const call of seedPlan(seed)) {
      if (call.service === "secretsmanager") {
        try {
          await secrets.send(
            new CreateSecretCommand({ Name: call.name, SecretString: call.secretString }),
          );
          console.error(`created secret ${call.name}`);
        } catch (error) {
          if (!(error instanceof ResourceExistsException)) throw error;
          await secrets.send(
            new PutSecretValueCommand({ SecretId: call.name, SecretString: call.secretString }),
          );
          console.error(`updated secret ${call.name}`);
        }
      } else {
        await ssm.send(
          new PutParameterCommand({
            Name: call.name,
            Value: call.value,
            Type: call.type as "String" | "StringList" | "SecureString",
            Overwrite: true,
          }),
        );
        console.error(`put parameter ${call.name} (${call.type})`);
      }
    }
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    console.error(`Cannot seed ${endpoint} (region ${seed.region}): ${message}`);
    return 1;
  } finally {
    secrets.destroy();
    ssm.destroy();
  }
  console.error(
    `seeded ${seed.secrets.length} secrets and ${seed.parameters.length} parameters ` +
      `into ${endpoint} (region ${seed.region})`,
  );
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
