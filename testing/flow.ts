/**
 * Cross-module flow helpers: admit a pod through the real webhook's `/mutate`, apply the patch,
 * persist the result in the Kubernetes API stand-in, and build the launcher's `/secret` request.
 *
 * @module
 */

import jsonpatch from "fast-json-patch";
import type { Container, Pod } from "kubernetes-types/core/v1.d.ts";
import { PIGGY_UID_ANNOTATION, TOKEN_VOLUME_NAME } from "../src/constants.ts";
import { commandSignature } from "../src/pod/signature.ts";
import type { KubeApiStandIn } from "./kube_api.ts";
import type { WebhookProcess } from "./webhook_process.ts";
import { reviewOf } from "./review.ts";

export { reviewOf, type ReviewOptions } from "./review.ts";

/** An AdmissionReview (CREATE pods) for `pod` in `namespace`, as the API server sends it. */
export function admissionReview(
  pod: Pod,
  namespace: string,
  uid: string = crypto.randomUUID(),
): { request: { uid: string; object: Pod } } {
  return reviewOf(pod, { namespace, uid }) as { request: { uid: string; object: Pod } };
}

/** The AdmissionReview answer and the pod obtained by applying its patch. */
export interface Admitted {
  review: {
    apiVersion: string;
    kind: string;
    response: {
      uid: string;
      allowed: boolean;
      patch?: string;
      patchType?: string;
      warnings?: string[];
      status?: { code?: number; message?: string };
    };
  };
  pod: Pod;
}

/**
 * Sends `pod` to the webhook's `/mutate` and applies the returned patch. `webhook` is a running
 * process, or anything with its `fetch` (e.g. an in-process handler).
 */
export async function admitPod(
  webhook: Pick<WebhookProcess, "fetch">,
  pod: Pod,
  namespace: string,
): Promise<Admitted> {
  const response = await webhook.fetch("/mutate", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(admissionReview(pod, namespace)),
  });
  if (response.status !== 200) {
    throw new Error(`/mutate answered ${response.status}: ${await response.text()}`);
  }
  const review = await response.json() as Admitted["review"];
  let mutated = structuredClone(pod);
  if (review.response.patch) {
    const operations = JSON.parse(atob(review.response.patch));
    mutated = jsonpatch.applyPatch(mutated, operations, true, false).newDocument;
  }
  return { review, pod: mutated };
}

/** Stores an admitted pod in the stand-in as the API server would persist it (name, uid). */
export function persistPod(kube: KubeApiStandIn, pod: Pod, namespace: string, name: string): Pod {
  const stored = structuredClone(pod);
  stored.metadata = { ...stored.metadata, name, namespace };
  return kube.put("pods", stored as never) as Pod;
}

/** The container's `PIGGY_UID` value and its signed command (the args after `--`). */
export function launcherIdentity(container: Container): { uid: string; command: string[] } {
  const uid = container.env?.find((entry) => entry.name === "PIGGY_UID")?.value ?? "";
  const args = container.args ?? [];
  return { uid, command: args[0] === "--" ? args.slice(1) : args };
}

/** What the launcher of a persisted pod's container sends to `/secret`. */
export interface LauncherRequest {
  name: string;
  uid: string;
  signature: string;
  /** A token bound to the pod, for its namespace and service account. */
  token: string;
  /** The JSON body, as piggy-env writes it. */
  body: string;
}

/**
 * A token bound to the stored pod, as its launcher sends it: for the audience of the projected
 * token volume the mutation added (what the kubelet writes where `PIGGY_TOKEN_FILE` points), or,
 * for a pod without one (admitted before the projected token), the API server's default token.
 *
 * @param audiences another audience list (e.g. a token from elsewhere)
 */
export function launcherToken(kube: KubeApiStandIn, stored: Pod, audiences?: string[]): string {
  const projected = stored.spec?.volumes?.find((volume) => volume.name === TOKEN_VOLUME_NAME)
    ?.projected?.sources?.find((source) => source.serviceAccountToken)?.serviceAccountToken
    ?.audience;
  const wanted = audiences ?? (projected === undefined ? undefined : [projected]);
  return kube.issueToken({
    namespace: stored.metadata?.namespace ?? "",
    serviceAccount: stored.spec?.serviceAccountName ?? "default",
    podName: stored.metadata?.name ?? "",
    ...(wanted ? { audiences: wanted } : {}),
  });
}

/**
 * The `/secret` request of the launcher in `stored`'s container `index`, with a bound token: for
 * `audiences` when given, else the token its launcher sends ({@link launcherToken}).
 */
export function launcherRequest(
  kube: KubeApiStandIn,
  stored: Pod,
  index = 0,
  audiences?: string[],
): LauncherRequest {
  const name = stored.metadata?.name ?? "";
  const { uid, command } = launcherIdentity(stored.spec!.containers[index]!);
  const signature = commandSignature(command);
  const token = launcherToken(kube, stored, audiences);
  return {
    name,
    uid,
    signature,
    token,
    body: JSON.stringify({ resources: "pods", name, uid, signature }),
  };
}

/**
 * A pod whose one container (`app`, command `/app/server`) reads `DB_PASSWORD` of the AWS secret
 * `secretName` through the webhook at `address`, as service account `serviceAccount`: the caller
 * of the `/secret` benchmarks, the memory guard and the `/secret` end-to-end tests.
 */
export function secretReaderPod(address: string, secretName: string, serviceAccount = "app"): Pod {
  return {
    metadata: {
      annotations: {
        "piggysec.com/piggy-address": address,
        "piggysec.com/aws-secret-name": secretName,
      },
    },
    spec: {
      serviceAccountName: serviceAccount,
      containers: [{
        name: "app",
        image: "app:1",
        command: ["/app/server"],
        env: [{ name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" }],
      }],
    },
  };
}

/** Parses the pod's `piggysec.com/piggy-uid` annotation. */
export function uidAnnotation(pod: Pod): Record<string, string> {
  return JSON.parse(pod.metadata?.annotations?.[PIGGY_UID_ANNOTATION] ?? "{}");
}

/** A realistic 3-container pod (~5 KB) whose mutation answer is larger than 4 KB. */
export function threeContainerReview(uid: string) {
  const container = (name: string) => ({
    name,
    image: `registry.example.com/team/${name}:1.2.3`,
    command: ["/app/bin/server", "--config", "/etc/app/config.yaml"],
    args: ["--port", "8080", "--log-level", "info"],
    env: [
      { name: "DB_PASSWORD", value: "piggy:DB_PASSWORD" },
      { name: "API_KEY", value: "piggy:API_KEY" },
      { name: "LOG_FORMAT", value: "json" },
      ...Array.from({ length: 8 }, (_, i) => ({ name: `FEATURE_${i}`, value: `enabled-${i}` })),
    ],
    ports: [{ containerPort: 8080, name: "http" }],
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } },
    readinessProbe: { httpGet: { path: "/ready", port: 8080 }, periodSeconds: 5 },
    volumeMounts: [{ name: "config", mountPath: "/etc/app" }],
  });
  return admissionReview(
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        generateName: "web-7c9f-",
        labels: { app: "web", "app.kubernetes.io/name": "web" },
        annotations: { "piggysec.com/aws-secret-name": "team-a/web" },
      },
      spec: {
        serviceAccountName: "web",
        containers: [container("web"), container("worker"), container("metrics")],
        volumes: [{ name: "config", configMap: { name: "web-config" } }],
      },
    },
    "team-a",
    uid,
  );
}
