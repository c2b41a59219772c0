import { test } from "node:test";
import { queryLabel } from "../secrets/query.ts";
import assert from "node:assert/strict";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import type { TokenReviewStatus } from "kubernetes-types/authentication/v1.d.ts";
import { ANNOTATION_PREFIX, ENV, PIGGY_UID_ANNOTATION, RESERVED_KEYS } from "../constants.ts";
import { AccessDeniedError, NotFoundError, UnauthenticatedError } from "../errors.ts";
import { resolveConfig } from "../config/resolve_config.ts";
import {
  authorizeValues,
  type CallerIdentity,
  decideSecretAccess,
  identifyCaller,
  POD_NAME_CLAIM,
  POD_UID_CLAIM,
  type SecretRequest,
} from "./decide.ts";
import type { AccessGuard, SecretAccessPolicy } from "../secrets/access_policy.ts";

const NAMESPACE_GUARD: AccessGuard = { policy: "namespace", prefix: "" };
const IN_NAMESPACE = { guard: NAMESPACE_GUARD, inNamespace: true } as const;

const SIGNATURE = "2dd7e5fd4cee0bfad2b0f0ef8ec72a608873636f7bf71ad416d18317939b3222";

function reviewOf(username: string, extra?: Record<string, string[]>): TokenReviewStatus {
  return { authenticated: true, user: extra ? { username, extra } : { username } };
}

function identityOf(overrides: Partial<CallerIdentity> = {}): CallerIdentity {
  return {
    namespace: "default",
    serviceAccountName: "test-sa",
    serviceAccount: "default:test-sa",
    podName: "test-pod",
    ...overrides,
  };
}

function podWith(
  options: {
    annotations?: Record<string, string>;
    namespace?: string;
    serviceAccountName?: string;
    uid?: string;
    deleting?: boolean;
  } = {},
): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "test-pod",
      namespace: options.namespace ?? "default",
      uid: options.uid ?? "pod-uid-1",
      annotations: {
        [PIGGY_UID_ANNOTATION]: JSON.stringify({ "test-uid": SIGNATURE }),
        ...options.annotations,
      },
      ...(options.deleting ? { deletionTimestamp: "2026-01-01T00:00:00Z" } : {}),
    },
    spec: {
      serviceAccountName: options.serviceAccountName ?? "test-sa",
      containers: [{ name: "app", image: "app:1" }],
    },
  };
}

function requestOf(overrides: Partial<SecretRequest> = {}): SecretRequest {
  return { name: "test-pod", uid: "test-uid", signature: SIGNATURE, ...overrides };
}

function decide(
  pod: Pod | null,
  options: {
    identity?: CallerIdentity;
    request?: SecretRequest;
    env?: Record<string, string>;
    guard?: AccessGuard;
    warn?: (message: string) => void;
  } = {},
) {
  const env = options.env ?? {};
  return decideSecretAccess({
    identity: options.identity ?? identityOf(),
    pod,
    request: options.request ?? requestOf(),
    settings: resolveConfig(pod?.metadata?.annotations, (name) => env[name]),
    guard: options.guard ?? NAMESPACE_GUARD,
    ...(options.warn ? { warn: options.warn } : {}),
  });
}

// --- identifyCaller -------------------------------------------------------------------------

test("identifyCaller() refuses an unauthenticated token with 401", () => {
  assert.throws(
    () => identifyCaller({ authenticated: false }, "test-pod"),
    (error) => error instanceof UnauthenticatedError && /not authenticated/.test(error.message),
  );
});

test("identifyCaller() refuses an authenticated review that carries an error", () => {
  const status = { ...reviewOf("system:serviceaccount:default:test-sa"), error: "expired" };
  assert.throws(() => identifyCaller(status, "test-pod"), UnauthenticatedError);
});

test("identifyCaller() takes namespace and service account from the username", () => {
  const identity = identifyCaller(reviewOf("system:serviceaccount:team-a:app"), "app-pod");
  assert.deepEqual(identity, {
    namespace: "team-a",
    serviceAccountName: "app",
    serviceAccount: "team-a:app",
    podName: "app-pod",
  });
});

test("identifyCaller() refuses users that are not service accounts", () => {
  for (const username of ["alice", "system:node:n1", "system:serviceaccount:ns", ""]) {
    assert.throws(
      () => identifyCaller(reviewOf(username), "test-pod"),
      AccessDeniedError,
      username,
    );
  }
  assert.throws(
    () => identifyCaller(reviewOf("system:serviceaccount:ns:sa:extra"), "test-pod"),
    AccessDeniedError,
  );
});

