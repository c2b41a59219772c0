/**
 * Where HTTP/1.1 requests start and end in a byte stream, without buffering bodies: the TLS front
 * (`tls_front.ts`) feeds it every byte a client sends so that it knows when a request's headers
 * are complete (header deadline), when a request is complete (the connection waits for its
 * answer) and when nothing of the next request has arrived yet (idle deadline). The bytes
 * themselves go on to the HTTP server unchanged; this only reads them.
 *
 * Framing follows RFC 9112: `Transfer-Encoding` ending in `chunked` wins over `Content-Length`;
 * any other transfer coding, a malformed or conflicting `Content-Length`, an HTTP/2 preface, an
 * over-long header block or chunk line are errors (the front answers 400 or 431 and closes).
 *
 * @module
 */

/** Where the framer is between two `push` calls. */
export type FramingPhase =
  /** No byte of the next request yet. */
  | "between"
  /** Part of a request line or header block. */
  | "headers"
  /** Headers complete, body bytes still expected. */
  | "body";

/** A request the front refuses: the status to answer and why. */
export interface FramingError {
  status: 400 | 431;
  message: string;
}

/** What one `push` saw. */
export interface FramingResult {
  /** Requests whose last byte was in this chunk. */
  completed: number;
  /** Set when the stream is not HTTP/1.1 the front accepts; the connection must be closed. */
  error?: FramingError;
}

/** Options of {@link RequestFraming}. */
export interface RequestFramingOptions {
  /** Largest request line + header block, in bytes. @default 65536 */
  maxHeaderBytes?: number;
}

const LF = 0x0a;
const CR = 0x0d;
const LATIN1 = new TextDecoder("latin1");
/** Longest chunk-size line (size, extensions) or trailer line. */
const MAX_CHUNK_LINE = 4096;

type State =
  | { kind: "head" }
  | { kind: "length"; remaining: number }
  | { kind: "chunk-size" }
  | { kind: "chunk-data"; remaining: number }
  | { kind: "chunk-crlf"; remaining: number }
  | { kind: "trailers" };

/** Tracks request boundaries of one HTTP/1.1 connection (client to server direction). */
export class RequestFraming {
  #maxHeaderBytes: number;
  #state: State = { kind: "head" };
  /** Bytes of the current line, until its end is seen. */
  #pieces: Uint8Array[] = [];
  #lineBytes = 0;
  #headLines: string[] = [];
  #headBytes = 0;
  #failed: FramingError | undefined;

  constructor(options: RequestFramingOptions = {}) {
    this.#maxHeaderBytes = options.maxHeaderBytes ?? 65_536;
  }

  /** Where the stream stands now. */
  get phase(): FramingPhase {
    const state = this.#state;
    if (state.kind !== "head") return "body";
    return this.#headBytes === 0 ? "between" : "headers";
  }

