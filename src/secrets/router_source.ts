/**
 * {@link SecretSource} that hands each query to the source of its `kind`. Adding a backend is one
 * member of `SecretQuery`, one source file and one entry here.
 *
 * @module
 */

import type { SecretFetchOptions, SecretKind, SecretQuery, SecretSource } from "./source.ts";

/** One source per query kind, each typed for its own queries. */
export type SourcesByKind = {
  readonly [K in SecretKind]: SecretSource<Extract<SecretQuery, { kind: K }>>;
};

/** Routes queries by kind. */
export class RouterSecretSource implements SecretSource {
  readonly #sources: SourcesByKind;

  /** @param sources the source of every kind */
  constructor(sources: SourcesByKind) {
    this.#sources = sources;
  }

  /** Fetches through the source of `query.kind`. */
  fetchSecret(query: SecretQuery, options?: SecretFetchOptions): Promise<Record<string, string>> {
    switch (query.kind) {
      case "secretsManager":
        return this.#sources.secretsManager.fetchSecret(query, options);
      case "ssm":
        return this.#sources.ssm.fetchSecret(query, options);
    }
  }
}
