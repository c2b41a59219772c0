/**
 * One HTTP/1.1 exchange over an open byte stream (TCP or TLS): writes a request with
 * `Connection: close` and reads one answer (`Content-Length`, chunked, or up to the end of the
 * stream), with a limit on the head and on the body. What piggy-env's calls need (the proxy call,
 * and the light AWS client's calls in standalone mode) and no more: no keep-alive, no redirects,
 * no content coding. A request through a proxy (src/runtime/http_proxy.ts) is written here too:
 * in absolute form for an `http:` URL, or inside the tunnel for an `https:` one.
 *
 * @module
 */

/** The byte stream: the parts of `Deno.Conn` used here. */
export interface ByteStream {
  /** Reads into `buffer`; `null` at the end of the stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes some of `data`; resolves with how many bytes were written. */
  write(data: Uint8Array): Promise<number>;
}

/** Largest answer head (status line and headers, each 1xx head included) read. */
export const MAX_HEAD_BYTES = 64 * 1024;

/** Longest chunk-size line of a chunked body. */
const MAX_CHUNK_LINE = 1024;

/** The answer is not HTTP/1.x as this client reads it. */
export class HttpFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HttpFormatError";
  }
}

/** The stream ended before the first byte of an answer (as a reset does for Node's client). */
export class NoAnswerError extends Error {
  constructor() {
    super("connection closed before an answer");
    this.name = "NoAnswerError";
  }
}

/** The body is longer than the limit. */
export class BodyTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`larger than ${maxBytes} bytes`);
    this.name = "BodyTooLargeError";
  }
}

/**
 * The bytes of a body, appended into one buffer that is doubled as it fills (up to the limit): a
 * body that comes in many small pieces (1-byte chunks, a byte per read) costs no object per piece.
 * A list of the pieces took ~200 bytes of heap per byte of such a body (~230 MB and seconds of
 * garbage collection for 1 MiB in 1-byte chunks).
 */
export class BodyBuffer {
  #bytes = new Uint8Array(0);
  #size = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes appended so far. */
  get size(): number {
    return this.#size;
  }

