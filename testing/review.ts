/**
 * AdmissionReview requests as the API server sends them. Free of runtime globals, so unit tests
 * that the npm build also runs under Node can use it.
 *
 * @module
 */

import type { Pod } from "kubernetes-types/core/v1.d.ts";

/** Options of {@link reviewOf}. */
export interface ReviewOptions {
  uid?: string;
  namespace?: string;
  operation?: string;
  dryRun?: boolean;
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
}

/** An AdmissionReview v1 request as the API server sends it for a pod CREATE. */
export function reviewOf(pod: unknown, options: ReviewOptions = {}): Record<string, unknown> {
  const metadata = (pod as Pod).metadata ?? {};
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: options.uid ?? "705ab4f5-6393-11e8-b7cc-42010a800002",
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: options.resource ?? { group: "", version: "v1", resource: "pods" },
      requestKind: { group: "", version: "v1", kind: "Pod" },
      requestResource: { group: "", version: "v1", resource: "pods" },
      ...(options.subResource ? { subResource: options.subResource } : {}),
      name: metadata.name ?? "",
      namespace: options.namespace ?? metadata.namespace ?? "default",
      operation: options.operation ?? "CREATE",
      userInfo: { username: "system:serviceaccount:kube-system:replicaset-controller" },
      object: pod,
      oldObject: null,
      dryRun: options.dryRun ?? false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
    },
  };
}
