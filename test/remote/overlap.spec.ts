/**
 * Both members work at once under load: a callee writes the answers of each slice of a batch
 * before it serves the next slice, and a caller writes what its callers ask next as soon as they
 * have run on a frame of answers, not at the next turn (remote-server.ts `resume`, endpoint.ts
 * `flushAfterAnswers`). An idle stream writes at once too: a caller's lone request, a callee's
 * only answer owed (remote-server.ts `respond`, endpoint.ts `send`). Real gRPC in this process.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Call } from '../../lib/actor/call.js';
import { now } from '../../lib/actor/clock.js';
import { DeadlineSweeper } from '../../lib/actor/deadline-sweeper.js';
import { Endpoint, type EndpointEvents } from '../../lib/remote/endpoint.js';
import type { OutboundRequest } from '../../lib/remote/envelopes.js';
import { BatchWriter } from '../../lib/remote/batch-writer.js';
import { type InboundHandler, RemoteServer, SLICE_REQUESTS } from '../../lib/remote/remote-server.js';
import { type MemberInfo, Status } from '../../lib/remote/wire.js';
import { codec, handshake, RawPeer, requestBatch } from '../support/raw-peer.js';

const CLUSTER = 'unit';
const MAX_MESSAGE_SIZE = 4 * 1024 * 1024;
const callee: MemberInfo = { memberId: 'callee', incarnation: 'inc-callee', address: '', kinds: ['echo'] };

/** Answers every request OK, in a microtask (as a grain's turn does, after the slice that admitted it). */
const echoHandler = (served: number[] = []): InboundHandler => ({
  clusterName: CLUSTER,
  codecName: codec.name,
  protocol: { min: 1, max: 2 },
  self: () => callee,
  request: (request, respond) => {
    served.push(request.id);
    queueMicrotask(() => respond({ id: request.id, status: Status.OK, result: new Uint8Array([0xc0]) }));
  },
  peer: () => {},
  log: () => {},
});

function outbound(id: number): OutboundRequest {
  const call = new Call(
    'echo',
    `e${id}`,
    `echo/e${id}`,
    'echo',
    [],
    now() + 5_000,
    5_000,
    [],
    () => {},
    () => {},
  );
  return { id: 0, call, args: new Uint8Array([0x90]), targetIncarnation: '', address: '', written: false };
}

