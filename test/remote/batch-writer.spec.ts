import { describe, expect, it } from 'vitest';
import { Call } from '../../lib/actor/call.js';
import { now } from '../../lib/actor/clock.js';
import { BatchWriter, MAX_BATCH_BYTES, MAX_ENVELOPES_PER_BATCH, type WritableStream } from '../../lib/remote/batch-writer.js';
import type { OutboundRequest, OutboundResponse } from '../../lib/remote/envelopes.js';
import { type Batch, decodeFrame, Status } from '../../lib/remote/wire.js';

const TIMEOUT_MS = 10_000;
const PLENTY = 100_000;

/**
 * The unit seam of BatchWriter: a gRPC duplex stream reduced to `write` and `once('drain')`.
 * It keeps every chunk (as a real stream does, even when `write` returns false) and answers
 * `write` with `accepting`; `drain()` plays the stream's 'drain' event.
 */
class FakeStream implements WritableStream {
  readonly batches: Batch[] = [];
  accepting = true;
  private drainListeners: Array<() => void> = [];

  write(chunk: Buffer): boolean {
    const frame = decodeFrame(chunk);
    if (!('batch' in frame)) throw new Error('the writer wrote something other than a batch');
    this.batches.push(frame.batch);
    return this.accepting;
  }

  once(_event: 'drain', listener: () => void): this {
    this.drainListeners.push(listener);
    return this;
  }

  get waitsForDrain(): boolean {
    return this.drainListeners.length > 0;
  }

  drain(): void {
    const listeners = this.drainListeners;
    this.drainListeners = [];
    for (const listener of listeners) listener();
  }

  /** Envelopes per write, in order. */
  sizes(): number[] {
    return this.batches.map((b) => b.requests.length + b.responses.length);
  }
}

let lastId = 0;
function request(method: string, options: { timeoutMs?: number; args?: Uint8Array; identity?: string } = {}): OutboundRequest {
  const timeoutMs = options.timeoutMs ?? TIMEOUT_MS;
  const identity = options.identity ?? 'c1';
  const call = new Call(
    'counter',
    identity,
    `counter/${identity}`,
    method,
    [],
    now() + timeoutMs,
    timeoutMs,
    [],
    () => {},
    () => {},
  );
  return { id: ++lastId, call, args: options.args ?? new Uint8Array([1, 2, 3]), targetIncarnation: 'inc-1', address: '127.0.0.1:1', written: false };
}

function response(id: number, result?: Uint8Array): OutboundResponse {
  return result === undefined
    ? { id, status: Status.NOT_HERE, error: { name: 'NotHereError', message: 'not here', code: '', origin: '', cycle: [] } }
    : { id, status: Status.OK, result };
}

