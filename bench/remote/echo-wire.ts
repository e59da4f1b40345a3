/**
 * The grpc-js baselines of the remote-call scenario: a minimal echo service with a unary
 * method and a bidirectional stream, both moving raw bytes (pass-through serializers, no
 * protobuf), plus the batching both stream ends use.
 *
 * Batched stream: every message queued before the next turn of the event loop goes out in
 * as few writes as possible, up to MAX_MESSAGES_PER_FRAME per write, with backpressure on
 * `write() === false` — the scheme the runtime's BatchWriter uses, minus everything else the
 * runtime does (codec, envelopes, string tables, deadlines, mailboxes). So it is a fair upper
 * bound of what grpc-js carries between two processes. Frame layout (little-endian):
 * `u32 count`, then `count` × (`u32 id`, `u16 length`, `length` bytes).
 *
 * Loads nothing at import time (types only), so the pristine worker stays pristine.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';

export const MAX_MESSAGES_PER_FRAME = 1_000;
const HEADER_BYTES = 4;
const MESSAGE_HEADER_BYTES = 6;

const passThrough = (value: Buffer | Uint8Array): Buffer => (Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength));

export const echoService: ServiceDefinition = {
  unary: {
    path: '/nestjs_grains.bench.Echo/Unary',
    requestStream: false,
    responseStream: false,
    requestSerialize: passThrough,
    requestDeserialize: passThrough,
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
    originalName: 'Unary',
  },
  stream: {
    path: '/nestjs_grains.bench.Echo/Stream',
    requestStream: true,
    responseStream: true,
    requestSerialize: passThrough,
    requestDeserialize: passThrough,
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
    originalName: 'Stream',
  },
};

/** What a batch queue needs of a grpc-js duplex stream (either end). */
export interface FrameSink {
  write(chunk: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/**
 * Messages waiting to be written to one stream, coalesced per event-loop turn into frames of
 * up to MAX_MESSAGES_PER_FRAME, writing only while the stream accepts.
 */
export class BatchQueue {
  private ids: number[] = [];
  private payloads: Uint8Array[] = [];
  private scheduled = false;
  private blocked = false;
  private readonly flushNow = () => {
    this.scheduled = false;
    this.flush();
  };

  constructor(private readonly sink: FrameSink) {}

  get length(): number {
    return this.ids.length;
  }

  push(id: number, payload: Uint8Array): void {
    this.ids.push(id);
    this.payloads.push(payload);
    if (!this.scheduled && !this.blocked) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  }

  private flush(): void {
    const ids = this.ids;
    const payloads = this.payloads;
    this.ids = [];
    this.payloads = [];
    let from = 0;
    while (from < ids.length) {
      const to = Math.min(ids.length, from + MAX_MESSAGES_PER_FRAME);
      const ok = this.sink.write(encodeFrame(ids, payloads, from, to));
      from = to;
      if (!ok && from < ids.length) {
        // Keep the rest (ahead of anything queued meanwhile) until the stream drains.
        this.ids = ids.slice(from).concat(this.ids);
        this.payloads = payloads.slice(from).concat(this.payloads);
        this.block();
        return;
      }
      if (!ok) this.block();
    }
  }

  private block(): void {
    if (this.blocked) return;
    this.blocked = true;
    this.sink.once('drain', () => {
      this.blocked = false;
      if (this.ids.length > 0 && !this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flushNow);
      }
    });
  }
}

function encodeFrame(ids: readonly number[], payloads: readonly Uint8Array[], from: number, to: number): Buffer {
  let size = HEADER_BYTES;
  for (let i = from; i < to; i++) size += MESSAGE_HEADER_BYTES + payloads[i]!.byteLength;
  const frame = Buffer.allocUnsafe(size);
  frame.writeUInt32LE(to - from, 0);
  let at = HEADER_BYTES;
  for (let i = from; i < to; i++) {
    const payload = payloads[i]!;
    frame.writeUInt32LE(ids[i]!, at);
    frame.writeUInt16LE(payload.byteLength, at + 4);
    frame.set(payload, at + MESSAGE_HEADER_BYTES);
    at += MESSAGE_HEADER_BYTES + payload.byteLength;
  }
  return frame;
}

/** Calls `each(id, payload)` for every message of a frame; payloads are views into `frame`. */
export function forEachMessage(frame: Buffer, each: (id: number, payload: Buffer) => void): number {
  if (frame.byteLength < HEADER_BYTES) throw new Error(`short frame (${frame.byteLength} bytes)`);
  const count = frame.readUInt32LE(0);
  let at = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + MESSAGE_HEADER_BYTES > frame.byteLength) throw new Error('truncated frame');
    const id = frame.readUInt32LE(at);
    const length = frame.readUInt16LE(at + 4);
    at += MESSAGE_HEADER_BYTES;
    if (at + length > frame.byteLength) throw new Error('truncated frame');
    each(id, frame.subarray(at, at + length));
    at += length;
  }
  return count;
}

interface Waiter {
  readonly resolve: (value: Buffer) => void;
  readonly reject: (error: Error) => void;
}

/** What the client end needs of a grpc-js client duplex stream. */
export interface ClientStream extends FrameSink {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
}

/** The caller's end of the batched echo stream: `echo(payload)` resolves to the echoed bytes. */
export class BatchedEchoClient {
  private readonly waiters = new Map<number, Waiter>();
  private readonly queue: BatchQueue;
  private nextId = 0;
  private failure: Error | undefined;

  constructor(stream: ClientStream) {
    this.queue = new BatchQueue(stream);
    stream.on('data', (chunk: Buffer) => {
      forEachMessage(chunk, (id, payload) => {
        const waiter = this.waiters.get(id);
        if (waiter === undefined) return;
        this.waiters.delete(id);
        waiter.resolve(payload);
      });
    });
    const fail = (error: Error) => {
      this.failure ??= error;
      for (const waiter of this.waiters.values()) waiter.reject(error);
      this.waiters.clear();
    };
    stream.on('error', fail);
    stream.on('end', () => fail(new Error('the echo stream ended')));
    stream.on('close', () => fail(new Error('the echo stream closed')));
  }

  get inFlight(): number {
    return this.waiters.size;
  }

  echo(payload: Uint8Array): Promise<Buffer> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = (this.nextId = (this.nextId + 1) >>> 0);
    const promise = new Promise<Buffer>((resolve, reject) => this.waiters.set(id, { resolve, reject }));
    this.queue.push(id, payload);
    return promise;
  }
}
