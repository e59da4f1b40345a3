import { now } from '../actor/clock.js';
import type { OutboundRequest, OutboundResponse } from './envelopes.js';
import { type Batch, encodeFrame, StringTable, type WireRequest, type WireResponse } from './wire.js';

/** Envelopes per write. */
export const MAX_ENVELOPES_PER_BATCH = 1_000;
/** Payload bytes per write (beside the per-envelope overhead). */
export const MAX_BATCH_BYTES = 1 << 20;

/** What a writer needs of a gRPC duplex stream. */
export interface WritableStream {
  write(chunk: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/**
 * Coalesces the envelopes queued for one stream into batches: everything queued before the
 * next turn of the event loop goes out in as few writes as possible (up to
 * MAX_ENVELOPES_PER_BATCH and MAX_BATCH_BYTES each). When `write()` returns false the writer
 * waits for 'drain'; meanwhile the queue grows only up to `maxQueued`, after which
 * `enqueue*` refuses, so nothing buffers without a bound.
 */
export class BatchWriter {
  private requests: OutboundRequest[] = [];
  private responses: OutboundResponse[] = [];
  private scheduled = false;
  private blocked = false;
  private closed = false;
  /** Waiting for everything queued to be handed to the stream (`flushed`). */
  private waitingForFlush: (() => void)[] = [];

  constructor(
    private readonly stream: WritableStream,
    private readonly maxQueued: number,
    /** Called for each request dropped unwritten because its deadline passed first. */
    private readonly onExpiredUnwritten: (request: OutboundRequest) => void = () => {},
  ) {}

  get queued(): number {
    return this.requests.length + this.responses.length;
  }

  enqueueRequest(request: OutboundRequest): boolean {
    if (this.closed || this.queued >= this.maxQueued) return false;
    this.requests.push(request);
    this.schedule();
    return true;
  }

  enqueueResponse(response: OutboundResponse): boolean {
    if (this.closed || this.queued >= this.maxQueued) return false;
    this.responses.push(response);
    this.schedule();
    return true;
  }

  /** Resolves once everything queued now has been handed to the stream (or the writer closed). */
  flushed(): Promise<void> {
    if (this.closed || (this.queued === 0 && !this.scheduled)) return Promise.resolve();
    return new Promise((resolve) => this.waitingForFlush.push(resolve));
  }

  /** Stop writing; returns the requests never handed to the stream. */
  close(): OutboundRequest[] {
    this.closed = true;
    this.settleFlushed();
    const unwritten = this.requests;
    this.requests = [];
    this.responses = [];
    return unwritten;
  }

  private schedule(): void {
    if (this.scheduled || this.blocked) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (!this.closed && !this.blocked && this.queued > 0) {
      const batch = this.takeBatch();
      if (batch.requests.length === 0 && batch.responses.length === 0) continue;
      const ok = this.stream.write(encodeFrame({ batch }));
      if (!ok) {
        this.blocked = true;
        this.stream.once('drain', () => {
          this.blocked = false;
          this.schedule();
        });
      }
    }
    if (this.queued === 0 && !this.blocked) this.settleFlushed();
  }

  private settleFlushed(): void {
    if (this.waitingForFlush.length === 0) return;
    const waiting = this.waitingForFlush;
    this.waitingForFlush = [];
    for (const resolve of waiting) resolve();
  }

  private takeBatch(): Batch {
    const strings = new StringTable();
    const requests: WireRequest[] = [];
    const responses: WireResponse[] = [];
    let bytes = 0;
    let taken = 0;
    const at = now();
    while (taken < this.requests.length && requests.length < MAX_ENVELOPES_PER_BATCH && (bytes < MAX_BATCH_BYTES || requests.length === 0)) {
      const request = this.requests[taken++]!;
      const call = request.call;
      if (call.settled) continue;
      const remaining = Math.floor(call.deadline - at);
      if (remaining <= 0) {
        this.onExpiredUnwritten(request);
        continue;
      }
      request.written = true;
      bytes += request.args.byteLength;
      requests.push({
        id: request.id,
        kind: strings.ref(call.kind),
        identity: strings.ref(call.identity),
        method: strings.ref(call.method),
        args: request.args,
        timeoutMs: remaining,
        chain:
          call.chain.length === 0
            ? NO_LINKS
            : call.chain.map((link) => ({ activationId: strings.ref(link.activationId), label: strings.ref(link.label), interleaved: link.interleaved })),
        targetIncarnation: strings.ref(request.targetIncarnation),
      });
    }
    this.requests = taken === this.requests.length ? [] : this.requests.slice(taken);
    let answered = 0;
    while (
      answered < this.responses.length &&
      requests.length + responses.length < MAX_ENVELOPES_PER_BATCH &&
      (bytes < MAX_BATCH_BYTES || responses.length === 0)
    ) {
      const response = this.responses[answered++]!;
      bytes += response.result?.byteLength ?? 0;
      responses.push({ id: response.id, status: response.status, result: response.result ?? EMPTY, error: response.error ?? null });
    }
    this.responses = answered === this.responses.length ? [] : this.responses.slice(answered);
    return { strings: strings.strings, requests, responses };
  }
}

const EMPTY = new Uint8Array(0);
const NO_LINKS: WireRequest['chain'] = [];
