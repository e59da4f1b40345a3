import { now } from '../actor/clock.js';
import { type BatchMetrics, batchMetrics } from '../observability/batch-metrics.js';
import type { OutboundRequest, OutboundResponse } from './envelopes.js';
import { type Batch, encodeFrame, StringTable, type WireRequest, type WireResponse } from './wire.js';

/** Envelopes per write. */
export const MAX_ENVELOPES_PER_BATCH = 1_000;
/** Payload bytes per write (beside the per-envelope overhead). */
export const MAX_BATCH_BYTES = 1 << 20;
/**
 * Decoded values (every tag: messages, fields, strings) per write, estimated from above: a
 * reader refuses a frame of more than 16 per request it accepts (inbound-limits.ts), and
 * accepts at least MAX_ENVELOPES_PER_BATCH requests. Plain requests take about 10 each (12 traced), so
 * this only splits batches of requests with long call chains.
 */
export const MAX_ENTRIES_PER_WRITE = 16 * MAX_ENVELOPES_PER_BATCH;
/** Bytes (arguments, results, error texts) that may wait per stream by default. */
export const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** What an envelope counts for beside its payload, in queued bytes. */
const ENVELOPE_BYTES = 64;

/** What a writer needs of a gRPC duplex stream. */
export interface WritableStream {
  write(chunk: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/**
 * Coalesces the envelopes queued for one stream into batches: everything queued before the
 * next turn of the event loop goes out in as few writes as possible (up to
 * MAX_ENVELOPES_PER_BATCH, MAX_BATCH_BYTES and MAX_ENTRIES_PER_WRITE each). When `write()`
 * returns false the writer waits for 'drain'; meanwhile the queue grows only up to
 * `maxQueued` envelopes and `maxQueuedBytes` bytes, after which `enqueue*` refuses, so
 * nothing buffers without a bound.
 */
export class BatchWriter {
  private requests: OutboundRequest[] = [];
  private responses: OutboundResponse[] = [];
  private scheduled = false;
  private blocked = false;
  private closed = false;
  private bytes = 0;
  /** Waiting for everything queued to be handed to the stream (`flushed`). */
  private waitingForFlush: (() => void)[] = [];
  constructor(
    private readonly stream: WritableStream,
    private readonly maxQueued: number,
    /** Called for each request dropped unwritten because its deadline passed first. */
    private readonly onExpiredUnwritten: (request: OutboundRequest) => void = () => {},
    private readonly maxQueuedBytes: number = DEFAULT_MAX_QUEUED_BYTES,
    /**
     * Where frames written are recorded (lib/observability): the member's, looked up once when
     * its remote was made (so an SDK registered later does not start recording some metrics
     * and not others); null: none (no SDK then). Looked up here when not given.
     */
    private readonly metrics: BatchMetrics | null = batchMetrics() ?? null,
  ) {}

  get queued(): number {
    return this.requests.length + this.responses.length;
  }

  /** Bytes queued: arguments, results and error texts, plus a little per envelope. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** The stream does not take more now, and the queue is past half a bound: the peer reads slower than it asks. */
  get congested(): boolean {
    return this.blocked && (this.queued >= this.maxQueued / 2 || this.bytes >= this.maxQueuedBytes / 2);
  }

  enqueueRequest(request: OutboundRequest): boolean {
    const size = requestBytes(request);
    if (!this.admits(size)) return false;
    this.requests.push(request);
    this.bytes += size;
    this.schedule();
    return true;
  }

  /** Queue a response; `force` takes it beyond the bounds (a small stand-in for one that did not fit). */
  enqueueResponse(response: OutboundResponse, force = false): boolean {
    const size = responseBytes(response);
    if (this.closed || (!force && !this.admits(size))) return false;
    this.responses.push(response);
    this.bytes += size;
    this.schedule();
    return true;
  }

  private admits(size: number): boolean {
    // NOTE: one envelope is always taken when nothing waits, however large (the message size limit bounds it).
    return !this.closed && this.queued < this.maxQueued && (this.queued === 0 || this.bytes + size <= this.maxQueuedBytes);
  }

  /** False while the stream takes no more (waiting for 'drain') or the writer is closed. */
  get writable(): boolean {
    return !this.closed && !this.blocked;
  }

  /**
   * Write a frame of another kind (gossip) now, beside the batches; false (nothing written)
   * while the stream does not take more or the writer is closed: such a frame is worth
   * nothing late, and its sender sends what it holds next time.
   */
  writeNow(frame: Buffer): boolean {
    if (this.closed || this.blocked) return false;
    if (!this.stream.write(frame)) {
      this.blocked = true;
      this.stream.once('drain', () => {
        this.blocked = false;
        this.schedule();
      });
    }
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
    this.bytes = 0;
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

  /** Write what is queued now, not at the next turn (the flush `enqueue*` scheduled still runs, and writes what came after). */
  flush(): void {
    while (!this.closed && !this.blocked && this.queued > 0) {
      const batch = this.takeBatch();
      if (batch.requests.length === 0 && batch.responses.length === 0) continue;
      const frame = encodeFrame({ batch });
      this.metrics?.written(frame.byteLength, batch.requests.length + batch.responses.length);
      const ok = this.stream.write(frame);
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
    // NOTE: the Frame and Batch tags.
    let entries = 2;
    const at = now();
    while (taken < this.requests.length && requests.length < MAX_ENVELOPES_PER_BATCH && (bytes < MAX_BATCH_BYTES || requests.length === 0)) {
      const next = this.requests[taken]!;
      // NOTE: a request's tag, its 9 fields, 4 strings at most, and per chain link a tag, 3 fields and 2 strings.
      const cost = 14 + 6 * next.call.chain.length;
      if (requests.length > 0 && entries + cost > MAX_ENTRIES_PER_WRITE) break;
      const request = this.requests[taken++]!;
      const size = requestBytes(request);
      this.bytes -= size;
      const call = request.call;
      if (call.settled) continue;
      entries += cost;
      const remaining = Math.floor(call.deadline - at);
      if (remaining <= 0) {
        this.onExpiredUnwritten(request);
        continue;
      }
      request.written = true;
      bytes += size - ENVELOPE_BYTES;
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
        // NOTE: not in the string table (unique per request); left out when empty (undefined is not written).
        traceparent: request.traceparent || undefined,
        tracestate: request.tracestate || undefined,
      });
    }
    this.requests = taken === this.requests.length ? [] : this.requests.slice(taken);
    let answered = 0;
    while (
      answered < this.responses.length &&
      requests.length + responses.length < MAX_ENVELOPES_PER_BATCH &&
      (bytes < MAX_BATCH_BYTES || responses.length === 0)
    ) {
      // NOTE: a response's tag, its 4 fields, and its error's tag, 6 fields and cycle.
      const cost = 12 + (this.responses[answered]!.error?.cycle.length ?? 0);
      if (requests.length + responses.length > 0 && entries + cost > MAX_ENTRIES_PER_WRITE) break;
      entries += cost;
      const response = this.responses[answered++]!;
      const size = responseBytes(response);
      this.bytes -= size;
      bytes += size - ENVELOPE_BYTES;
      responses.push({ id: response.id, status: response.status, result: response.result ?? EMPTY, error: response.error ?? null });
    }
    this.responses = answered === this.responses.length ? [] : this.responses.slice(answered);
    return { strings: strings.strings, requests, responses };
  }
}

const EMPTY = new Uint8Array(0);
const NO_LINKS: WireRequest['chain'] = [];

function requestBytes(request: OutboundRequest): number {
  return ENVELOPE_BYTES + request.args.byteLength + (request.traceparent?.length ?? 0) + (request.tracestate?.length ?? 0);
}

function responseBytes(response: OutboundResponse): number {
  const error = response.error;
  const text = error === undefined ? 0 : error.name.length + error.message.length + error.code.length + error.origin.length + (error.httpResponse?.length ?? 0);
  return ENVELOPE_BYTES + (response.result?.byteLength ?? 0) + text;
}
