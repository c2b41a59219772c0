/**
 * AdmissionReview `admission.k8s.io/v1`: the parts Piggy reads and writes. The types-only
 * `kubernetes-types` package has no `admission` group, so these follow `k8s.io/api/admission/v1`.
 *
 * @module
 */

/** `apiVersion` of every review Piggy reads and writes. */
export const ADMISSION_API_VERSION = "admission.k8s.io/v1";

/** `kind` of every review. */
export const ADMISSION_KIND = "AdmissionReview";

/** Group/version/kind of the object under review. */
export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

/** Group/version/resource of the object under review. */
export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

/** The request half of a review, as received (fields beyond these are ignored). */
export interface AdmissionRequest {
  /** Echoed verbatim in the response. */
  uid: string;
  kind?: GroupVersionKind;
  resource?: GroupVersionResource;
  subResource?: string;
  /** Empty on CREATE with `generateName`. */
  name?: string;
  /** The authoritative namespace. */
  namespace?: string;
  /** CREATE, UPDATE, DELETE or CONNECT. */
  operation?: string;
  userInfo?: { username?: string; uid?: string; groups?: string[] };
  /** The raw object: never rebuilt from a typed model, so unknown fields survive. */
  object?: unknown;
  oldObject?: unknown;
  /** Nothing is persisted when true. */
  dryRun?: boolean;
}

/** `status` of a denial (a `metav1.Status` subset). */
export interface AdmissionStatus {
  code: number;
  message: string;
  reason?: string;
}

/** The response half of a review. */
export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  /** Base64 of the JSON Patch array; always together with `patchType`. */
  patch?: string;
  patchType?: "JSONPatch";
  status?: AdmissionStatus;
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

/** A review as received: `apiVersion`/`kind` may be missing (Go Piggy never required them). */
export interface AdmissionReviewRequest {
  apiVersion?: string;
  kind?: string;
  request: AdmissionRequest;
}

/** A review as answered: `apiVersion` and `kind` always set. */
export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: typeof ADMISSION_KIND;
  response: AdmissionResponse;
}
