/**
 * In-memory {@link SecretSource} for unit tests and the demo: secrets by name, SSM parameters by
 * full name, with a call counter.
 *
 * @module
 */

import { SecretSourceError } from "../errors.ts";
import type { SecretQuery, SecretSource } from "./source.ts";

/** Secrets and parameters held in memory. */
export class MemorySecretSource implements SecretSource {
  readonly #secrets = new Map<string, Record<string, string>>();
  readonly #parameters = new Map<string, string>();
  /** Queries received, in order. */
  readonly queries: SecretQuery[] = [];

  /** Stores a Secrets Manager secret. */
  putSecret(name: string, values: Record<string, string>): this {
    this.#secrets.set(name, { ...values });
    return this;
  }

  /** Stores an SSM parameter under its full name (e.g. `/demo/app/DB_HOST`). */
  putParameter(name: string, value: string): this {
    this.#parameters.set(name, value);
    return this;
  }

  fetchSecret(query: SecretQuery): Promise<Record<string, string>> {
    this.queries.push({ ...query });
    if (query.kind === "ssm") {
      const prefix = query.path.endsWith("/") ? query.path : `${query.path}/`;
      const values: Record<string, string> = {};
      for (const [name, value] of this.#parameters) {
        if (name.startsWith(prefix)) values[name.slice(name.lastIndexOf("/") + 1)] = value;
      }
      return Promise.resolve(values);
    }
    const secret = this.#secrets.get(query.name);
    if (!secret) {
      return Promise.reject(
        new SecretSourceError(`Cannot load secret "${query.name}": not found`, {
          code: "ResourceNotFoundException",
        }),
      );
    }
    return Promise.resolve({ ...secret });
  }
}
