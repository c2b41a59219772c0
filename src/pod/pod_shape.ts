/**
 * The shape of the Pod fields Piggy reads or writes, checked on the decoded object before any
 * other work: an AdmissionReview that decodes fine can still carry a string where the Pod schema
 * has an array. The API server never sends such a pod (it decodes into typed objects first), so
 * only a direct caller does; it gets a 422 naming the field instead of a 500 from deep inside the
 * mutation. JSON `null` counts as absent, as the API server's decoder treats it. Fields Piggy
 * never touches are not checked.
 *
 * @module
 */

import { InvalidObjectError } from "../errors.ts";

/** What a field must be: a scalar type, an object of known fields or values, or an array. */
type Shape =
  | "string"
  | "number"
  | "object"
  | "quantity"
  | { readonly fields: Readonly<Record<string, Shape>> }
  | { readonly values: Shape }
  | { readonly items: Shape };

const NAME_REF: Shape = { fields: { name: "string", key: "string" } };

const CONTAINER: Shape = {
  fields: {
    name: "string",
    image: "string",
    command: { items: "string" },
    args: { items: "string" },
    env: {
      items: {
        fields: {
          name: "string",
          value: "string",
          valueFrom: {
            fields: {
              configMapKeyRef: NAME_REF,
              secretKeyRef: NAME_REF,
              fieldRef: "object",
              resourceFieldRef: "object",
            },
          },
        },
      },
    },
    envFrom: {
      items: {
        fields: {
          prefix: "string",
          configMapRef: { fields: { name: "string" } },
          secretRef: { fields: { name: "string" } },
        },
      },
    },
    volumeMounts: { items: { fields: { name: "string", mountPath: "string" } } },
    resources: { fields: { limits: { values: "quantity" }, requests: { values: "quantity" } } },
    securityContext: "object",
  },
};

const POD: Shape = {
  fields: {
    metadata: {
      fields: {
        name: "string",
        generateName: "string",
        namespace: "string",
        uid: "string",
        annotations: { values: "string" },
        ownerReferences: { items: { fields: { kind: "string", name: "string" } } },
      },
    },
    spec: {
      fields: {
        containers: { items: CONTAINER },
        initContainers: { items: CONTAINER },
        ephemeralContainers: { items: CONTAINER },
        volumes: { items: { fields: { name: "string" } } },
        serviceAccountName: "string",
        securityContext: { fields: { runAsUser: "number" } },
        os: { fields: { name: "string" } },
      },
    },
  },
};

function kindOf(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A key as a path shows it: `.name` for plain names, `["…"]` (cut at 64 characters) otherwise. */
function keyPath(key: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) && key.length <= 64) return `.${key}`;
  const shown = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  return `[${JSON.stringify(shown)}]`;
}

/** A compiled {@link Shape}: true when the value fits (absent and `null` fit every shape). */
type Check = (value: unknown) => boolean;

/**
 * The check of `shape`: true when every field fits it, {@link firstMismatch} without building a
 * path for each field (the common case; the path is only built to name a field that does not
 * fit). Made once per shape at module load, as closures: walking the shape table per field (its
 * `in` tests and keyed reads) cost about half the time of the check.
 */
function compile(shape: Shape): Check {
  if (shape === "string") return (value) => value == null || typeof value === "string";
  if (shape === "number") return (value) => value == null || typeof value === "number";
  if (shape === "quantity") {
    return (value) => value == null || typeof value === "string" || typeof value === "number";
  }
  if (shape === "object") return (value) => value == null || isPlainObject(value);
  if ("items" in shape) {
    const item = compile(shape.items);
    return (value) => {
      if (value == null) return true;
      if (!Array.isArray(value)) return false;
      for (let index = 0; index < value.length; index++) if (!item(value[index])) return false;
      return true;
    };
  }
  if ("values" in shape) {
    const each = compile(shape.values);
    return (value) => {
      if (value == null) return true;
      if (!isPlainObject(value)) return false;
      for (const key in value) if (Object.hasOwn(value, key) && !each(value[key])) return false;
      return true;
    };
  }
  const keys = Object.keys(shape.fields);
  const checks = keys.map((key) => compile(shape.fields[key]!));
  return (value) => {
    if (value == null) return true;
    if (!isPlainObject(value)) return false;
    for (let index = 0; index < keys.length; index++) {
      if (!checks[index]!(value[keys[index]!])) return false;
    }
    return true;
  };
}

const fitsPod = compile(POD);

/** The first field that does not fit `shape`, as `path is X, expecting Y`; undefined when all fit. */
function firstMismatch(value: unknown, shape: Shape, path: string): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (shape === "string") {
    return typeof value === "string"
      ? undefined
      : `${path} is ${kindOf(value)}, expecting a string`;
  }
  if (shape === "number") {
    return typeof value === "number"
      ? undefined
      : `${path} is ${kindOf(value)}, expecting a number`;
  }
  if (shape === "quantity") {
    return typeof value === "string" || typeof value === "number"
      ? undefined
      : `${path} is ${kindOf(value)}, expecting a quantity (string or number)`;
  }
  if (shape === "object") {
    return isPlainObject(value) ? undefined : `${path} is ${kindOf(value)}, expecting an object`;
  }
  if ("items" in shape) {
    if (!Array.isArray(value)) return `${path} is ${kindOf(value)}, expecting an array`;
    for (const [index, item] of value.entries()) {
      const found = firstMismatch(item, shape.items, `${path}[${index}]`);
      if (found) return found;
    }
    return undefined;
  }
  if (!isPlainObject(value)) return `${path} is ${kindOf(value)}, expecting an object`;
  if ("values" in shape) {
    for (const [key, item] of Object.entries(value)) {
      const found = firstMismatch(item, shape.values, `${path}${keyPath(key)}`);
      if (found) return found;
    }
    return undefined;
  }
  for (const [key, fieldShape] of Object.entries(shape.fields)) {
    const found = firstMismatch(value[key], fieldShape, `${path}${path ? "." : ""}${key}`);
    if (found) return found;
  }
  return undefined;
}

/**
 * Checks the types of the Pod fields Piggy reads or writes.
 *
 * @param pod the decoded `request.object` (already known to be an object)
 * @throws {InvalidObjectError} naming the first field of the wrong type (HTTP 422)
 */
export function checkPodShape(pod: Readonly<Record<string, unknown>>): void {
  if (fitsPod(pod)) return;
  const found = firstMismatch(pod, POD, "");
  if (found) throw new InvalidObjectError(`Cannot admit the pod: ${found}`);
}
