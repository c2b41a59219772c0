/**
 * AWS Signature Version 4 over Web Crypto (HMAC-SHA256, SHA-256), for the light AWS client: no
 * AWS SDK, no `node:crypto`. The derived signing key is cached per credentials, date, region and
 * service (it changes once a day), so a call costs two SHA-256 digests and one HMAC.
 *
 * Signs what the SDK's signer (`@smithy/signature-v4`, as the SDK clients configure it) signs for
 * the same request: every header given (names lower-cased, values trimmed with inner runs of
 * spaces collapsed), `host` from the URL, `x-amz-content-sha256` (the body's hash, sent too),
 * `x-amz-date`, and `x-amz-security-token` when the credentials have a session token; the path is
 * normalised and URI-encoded again (non-S3 rule), the query sorted.
 *
 * @module
 */

/** Credentials that sign requests. */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
  /** When temporary credentials expire. */
  readonly expiration?: Date | undefined;
}

/** A request to sign. */
export interface SignableRequest {
  method: string;
  url: URL;
  /** Headers to send and sign (any case); `host`, `x-amz-date` and the token are added. */
  headers: Record<string, string>;
  body: string;
}

/** What a request is signed for. */
export interface SigningScope {
  /** Signing name, e.g. `secretsmanager`, `ssm`, `sts`. */
  service: string;
  region: string;
  credentials: AwsCredentials;
  /** Signing time. @default now */
  date?: Date;
}

const encoder = new TextEncoder();

/** A Web Crypto HMAC key (named so: `CryptoKey` is no global type in the Node build's libs). */
type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

/** Signing keys by credentials, then `date/region/service`. */
const signingKeys = new WeakMap<AwsCredentials, Map<string, Promise<HmacKey>>>();

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Hex SHA-256 of UTF-8 text. */
export async function sha256Hex(text: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

function hmacKey(raw: Uint8Array<ArrayBuffer> | ArrayBuffer): Promise<HmacKey> {
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

async function hmac(key: HmacKey, text: string): Promise<ArrayBuffer> {
  return await crypto.subtle.sign("HMAC", key, encoder.encode(text));
}

async function deriveSigningKey(
  secretAccessKey: string,
  date: string,
  region: string,
  service: string,
): Promise<HmacKey> {
  let key = await hmacKey(encoder.encode(`AWS4${secretAccessKey}`));
  for (const part of [date, region, service, "aws4_request"]) {
    key = await hmacKey(await hmac(key, part));
  }
  return key;
}

function signingKey(
  credentials: AwsCredentials,
  date: string,
  region: string,
  service: string,
): Promise<HmacKey> {
  let keys = signingKeys.get(credentials);
  if (!keys) {
    keys = new Map();
    signingKeys.set(credentials, keys);
  }
  const scope = `${date}/${region}/${service}`;
  let key = keys.get(scope);
  if (!key) {
    // One key a day: older scopes are dropped.
    keys.clear();
    key = deriveSigningKey(credentials.secretAccessKey, date, region, service);
    key.catch(() => keys.delete(scope));
    keys.set(scope, key);
  }
  return key;
}

/** RFC 3986 encoding as SigV4 wants it (`encodeURIComponent` plus `!'()*`). */
function escapeUri(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The canonical path: `.` and `..` segments resolved, each segment encoded again. */
function canonicalPath(pathname: string): string {
  const segments: string[] = [];
  for (const segment of pathname.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  const leading = pathname.startsWith("/") ? "/" : "";
  const trailing = segments.length > 0 && pathname.endsWith("/") ? "/" : "";
  return `${leading}${segments.map(escapeUri).join("/")}${trailing}`;
}

function canonicalQuery(url: URL): string {
  const pairs = [...url.searchParams.entries()].map(([name, value]) =>
    [escapeUri(name), escapeUri(value)] as const
  );
  pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return pairs.map(([name, value]) => `${name}=${value}`).join("&");
}

/** `YYYYMMDDTHHMMSSZ`. */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/**
 * Signs `request` and returns the headers to send: the request's own plus `x-amz-content-sha256`,
 * `x-amz-date`, `x-amz-security-token` (temporary credentials) and `authorization`. `host` is signed from the
 * URL and left for the HTTP client to send.
 */
export async function signRequest(
  request: SignableRequest,
  scope: SigningScope,
): Promise<Record<string, string>> {
  const time = amzDate(scope.date ?? new Date());
  const day = time.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    headers[name.toLowerCase()] = value;
  }
  const payloadHash = headers["x-amz-content-sha256"] ?? await sha256Hex(request.body);
  headers["x-amz-content-sha256"] = payloadHash;
  headers["x-amz-date"] = time;
  if (scope.credentials.sessionToken) {
    headers["x-amz-security-token"] = scope.credentials.sessionToken;
  }
  const signed: Record<string, string> = { ...headers, host: request.url.host };
  const names = Object.keys(signed).sort();
  const canonicalHeaders = names
    .map((name) => `${name}:${signed[name]!.trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const signedHeaders = names.join(";");
  const canonicalRequest = [
    request.method.toUpperCase(),
    canonicalPath(request.url.pathname),
    canonicalQuery(request.url),
    canonicalHeaders,
    signedHeaders,
    payloadHash,
  ].join("\n");
  const credentialScope = `${day}/${scope.region}/${scope.service}/aws4_request`;
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    time,
    credentialScope,
    await sha256Hex(canonicalRequest),
  ].join("\n");
  const key = await signingKey(scope.credentials, day, scope.region, scope.service);
  const signature = hex(await hmac(key, stringToSign));
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${scope.credentials.accessKeyId}/` +
    `${credentialScope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}