test("identifyCaller() uses the bound pod claims of a projected token", () => {
  const identity = identifyCaller(
    reviewOf("system:serviceaccount:default:test-sa", {
      [POD_NAME_CLAIM]: ["test-pod"],
      [POD_UID_CLAIM]: ["pod-uid-1"],
    }),
    "test-pod",
  );
  assert.equal(identity.podName, "test-pod");
  assert.equal(identity.podUid, "pod-uid-1");
});

test("identifyCaller() refuses a token bound to another pod than the request names", () => {
  const status = reviewOf("system:serviceaccount:default:test-sa", {
    [POD_NAME_CLAIM]: ["other-pod"],
  });
  assert.throws(
    () => identifyCaller(status, "test-pod"),
    (error) => error instanceof AccessDeniedError && /other-pod/.test(error.message),
  );
});

test("identifyCaller() refuses a bound claim with several values", () => {
  const status = reviewOf("system:serviceaccount:default:test-sa", {
    [POD_NAME_CLAIM]: ["test-pod", "other-pod"],
  });
  assert.throws(() => identifyCaller(status, "test-pod"), AccessDeniedError);
});

test("identifyCaller() requires a configured audience in status.audiences", () => {
  const base = reviewOf("system:serviceaccount:default:test-sa");
  const audiences = ["piggy"];
  assert.equal(
    identifyCaller({ ...base, audiences: ["api", "piggy"] }, "test-pod", { audiences }).podName,
    "test-pod",
  );
  assert.throws(
    () => identifyCaller({ ...base, audiences: ["api"] }, "test-pod", { audiences }),
    UnauthenticatedError,
  );
  // Empty status.audiences means "valid for the API server": refused when an audience is required.
  assert.throws(() => identifyCaller(base, "test-pod", { audiences }), UnauthenticatedError);
  assert.throws(
    () => identifyCaller({ ...base, audiences: [] }, "test-pod", { audiences }),
    UnauthenticatedError,
  );
});

test("identifyCaller() ignores status.audiences when no audience is configured", () => {
  const status = { ...reviewOf("system:serviceaccount:default:test-sa"), audiences: ["api"] };
  assert.equal(identifyCaller(status, "test-pod").namespace, "default");
});

// --- decideSecretAccess ---------------------------------------------------------------------

test("decideSecretAccess() allows a matching uid and signature", () => {
  const decision = decide(
    podWith({ annotations: { [`${ANNOTATION_PREFIX}aws-secret-name`]: "s" } }),
  );
  assert.equal(queryLabel(decision.query), "s");
  assert.equal(decision.serviceAccount, "default:test-sa");
  assert.equal(decision.podName, "test-pod");
  assert.equal(decision.secretLabel, "s");
});

test("decideSecretAccess() answers 404 when the pod does not exist", () => {
  assert.throws(
    () => decide(null, { identity: identityOf({ podName: "non-existent-pod" }) }),
    (error) =>
      error instanceof NotFoundError && /non-existent-pod/.test(error.message) &&
      /default/.test(error.message),
  );
});

test("decideSecretAccess() refuses a wrong signature", () => {
  assert.throws(
    () => decide(podWith(), { request: requestOf({ signature: "wrong-signature" }) }),
    (error) => error instanceof AccessDeniedError && /invalid signature/i.test(error.message),
  );
});

test("decideSecretAccess() with integrity off allows a known uid whatever the signature", () => {
  const pod = podWith({
    annotations: { [`${ANNOTATION_PREFIX}piggy-enforce-integrity`]: "false" },
  });
  const decision = decide(pod, { request: requestOf({ signature: "anything" }) });
  assert.equal(decision.podName, "test-pod");
});

test("decideSecretAccess() with integrity off still refuses an unknown uid", () => {
  const pod = podWith({
    annotations: { [`${ANNOTATION_PREFIX}piggy-enforce-integrity`]: "false" },
  });
  assert.throws(
    () => decide(pod, { request: requestOf({ uid: "some-uid" }) }),
    (error) => error instanceof AccessDeniedError && /invalid uid/i.test(error.message),
  );
});

test("decideSecretAccess() refuses an unknown uid, also with an empty signature (Go Piggy let it through)", () => {
  const pod = podWith({ annotations: { [PIGGY_UID_ANNOTATION]: "{}" } });
  for (const signature of ["sig", ""]) {
    assert.throws(
      () => decide(pod, { request: requestOf({ uid: "some-uid", signature }) }),
      (error) => error instanceof AccessDeniedError && /invalid signature/i.test(error.message),
      signature,
    );
  }
  assert.throws(
    () => decide(podWith(), { request: requestOf({ uid: "", signature: "" }) }),
    AccessDeniedError,
  );
});

test("decideSecretAccess() refuses another service account than the token's", () => {
  assert.throws(
    () =>
      decide(podWith(), {
        identity: identityOf({
          serviceAccountName: "other-sa",
          serviceAccount: "default:other-sa",
        }),
      }),
    (error) =>
      error instanceof AccessDeniedError && /invalid service account found/i.test(error.message),
  );
});