  /**
   * Appends a copy of `bytes`.
   *
   * @throws {BodyTooLargeError} when the body would be over `maxBytes` (nothing is appended)
   */
  append(bytes: Uint8Array): void {
    const end = this.#size + bytes.byteLength;
    if (end > this.maxBytes) throw new BodyTooLargeError(this.maxBytes);
    if (end > this.#bytes.byteLength) {
      const capacity = Math.min(this.maxBytes, Math.max(end, 2 * this.#bytes.byteLength, 4096));
      const larger = new Uint8Array(capacity);
      larger.set(this.#bytes.subarray(0, this.#size));
      this.#bytes = larger;
    }
    this.#bytes.set(bytes, this.#size);
    this.#size = end;
  }

  /** The bytes appended (a copy when the buffer has room left). */
  bytes(): Uint8Array {
    return this.#size === this.#bytes.byteLength ? this.#bytes : this.#bytes.slice(0, this.#size);
  }
}

/** The stream ended or failed after the head, before the end of the body. */
export class BodyReadError extends Error {
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = "BodyReadError";
  }
}

/** One request. */
export interface Http1Request {
  /** `GET` sends no body and no `Content-Length`. @default "POST" */
  method?: "GET" | "POST";
  /** Request target: an absolute path (`/secret`), or an `http:` URL (to a proxy). */
  target: string;
  /** `Host` header value. */
  host: string;
  /** More headers (`Host`, `Content-Length` and `Connection` are set here). */
  headers: Record<string, string>;
  /** Body bytes (empty for `GET`). */
  body: Uint8Array;
}

/** Status, header fields and body of an answer. */
export interface Http1Answer {
  status: number;
  /** Lower-case names; repeated fields joined with `, `. */
  fields: Map<string, string>;
  body: Uint8Array;
}

/** A header field name: an RFC 9110 token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A field value sent here: printable ASCII, space and tab (no CR, LF or NUL). */
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;

/** A control character other than tab in a received field value (a bare CR, a NUL, …). */
// deno-lint-ignore no-control-regex
const FIELD_CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** Longest part of a received value quoted in an error: the server chose that text. */
const MAX_QUOTED = 64;

/** `text` quoted for an error message, cut to {@link MAX_QUOTED} characters. */
function quoted(text: string): string {
  return JSON.stringify(text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}…` : text);
}

const encoder = new TextEncoder();

/**
 * The request's bytes.
 *
 * @throws {TypeError} for a header name that is not a token, a value that is not printable ASCII
 *   (a CR or LF could inject a header), a target that is neither an absolute path nor an `http:`
 *   URL, or a `GET` with a body
 */
export function encodeRequest(request: Http1Request): Uint8Array {
  const method = request.method ?? "POST";
  if (method === "GET" && request.body.byteLength > 0) {
    throw new TypeError("Cannot send a GET request with a body");
  }
  const fields: Array<[string, string]> = [
    ["Host", request.host],
    ...Object.entries(request.headers),
  ];
  if (method !== "GET") fields.push(["Content-Length", String(request.body.byteLength)]);
  fields.push(["Connection", "close"]);
  if (!/^(?:\/|http:\/\/[\x21-\x2e\x30-\x7e])[\x21-\x7e]*$/.test(request.target)) {
    throw new TypeError("Cannot send the request target: not an absolute path");
  }
  let head = `${method} ${request.target} HTTP/1.1\r\n`;
  for (const [name, value] of fields) {
    if (!TOKEN.test(name)) throw new TypeError(`Cannot send the header name "${name}"`);
    if (!FIELD_VALUE.test(value)) {
      throw new TypeError(`Cannot send the value of header "${name}": not printable ASCII`);
    }
    head += `${name}: ${value}\r\n`;
  }
  const headBytes = encoder.encode(`${head}\r\n`);
  const bytes = new Uint8Array(headBytes.byteLength + request.body.byteLength);
  bytes.set(headBytes);
  bytes.set(request.body, headBytes.byteLength);
  return bytes;
}

/** Writes all of `data`. */
async function writeAll(stream: ByteStream, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.byteLength) offset += await stream.write(data.subarray(offset));
}

/** Buffered reads over a {@link ByteStream}. */
class Reader {
  #buffer = new Uint8Array(16 * 1024);
  #start = 0;
  #end = 0;
  #done = false;

  constructor(readonly stream: ByteStream) {}

  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Reads more bytes into the buffer; false at the end of the stream. */
  async fill(): Promise<boolean> {
    if (this.#done) return false;
    if (this.#start > 0) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buffer.byteLength) {
      const larger = new Uint8Array(this.#buffer.byteLength * 2);
      larger.set(this.#buffer.subarray(0, this.#end));
      this.#buffer = larger;
    }
    const count = await this.stream.read(this.#buffer.subarray(this.#end));
    if (count === null) {
      this.#done = true;
      return false;
    }
    this.#end += count;
    return true;
  }

  /** Index of `\r\n` from `from` within the buffered bytes, or -1. */
  indexOfCrlf(from = 0): number {
    for (let i = this.#start + from; i + 1 < this.#end; i++) {
      if (this.#buffer[i] === 13 && this.#buffer[i + 1] === 10) return i - this.#start;
    }
    return -1;
  }

  /**
   * Takes `count` buffered bytes: a view into the buffer, no copy, valid until the next
   * {@link fill} (callers copy what they keep at once).
   */
  take(count: number): Uint8Array {
    const bytes = this.#buffer.subarray(this.#start, this.#start + count);
    this.#start += count;
    return bytes;
  }

  /** Reads a line ending in CRLF (without it), at most `max` bytes; `null` at the end of the stream. */
  async line(max: number): Promise<string | null> {
    // The search goes on where it stopped: a line arriving a byte per read would otherwise be
    // searched from its start each time (quadratic in the line's length).
    let from = 0;
    for (;;) {
      const at = this.indexOfCrlf(from);
      if (at >= 0) {
        const bytes = this.take(at + 2);
        return latin1(bytes.subarray(0, at));
      }
      if (this.buffered > max) throw new HttpFormatError(`a line is longer than ${max} bytes`);
      from = Math.max(0, this.buffered - 1);
      if (!(await this.fill())) return null;
    }
  }
}

function latin1(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}

/** A parsed answer head. */
interface Head {
  status: number;
  /** Lower-case names; repeated fields joined with `, `. */
  fields: Map<string, string>;
}

/** Reads one head (status line and fields) within `budget` bytes. */
async function readHead(reader: Reader, budget: { left: number }): Promise<Head> {
  const first = budget.left === MAX_HEAD_BYTES;
  const next = async () => {
    const line = await reader.line(budget.left);
    if (line === null) {
      if (first && reader.buffered === 0) throw new NoAnswerError();
      throw new HttpFormatError("the connection closed inside the answer head");
    }
    budget.left -= line.length + 2;
    if (budget.left < 0) {
      throw new HttpFormatError(`the answer head is over ${MAX_HEAD_BYTES} bytes`);
    }
    return line;
  };
  const statusLine = await next();
  const match = /^HTTP\/1\.[01] ([1-9][0-9]{2})(?: [^\r\n]*)?$/.exec(statusLine);
  if (!match) throw new HttpFormatError("the answer is not HTTP/1.x");
  const fields = new Map<string, string>();
  for (;;) {
    const line = await next();
    if (line === "") break;
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    if (colon <= 0 || !TOKEN.test(name)) throw new HttpFormatError("the answer has a bad header");
    const value = line.slice(colon + 1).trim();
    if (FIELD_CONTROL.test(value)) {
      throw new HttpFormatError(`the answer's header ${quoted(name)} holds a control character`);
    }
    const previous = fields.get(name);
    fields.set(name, previous === undefined ? value : `${previous}, ${value}`);
  }
  return { status: Number(match[1]), fields };
}