/** Let the event loop turn once: the writer flushes on `setImmediate`, queued before this one. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('BatchWriter', () => {
  it('writes nothing in the same turn, then everything queued in that turn in one batch', async () => {
    const stream = new FakeStream();
    const writer = new BatchWriter(stream, PLENTY);
    const a = request('a');
    const b = request('b');
    expect(writer.enqueueRequest(a)).toBe(true);
    expect(writer.enqueueRequest(b)).toBe(true);
    expect(writer.enqueueResponse(response(7, new Uint8Array([9])))).toBe(true);
    expect(stream.batches).toEqual([]);
    expect(writer.queued).toBe(3);

    await nextTurn();
    expect(stream.sizes()).toEqual([3]);
    expect(writer.queued).toBe(0);
    const [batch] = stream.batches as [Batch];
    expect(batch.requests.map((r) => [r.id, batch.strings[r.method]])).toEqual([
      [a.id, 'a'],
      [b.id, 'b'],
    ]);
    expect(batch.responses.map((r) => ({ id: r.id, status: r.status, result: [...r.result] }))).toEqual([{ id: 7, status: Status.OK, result: [9] }]);
    expect([a.written, b.written]).toEqual([true, true]);
  });

  it('sends each distinct string of a batch once and refers to it by index', async () => {
    const stream = new FakeStream();
    const writer = new BatchWriter(stream, PLENTY);
    writer.enqueueRequest(request('exec'));
    writer.enqueueRequest(request('exec'));
    await nextTurn();
    const [batch] = stream.batches as [Batch];
    expect([...batch.strings].sort()).toEqual(['c1', 'counter', 'exec', 'inc-1']);
    const [first, second] = batch.requests;
    expect(second).toMatchObject({ kind: first!.kind, identity: first!.identity, method: first!.method, targetIncarnation: first!.targetIncarnation });
  });

  it('writes what is left of the deadline as the timeout', async () => {
    const stream = new FakeStream();
    const writer = new BatchWriter(stream, PLENTY);
    writer.enqueueRequest(request('exec', { timeoutMs: 5_000 }));
    await nextTurn();
    const timeoutMs = stream.batches[0]!.requests[0]!.timeoutMs;
    expect(timeoutMs).toBeGreaterThan(4_000);
    expect(timeoutMs).toBeLessThanOrEqual(5_000);
  });

  it(`splits a turn's envelopes into batches of at most ${MAX_ENVELOPES_PER_BATCH}, requests first`, async () => {
    const stream = new FakeStream();
    const writer = new BatchWriter(stream, PLENTY);
    for (let i = 0; i < MAX_ENVELOPES_PER_BATCH + 500; i++) writer.enqueueRequest(request('exec'));
    for (let i = 0; i < 700; i++) writer.enqueueResponse(response(i, new Uint8Array([1])));
    await nextTurn();
    expect(stream.sizes()).toEqual([MAX_ENVELOPES_PER_BATCH, MAX_ENVELOPES_PER_BATCH, 200]);
    expect(stream.batches.map((b) => b.requests.length)).toEqual([MAX_ENVELOPES_PER_BATCH, 500, 0]);
  });

  it('closes a batch once its payload reaches MAX_BATCH_BYTES, but always takes at least one envelope', async () => {
    const stream = new FakeStream();
    const writer = new BatchWriter(stream, PLENTY);
    const third = new Uint8Array(Math.ceil(MAX_BATCH_BYTES * 0.6));
    for (let i = 0; i < 3; i++) writer.enqueueRequest(request('exec', { args: third }));
    // larger than a whole batch on its own: it still goes, alone
    writer.enqueueRequest(request('exec', { args: new Uint8Array(MAX_BATCH_BYTES * 2) }));
    await nextTurn();
    // 0.6 + 0.6 crosses the limit: the batch stops there
    expect(stream.sizes()).toEqual([2, 2]);
    expect(stream.batches[1]!.requests.map((r) => r.args.byteLength)).toEqual([third.byteLength, MAX_BATCH_BYTES * 2]);
  });

  it('stops writing when write() returns false and resumes on the next turn after drain', async () => {
    const stream = new FakeStream();
    const writer = new BatchWriter(stream, PLENTY);
    stream.accepting = false;
    for (let i = 0; i < MAX_ENVELOPES_PER_BATCH + 1; i++) writer.enqueueRequest(request('exec'));
    await nextTurn();
    // the first batch was handed over (the stream buffers it), then the writer waits
    expect(stream.sizes()).toEqual([MAX_ENVELOPES_PER_BATCH]);
    expect(stream.waitsForDrain).toBe(true);

    writer.enqueueRequest(request('later'));
    await nextTurn();
    await nextTurn();
    expect(stream.sizes()).toEqual([MAX_ENVELOPES_PER_BATCH]);
    expect(writer.queued).toBe(2);

    stream.accepting = true;
    stream.drain();
    expect(stream.sizes()).toEqual([MAX_ENVELOPES_PER_BATCH]);
    await nextTurn();
    expect(stream.sizes()).toEqual([MAX_ENVELOPES_PER_BATCH, 2]);
    expect(writer.queued).toBe(0);
    expect(stream.waitsForDrain).toBe(false);
  });

  it('refuses requests and responses alike beyond maxQueued, and takes them again once written', async () => {
    const stream = new FakeStream();
    const writer = new BatchWriter(stream, 3);
    expect(writer.enqueueRequest(request('a'))).toBe(true);
    expect(writer.enqueueResponse(response(1, new Uint8Array([1])))).toBe(true);
    expect(writer.enqueueRequest(request('b'))).toBe(true);
    const refused = request('c');
    expect(writer.enqueueRequest(refused)).toBe(false);
    expect(writer.enqueueResponse(response(2, new Uint8Array([1])))).toBe(false);
    expect(writer.queued).toBe(3);
    expect(refused.written).toBe(false);

    await nextTurn();
    expect(stream.sizes()).toEqual([3]);
    expect(writer.enqueueRequest(request('d'))).toBe(true);
  });

  it('keeps the queue bounded while it waits for drain', async () => {
    const stream = new FakeStream();
    const writer = new BatchWriter(stream, 2);
    stream.accepting = false;
    writer.enqueueRequest(request('a'));
    await nextTurn();
    expect(stream.waitsForDrain).toBe(true);
    expect(writer.enqueueRequest(request('b'))).toBe(true);
    expect(writer.enqueueRequest(request('c'))).toBe(true);
    expect(writer.enqueueRequest(request('d'))).toBe(false);
    expect(writer.queued).toBe(2);
  });

  it('drops a request whose deadline passed before it was written, reporting it; a settled call is dropped silently', async () => {
    const stream = new FakeStream();
    const expired: OutboundRequest[] = [];
    const writer = new BatchWriter(stream, PLENTY, (r) => expired.push(r));
    const late = request('late', { timeoutMs: -1 });
    const answered = request('answered');
    answered.call.resolve('already');
    const fine = request('fine');
    writer.enqueueRequest(late);
    writer.enqueueRequest(answered);
    writer.enqueueRequest(fine);
    await nextTurn();
    expect(expired).toEqual([late]);
    expect(stream.batches.flatMap((b) => b.requests.map((r) => r.id))).toEqual([fine.id]);
    expect([late.written, answered.written, fine.written]).toEqual([false, false, true]);
  });

  it('writes no batch when every queued request was dropped', async () => {
    const stream = new FakeStream();
    const writer = new BatchWriter(stream, PLENTY, () => {});
    writer.enqueueRequest(request('late', { timeoutMs: -1 }));
    await nextTurn();
    expect(stream.batches).toEqual([]);
    expect(writer.queued).toBe(0);
  });

  it('on close, hands back the requests never written, writes nothing more and refuses new envelopes', async () => {
    const stream = new FakeStream();
    const writer = new BatchWriter(stream, PLENTY);
    stream.accepting = false;
    const sent = request('sent');
    writer.enqueueRequest(sent);
    await nextTurn();
    const unsent = [request('x'), request('y')];
    for (const r of unsent) writer.enqueueRequest(r);
    writer.enqueueResponse(response(5, new Uint8Array([1])));

    expect(writer.close()).toEqual(unsent);
    expect(writer.queued).toBe(0);
    expect(writer.enqueueRequest(request('z'))).toBe(false);
    expect(writer.enqueueResponse(response(6, new Uint8Array([1])))).toBe(false);
    stream.accepting = true;
    stream.drain();
    await nextTurn();
    expect(stream.batches.flatMap((b) => b.requests.map((r) => r.id))).toEqual([sent.id]);
    expect(unsent.map((r) => r.written)).toEqual([false, false]);
  });

  it('sends a response without a result as no bytes, and its error', async () => {
    const stream = new FakeStream();
    const writer = new BatchWriter(stream, PLENTY);
    writer.enqueueResponse(response(3));
    await nextTurn();
    const [sent] = stream.batches[0]!.responses;
    expect(sent).toMatchObject({ id: 3, status: Status.NOT_HERE, error: { name: 'NotHereError', message: 'not here' } });
    expect([...sent!.result]).toEqual([]);
  });
});