test("decideSecretAccess() refuses a pod replaced under the same name (bound uid mismatch)", () => {
  assert.throws(
    () => decide(podWith({ uid: "pod-uid-2" }), { identity: identityOf({ podUid: "pod-uid-1" }) }),
    (error) => error instanceof AccessDeniedError && /pod-uid-1/.test(error.message),
  );
  assert.equal(
    decide(podWith(), { identity: identityOf({ podUid: "pod-uid-1" }) }).podName,
    "test-pod",
  );
});

test("decideSecretAccess() refuses a pod that is being deleted", () => {
  assert.throws(() => decide(podWith({ deleting: true })), AccessDeniedError);
});

test("decideSecretAccess() refuses a pod whose settings have a denying problem", () => {
  const pod = podWith({ annotations: { [`${ANNOTATION_PREFIX}piggy-enforce-integrity`]: "yes" } });
  const settings = resolveConfig(pod.metadata?.annotations, () => undefined);
  const denial = settings.problems.find((problem) => problem.deny);
  assert.ok(denial, "resolveConfig reports a non-boolean piggy-enforce-integrity as denying");
  assert.throws(
    () => decide(pod, { request: requestOf({ signature: "wrong" }) }),
    (error) => error instanceof AccessDeniedError && error.message === denial.message,
  );
});

test("decideSecretAccess() treats an unparsable piggy-uid annotation as empty and warns", () => {
  const warnings: string[] = [];
  const pod = podWith({ annotations: { [PIGGY_UID_ANNOTATION]: "{not json" } });
  assert.throws(
    () => decide(pod, { warn: (message) => warnings.push(message) }),
    AccessDeniedError,
  );
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? "", /piggy-uid/);
});

test("decideSecretAccess() builds the default secret name from namespace and service account", () => {
  const demoQuery = (serviceAccountName: string, env: Record<string, string> = {}) =>
    decide(podWith({ namespace: "demo", serviceAccountName }), {
      identity: identityOf({
        namespace: "demo",
        serviceAccountName,
        serviceAccount: `demo:${serviceAccountName}`,
      }),
      env,
    }).query;
  const demo = (serviceAccountName: string, env: Record<string, string> = {}) =>
    queryLabel(demoQuery(serviceAccountName, env));
  assert.equal(demo("default"), "demo/default");
  assert.equal(demo("sample", { [ENV.DEFAULT_SECRET_NAME_SUFFIX]: "/test" }), "demo/sample/test");
  assert.equal(
    demo("sample", { [ENV.DEFAULT_SECRET_NAME_PREFIX]: "prod/" }),
    "prod/demo/sample",
  );
});

test("decideSecretAccess() reads SSM instead of a default secret name when a path is set", () => {
  const pod = podWith({
    annotations: { [`${ANNOTATION_PREFIX}aws-ssm-parameter-path`]: "/config" },
  });
  const decision = decide(pod);
  assert.deepEqual(decision.query, { kind: "ssm", path: "/config", region: "" });
  assert.equal(decision.secretLabel, "/config");
});

test("decideSecretAccess() takes region and version from the annotation, then the webhook env", () => {
  const env = { AWS_REGION: "us-east-1", AWS_SECRET_VERSION: "env-stage" };
  const fromEnv = decide(podWith(), { env }).query;
  assert.equal(fromEnv.region, "us-east-1");
  assert.equal(fromEnv.kind === "secretsManager" && fromEnv.version, "env-stage");
  const annotated = podWith({
    annotations: {
      [`${ANNOTATION_PREFIX}aws-region`]: "eu-west-1",
      [`${ANNOTATION_PREFIX}aws-secret-version`]: "AWSPREVIOUS",
    },
  });
  const fromAnnotation = decide(annotated, { env }).query;
  assert.equal(fromAnnotation.region, "eu-west-1");
  assert.equal(fromAnnotation.kind === "secretsManager" && fromAnnotation.version, "AWSPREVIOUS");
  assert.equal(decide(podWith()).query.region, "");
});

test("decideSecretAccess() places the default name with the guard prefix, not the pod's", () => {
  assert.equal(decide(podWith()).inNamespace, true);
  // A pod in "default" whose annotation moves the default name to "team-b/default/test-sa".
  const moved = podWith({
    annotations: { [`${ANNOTATION_PREFIX}piggy-default-secret-name-prefix`]: "team-b/" },
  });
  const decision = decide(moved);
  assert.equal(decision.secretLabel, "team-b/default/test-sa");
  assert.equal(decision.inNamespace, false);
  const guarded = decide(moved, { guard: { policy: "namespace", prefix: "team-b/" } });
  assert.equal(guarded.inNamespace, true);
});

