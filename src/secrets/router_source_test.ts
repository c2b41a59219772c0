import { test } from "node:test";
import assert from "node:assert/strict";
import { RouterSecretSource } from "./router_source.ts";
import type { SecretQuery, SecretsManagerQuery, SsmQuery } from "./source.ts";

test("RouterSecretSource hands each query to the source of its kind, with the call options", async () => {
  const seen: string[] = [];
  const signal = new AbortController().signal;
  const router = new RouterSecretSource({
    secretsManager: {
      fetchSecret: (query: SecretsManagerQuery, options) => {
        seen.push(`sm:${query.name}:${options?.signal === signal}`);
        return Promise.resolve({ FROM: "secretsManager" });
      },
    },
    ssm: {
      fetchSecret: (query: SsmQuery, options) => {
        seen.push(`ssm:${query.path}:${options?.signal === signal}`);
        return Promise.resolve({ FROM: "ssm" });
      },
    },
  });
  const queries: SecretQuery[] = [
    { kind: "secretsManager", name: "app/db", version: "", region: "" },
    { kind: "ssm", path: "/app", region: "" },
  ];
  const answers = await Promise.all(queries.map((query) => router.fetchSecret(query, { signal })));
  assert.deepEqual(answers, [{ FROM: "secretsManager" }, { FROM: "ssm" }]);
  assert.deepEqual(seen, ["sm:app/db:true", "ssm:/app:true"]);
});