/** Reads the body as the head says, at most `maxBytes`. */
async function readBody(reader: Reader, head: Head, maxBytes: number): Promise<Uint8Array> {
  const body = new BodyBuffer(maxBytes);
  const keep = (bytes: Uint8Array) => body.append(bytes);
  /** Takes exactly `count` bytes. */
  const exactly = async (count: number) => {
    while (count > 0) {
      if (reader.buffered === 0 && !(await reader.fill())) {
        throw new BodyReadError("connection closed before the end of the answer");
      }
      const bytes = reader.take(Math.min(count, reader.buffered));
      count -= bytes.byteLength;
      keep(bytes);
    }
  };
  const encoding = head.fields.get("transfer-encoding");
  const length = head.fields.get("content-length");
  if (head.status === 204 || head.status === 304) {
    // no body
  } else if (encoding !== undefined) {
    if (length !== undefined) {
      // Two framings that may disagree: refused, as Node's parser does.
      throw new HttpFormatError("the answer has both Transfer-Encoding and Content-Length");
    }
    if (encoding.toLowerCase() !== "chunked") {
      throw new HttpFormatError(
        `the answer's transfer coding ${quoted(encoding)} is not supported`,
      );
    }
    for (;;) {
      const line = await reader.line(MAX_CHUNK_LINE);
      if (line === null) throw new BodyReadError("connection closed inside a chunked answer");
      const sizeText = line.split(";")[0]!.trim();
      if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) throw new HttpFormatError("bad chunk size");
      const chunkSize = parseInt(sizeText, 16);
      if (body.size + chunkSize > maxBytes) throw new BodyTooLargeError(maxBytes);
      if (chunkSize === 0) break;
      await exactly(chunkSize);
      if ((await reader.line(2)) !== "") throw new HttpFormatError("bad chunk end");
    }
    // Trailer fields are read and dropped; the connection closes after the answer anyway. The
    // section ends with an empty line: a stream that ends before it is a cut answer.
    for (let left = MAX_HEAD_BYTES;;) {
      const line = await reader.line(left);
      if (line === null) throw new BodyReadError("connection closed inside the answer's trailers");
      if (line === "") break;
      left -= line.length + 2;
      if (left < 0) {
        throw new HttpFormatError(`the answer's trailers are over ${MAX_HEAD_BYTES} bytes`);
      }
    }
  } else if (length !== undefined) {
    if (!/^[0-9]{1,15}$/.test(length)) {
      throw new HttpFormatError(`the answer's Content-Length ${quoted(length)} is not a number`);
    }
    const count = Number(length);
    if (count > maxBytes) throw new BodyTooLargeError(maxBytes);
    await exactly(count);
  } else {
    // Up to the end of the stream (the request said Connection: close).
    for (;;) {
      if (reader.buffered > 0) keep(reader.take(reader.buffered));
      if (!(await reader.fill())) break;
    }
  }
  return body.bytes();
}

/**
 * Sends a request (from {@link encodeRequest}) and reads the answer (1xx interim answers are
 * skipped).
 *
 * @param maxBytes largest body read
 * @throws {NoAnswerError} the stream ended before any answer
 * @throws {HttpFormatError} the answer's head is malformed or too large, or its framing unknown
 * @throws {BodyTooLargeError} the body is over `maxBytes`
 * @throws {BodyReadError} the stream ended or failed inside the body
 * @throws the stream's own error when writing or reading the head fails
 */
export async function exchange(
  stream: ByteStream,
  request: Uint8Array,
  maxBytes: number,
): Promise<Http1Answer> {
  await writeAll(stream, request);
  const reader = new Reader(stream);
  const budget = { left: MAX_HEAD_BYTES };
  let head = await readHead(reader, budget);
  while (head.status >= 100 && head.status < 200) {
    if (head.status === 101) throw new HttpFormatError("the server switched protocols");
    head = await readHead(reader, budget);
  }
  try {
    const body = await readBody(reader, head, maxBytes);
    return { status: head.status, fields: head.fields, body };
  } catch (error) {
    if (
      error instanceof HttpFormatError || error instanceof BodyTooLargeError ||
      error instanceof BodyReadError
    ) throw error;
    throw new BodyReadError("the answer's body could not be read", { cause: error });
  }
}
