/**
 * A minimal V8 inspector (Chrome DevTools Protocol) client for measuring another process's heap:
 * start that process with `--inspect=127.0.0.1:0`, pass the `ws://` URL it prints to
 * {@link connectInspector}, then {@link HeapProbe.heapAfterGc} forces a full garbage collection
 * there and reads the heap. Nothing in the measured process changes: no endpoint, no signal
 * handler, no `--expose-gc`.
 *
 * @module
 */

/** V8 heap figures of the inspected process, in bytes. */
export interface HeapUsage {
  /** Live objects on the JavaScript heap. */
  usedBytes: number;
  /** Heap committed by V8 (all spaces). */
  totalBytes: number;
}

/** An open inspector session. */
export interface HeapProbe {
  /** Forces a full (mark-compact) collection, then reads the heap. */
  heapAfterGc(): Promise<HeapUsage>;
  /** Reads the heap without collecting. */
  heap(): Promise<HeapUsage>;
  close(): void;
}

/** The inspector URL in a `deno … --inspect` stderr line, if the line carries it. */
export function inspectorUrlOf(line: string): string | undefined {
  return /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(line)?.[1];
}

/** Opens a session on `url` (`ws://127.0.0.1:…`, loopback only). */
export async function connectInspector(url: string): Promise<HeapProbe> {
  if (!/^ws:\/\/127\.0\.0\.1:\d+\//.test(url)) {
    throw new Error(`inspector URL must be ws://127.0.0.1:…, got ${url}`);
  }
  const socket = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error(`cannot connect to the inspector at ${url}`));
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data)) as {
      id?: number;
      result?: unknown;
      error?: { message?: string };
    };
    if (message.id === undefined) return; // an event
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (!waiter) return;
    if (message.error) waiter.reject(new Error(`inspector: ${message.error.message ?? "error"}`));
    else waiter.resolve(message.result);
  };
  socket.onclose = () => {
    for (const waiter of pending.values()) waiter.reject(new Error("inspector closed"));
    pending.clear();
  };
  const call = (method: string): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      socket.send(JSON.stringify({ id, method }));
    });
  const heap = async (): Promise<HeapUsage> => {
    const result = await call("Runtime.getHeapUsage") as { usedSize: number; totalSize: number };
    return { usedBytes: result.usedSize, totalBytes: result.totalSize };
  };
  return {
    heap,
    heapAfterGc: async () => {
      await call("HeapProfiler.collectGarbage");
      return await heap();
    },
    close: () => socket.close(),
  };
}