describe('overlap of caller and callee', () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function server(handler: InboundHandler): Promise<number> {
    const created = new RemoteServer({ host: '127.0.0.1', port: 0, maxMessageSize: MAX_MESSAGE_SIZE, maxQueued: 10_000 }, handler);
    const port = await created.start();
    cleanup.push(() => created.shutdown());
    return port;
  }

  it('a callee serving a batch in slices writes each slice’s answers in frames of their own', async () => {
    const served: number[] = [];
    const port = await server(echoHandler(served));
    const peer = new RawPeer(`127.0.0.1:${port}`);
    cleanup.push(() => peer.close());
    expect((await peer.handshake(handshake(CLUSTER))).accepted).toBe(true);
    const ids = Array.from({ length: 1_000 }, (_, n) => n + 1);
    peer.send(requestBatch(ids.map((id) => ({ id, kind: 'echo', identity: `e${id}`, method: 'echo' }))));
    const responses = await peer.waitResponses(ids);
    expect(ids.filter((id) => responses.get(id)!.status !== Status.OK)).toEqual([]);
    expect(served).toEqual(ids);
    const perFrame = peer.frames.filter((f) => 'batch' in f).map((f) => ('batch' in f ? f.batch.responses.length : 0));
    // NOTE: the answers of two slices together in one frame would mean the first slice's waited
    // for the second to be served (the members taking turns).
    expect(Math.max(...perFrame)).toBeLessThanOrEqual(SLICE_REQUESTS);
    expect(perFrame.reduce((a, b) => a + b, 0)).toBe(ids.length);
  });

  /** An endpoint to `port` whose answers go to `response`; closed after the test. */
  function endpointTo(port: number, response: EndpointEvents['response']): Endpoint {
    const sweeper = new DeadlineSweeper();
    const endpoint = new Endpoint(`127.0.0.1:${port}`, {
      handshake: () => handshake(CLUSTER),
      maxMessageSize: MAX_MESSAGE_SIZE,
      maxQueued: 100,
      sweeper,
      events: { response, failed: () => {}, expired: () => {}, peer: () => {}, log: () => {} },
    });
    cleanup.push(
      () => endpoint.close(),
      () => sweeper.stop(),
    );
    return endpoint;
  }

  it('a caller writes what its callers ask after a frame of answers before the next turn', async () => {
    const port = await server(echoHandler());
    const next = outbound(2);
    let writtenBeforeNextTurn: boolean | undefined;
    const endpoint = endpointTo(port, (request) => {
      if (request.id !== 1) return;
      // a caller's continuation: it runs in a microtask after the answer, and calls again
      void Promise.resolve().then(() => endpoint.send(next));
      setImmediate(() => (writtenBeforeNextTurn = next.written));
    });
    endpoint.send(outbound(1));
    await vi.waitFor(() => expect(writtenBeforeNextTurn).toBeDefined(), { timeout: 5_000 });
    expect(writtenBeforeNextTurn).toBe(true);
  });

  it('a caller with nothing else in flight writes a call made from a task of its own before the next turn', async () => {
    // NOTE: the callee never answers request 3, so it stays in flight.
    const handler = echoHandler();
    const port = await server({ ...handler, request: (request, respond) => request.id !== 3 && handler.request(request, respond, callee) });
    const [lone, held, later] = [outbound(2), outbound(3), outbound(4)];
    const seen: Record<string, boolean> = {};
    /** A call from a task of its own (a timer here; an HTTP request in an app), not from an answer's continuation: the immediate queued first sees whether it was written meanwhile. */
    const sendFromTask = (request: OutboundRequest, name: string, then?: () => void) =>
      setTimeout(() => {
        setImmediate(() => {
          seen[name] = request.written;
          then?.();
        });
        endpoint.send(request);
      }, 0);
    const endpoint = endpointTo(port, (request) => {
      if (request.id === 1) sendFromTask(lone, 'lone');
      // with `held` in flight, the next call waits for the writer's turn (batched with what else comes)
      else if (request === lone) sendFromTask(held, 'held', () => sendFromTask(later, 'later'));
    });
    endpoint.send(outbound(1));
    await vi.waitFor(() => expect(seen['later']).toBeDefined(), { timeout: 5_000 });
    expect(seen).toEqual({ lone: true, held: true, later: false });
    await vi.waitFor(() => expect(later.written).toBe(true), { timeout: 5_000 });
  });

  it('a callee writes the only answer it owes at once, and batches answers while more are owed', async () => {
    const flush = vi.spyOn(BatchWriter.prototype, 'flush');
    cleanup.push(() => flush.mockRestore());
    /** Per answer: whether `respond` flushed the writer itself. */
    const flushedInRespond = new Map<number, boolean>();
    const port = await server({
      ...echoHandler(),
      request: (request, respond) => {
        queueMicrotask(() => {
          const before = flush.mock.calls.length;
          respond({ id: request.id, status: Status.OK, result: new Uint8Array([0xc0]) });
          flushedInRespond.set(request.id, flush.mock.calls.length > before);
        });
      },
    });
    const peer = new RawPeer(`127.0.0.1:${port}`);
    cleanup.push(() => peer.close());
    expect((await peer.handshake(handshake(CLUSTER))).accepted).toBe(true);
    peer.send(requestBatch([{ id: 1, kind: 'echo', identity: 'e1', method: 'echo' }]));
    await peer.waitResponses([1]);
    peer.send(requestBatch([2, 3, 4].map((id) => ({ id, kind: 'echo', identity: `e${id}`, method: 'echo' }))));
    await peer.waitResponses([2, 3, 4]);
    // NOTE: 4 is flushed by its respond only if the batch was served in two slices (a pause of
    // more than SLICE_MS): then it is the only answer owed when it comes.
    expect([flushedInRespond.get(1), flushedInRespond.get(2), flushedInRespond.get(3)]).toEqual([true, false, false]);
    const perFrame = peer.frames.filter((f) => 'batch' in f).map((f) => ('batch' in f ? f.batch.responses.map((r) => r.id) : []));
    expect(perFrame[0]).toEqual([1]);
    expect(perFrame.slice(1).flat()).toEqual([2, 3, 4]);
    // NOTE: served in one slice (the usual case), the three answers share one frame.
    if (flushedInRespond.get(4) === false) expect(perFrame.length).toBe(2);
  });
});