test("decideSecretAccess() refuses a partial ARN and an SSM path that climbs out", () => {
  for (
    const [key, value] of [
      ["aws-secret-name", "arn:aws:secretsmanager:us-east-1:123456789012:secret:default/app"],
      ["aws-secret-name", "arn:aws:ssm:us-east-1:123456789012:parameter/default/app"],
      ["aws-ssm-parameter-path", "/default/../team-b"],
      ["aws-ssm-parameter-path", "default/app"],
    ]
  ) {
    const pod = podWith({ annotations: { [`${ANNOTATION_PREFIX}${key}`]: value! } });
    assert.throws(() => decide(pod), AccessDeniedError, `${key}=${value}`);
  }
  const arn = podWith({
    annotations: {
      [`${ANNOTATION_PREFIX}aws-secret-name`]:
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:default/app-AbC123",
    },
  });
  assert.equal(decide(arn).inNamespace, true);
});

// --- authorizeValues ------------------------------------------------------------------------

test("authorizeValues() allows a listed service account and drops PIGGY_ALLOWED_SA", () => {
  const values = { [ENV.ALLOWED_SA]: "default:test-sa,other:sa", MY_VAR: "val1" };
  assert.deepEqual(authorizeValues(values, "default:test-sa", IN_NAMESPACE), { MY_VAR: "val1" });
});

test("authorizeValues() refuses a service account that is not listed", () => {
  assert.throws(
    () =>
      authorizeValues(
        { [ENV.ALLOWED_SA]: "other:sa", MY_VAR: "v" },
        "default:test-sa",
        IN_NAMESPACE,
      ),
    AccessDeniedError,
  );
  assert.throws(
    () => authorizeValues({ [ENV.ALLOWED_SA]: "", MY_VAR: "v" }, "default:test-sa", IN_NAMESPACE),
    AccessDeniedError,
  );
});

test("authorizeValues() trims PIGGY_ALLOWED_SA entries (Go Piggy did not)", () => {
  const values = { [ENV.ALLOWED_SA]: "ns:a, default:test-sa ,ns:b", MY_VAR: "v" };
  assert.deepEqual(authorizeValues(values, "default:test-sa", IN_NAMESPACE), { MY_VAR: "v" });
});

test("authorizeValues() follows the policy: each mode × in namespace / outside / listed", () => {
  const listed = { [ENV.ALLOWED_SA]: "default:test-sa", MY_VAR: "v" };
  const unlisted = { [ENV.ALLOWED_SA]: "default:other", MY_VAR: "v" };
  const plain = { MY_VAR: "v" };
  const cases: Array<[SecretAccessPolicy, Record<string, string>, boolean, boolean]> = [
    ["namespace", plain, true, true],
    ["namespace", plain, false, false],
    ["namespace", listed, false, true],
    ["namespace", unlisted, true, false],
    ["allowed-sa", plain, true, false],
    ["allowed-sa", listed, false, true],
    ["allowed-sa", unlisted, true, false],
    ["any", plain, false, true],
    ["any", unlisted, true, false],
    ["any", listed, false, true],
  ];
  for (const [policy, values, inNamespace, allowed] of cases) {
    const run = () =>
      authorizeValues(values, "default:test-sa", {
        guard: { policy, prefix: "" },
        inNamespace,
        secretLabel: "s",
      });
    const label = `${policy} ${JSON.stringify(values)} inNamespace=${inNamespace}`;
    if (allowed) assert.deepEqual(run(), { MY_VAR: "v" }, label);
    else {
      assert.throws(
        run,
        (error) =>
          error instanceof AccessDeniedError &&
          error.message.includes(`PIGGY_SECRET_ACCESS_POLICY=${policy}`) &&
          error.message.includes('"s"'),
        label,
      );
    }
  }
});

test("authorizeValues() drops every reserved key and keeps the input unchanged", () => {
  const values: Record<string, string> = { NORMAL_VAR: "n" };
  for (const key of RESERVED_KEYS) if (key !== ENV.ALLOWED_SA) values[key] = "x";
  const before = structuredClone(values);
  assert.deepEqual(authorizeValues(values, "default:test-sa", IN_NAMESPACE), { NORMAL_VAR: "n" });
  assert.deepEqual(values, before);
});

test("authorizeValues() keeps a __proto__ key as plain data", () => {
  const values = JSON.parse('{"__proto__":"p","A":"a"}') as Record<string, string>;
  const result = authorizeValues(values, "default:test-sa", IN_NAMESPACE);
  assert.equal(Object.getPrototypeOf(result), Object.prototype);
  assert.equal(JSON.stringify(result), '{"__proto__":"p","A":"a"}');
});