  /** Reads the next bytes of the stream. */
  push(chunk: Uint8Array): FramingResult {
    if (this.#failed) return { completed: 0, error: this.#failed };
    let completed = 0;
    let i = 0;
    while (i < chunk.length) {
      const state = this.#state;
      if (state.kind === "length") {
        const take = Math.min(state.remaining, chunk.length - i);
        i += take;
        state.remaining -= take;
        if (state.remaining === 0) {
          this.#state = { kind: "head" };
          completed++;
        }
        continue;
      }
      if (state.kind === "chunk-data" || state.kind === "chunk-crlf") {
        const take = Math.min(state.remaining, chunk.length - i);
        if (state.kind === "chunk-crlf") {
          // The two bytes after a chunk's data must be CRLF.
          for (let k = 0; k < take; k++) {
            const expected = state.remaining - k === 2 ? CR : LF;
            if (chunk[i + k] !== expected) return this.#fail(400, "Malformed chunked body");
          }
        }
        i += take;
        state.remaining -= take;
        if (state.remaining === 0) {
          this.#state = state.kind === "chunk-data"
            ? { kind: "chunk-crlf", remaining: 2 }
            : { kind: "chunk-size" };
        }
        continue;
      }
      // Line-oriented states: head, chunk-size, trailers.
      const end = chunk.indexOf(LF, i);
      const stop = end === -1 ? chunk.length : end;
      if (state.kind === "head") {
        this.#headBytes += stop - i + (end === -1 ? 0 : 1);
        if (this.#headBytes > this.#maxHeaderBytes) {
          return this.#fail(
            431,
            `Request headers exceed PIGGY_MAX_HEADER_BYTES (${this.#maxHeaderBytes} bytes)`,
          );
        }
      } else if (this.#lineBytes + stop - i > MAX_CHUNK_LINE) {
        return this.#fail(400, "Chunk line too long");
      }
      if (stop > i) {
        // Copied: the caller may reuse its buffer.
        this.#pieces.push(chunk.slice(i, stop));
        this.#lineBytes += stop - i;
      }
      i = stop + 1;
      if (end === -1) continue;
      const line = this.#takeLine();
      const outcome = state.kind === "head"
        ? this.#headLine(line)
        : state.kind === "chunk-size"
        ? this.#chunkSizeLine(line)
        : this.#trailerLine(line);
      if (outcome === "error") return { completed, error: this.#failed! };
      if (outcome === "complete") completed++;
    }
    return { completed };
  }

  #takeLine(): string {
    const pieces = this.#pieces;
    this.#pieces = [];
    this.#lineBytes = 0;
    // Latin-1: header field values are octets; only framing fields are interpreted.
    const text = pieces.length === 1
      ? LATIN1.decode(pieces[0])
      : pieces.map((piece) => LATIN1.decode(piece)).join("");
    return text.endsWith("\r") ? text.slice(0, -1) : text;
  }

  #fail(status: FramingError["status"], message: string): FramingResult {
    this.#failed = { status, message };
    return { completed: 0, error: this.#failed };
  }

  #headLine(line: string): "more" | "complete" | "error" {
    if (line === "") {
      // Empty lines before a request line are ignored (RFC 9112 section 2.2).
      if (this.#headLines.length === 0) {
        this.#headBytes = 0;
        return "more";
      }
      return this.#endOfHead();
    }
    this.#headLines.push(line);
    return "more";
  }

  #endOfHead(): "more" | "complete" | "error" {
    const [requestLine = "", ...fields] = this.#headLines;
    this.#headLines = [];
    this.#headBytes = 0;
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ \S+ HTTP\/1\.[01]$/.test(requestLine)) {
      this.#fail(400, "Malformed request line");
      return "error";
    }
    let lengths: string[] = [];
    let codings: string[] = [];
    for (const field of fields) {
      const colon = field.indexOf(":");
      if (colon <= 0 || /[\s]/.test(field.slice(0, colon))) {
        this.#fail(400, "Malformed header field");
        return "error";
      }
      const name = field.slice(0, colon).toLowerCase();
      const value = field.slice(colon + 1).trim();
      if (name === "content-length") lengths = lengths.concat(value.split(","));
      if (name === "transfer-encoding") codings = codings.concat(value.split(","));
    }
    codings = codings.map((coding) => coding.trim().toLowerCase()).filter(Boolean);
    if (codings.length > 0) {
      if (codings[codings.length - 1] !== "chunked") {
        this.#fail(400, "Transfer-Encoding must end with chunked");
        return "error";
      }
      this.#state = { kind: "chunk-size" };
      return "more";
    }
    const distinct = new Set(lengths.map((length) => length.trim()));
    if (distinct.size > 1 || [...distinct].some((length) => !/^\d{1,15}$/.test(length))) {
      this.#fail(400, "Malformed Content-Length");
      return "error";
    }
    const length = distinct.size === 0 ? 0 : Number([...distinct][0]);
    if (length === 0) return "complete";
    this.#state = { kind: "length", remaining: length };
    return "more";
  }

  #chunkSizeLine(line: string): "more" | "error" {
    const match = /^([0-9A-Fa-f]{1,12})[ \t]*(;.*)?$/.exec(line);
    if (!match) {
      this.#fail(400, "Malformed chunk size");
      return "error";
    }
    const size = parseInt(match[1]!, 16);
    this.#state = size === 0 ? { kind: "trailers" } : { kind: "chunk-data", remaining: size };
    return "more";
  }

  #trailerLine(line: string): "more" | "complete" {
    if (line !== "") return "more";
    this.#state = { kind: "head" };
    return "complete";
  }
}
