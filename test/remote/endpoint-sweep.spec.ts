/**
 * Endpoint against a real gRPC peer (a scripted grpc-js server): the requests a broken stream
 * fails go in the order they were sent, and a deadline sweep copes with callbacks that send or
 * close meanwhile. (Found by a review of the in-flight table, lib/remote/in-flight.ts, which
 * replaced a Map: its iteration order and live iteration were relied on.)
 */
import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Call } from '../../lib/actor/call.js';
import { now } from '../../lib/actor/clock.js';
import type { DeadlineSweeper } from '../../lib/actor/deadline-sweeper.js';
import { Endpoint, type EndpointEvents, type FailureReason } from '../../lib/remote/endpoint.js';
import type { OutboundRequest } from '../../lib/remote/envelopes.js';
import { remotingService } from '../../lib/remote/service-definition.js';
import { decodeFrame, encodeFrame, type HandshakeAck, type MemberInfo, Status } from '../../lib/remote/wire.js';

const callee: MemberInfo = { memberId: 'callee', incarnation: 'inc-callee', address: '', kinds: ['counter'] };
const caller: MemberInfo = { memberId: 'caller', incarnation: 'inc-caller', address: '', kinds: [] };

function outbound(address: string, timeoutMs = 5_000): OutboundRequest {
  const call = new Call(
    'counter',
    'c1',
    'counter/c1',
    'exec',
    [],
    now() + timeoutMs,
    timeoutMs,
    [],
    () => {},
    () => {},
  );
  return { id: 0, call, args: new Uint8Array([0x90]), targetIncarnation: '', address, written: false };
}

class Events implements EndpointEvents {
  readonly failed_: Array<{ id: number; reason: FailureReason; written: boolean }> = [];
  readonly expired_: number[] = [];
  readonly answered: number[] = [];
  ready = false;
  onExpired: ((r: OutboundRequest) => void) | undefined;
  response(request: OutboundRequest): void {
    this.answered.push(request.id);
  }
  failed(request: OutboundRequest, written: boolean, reason: FailureReason): void {
    this.failed_.push({ id: request.id, reason, written });
  }
  expired(request: OutboundRequest): void {
    this.expired_.push(request.id);
    this.onExpired?.(request);
  }
  peer(): void {
    this.ready = true;
  }
  log(): void {}
}

/** A peer that acks the handshake, answers requests with id <= answerUpTo, holds the rest, and ends the stream on `endAt`. */
async function rogue(answerUpTo: number, endAt: number): Promise<{ port: number; server: Server }> {
  const server = new Server();
  server.addService(remotingService, {
    connect: (stream: ServerDuplexStream<Buffer, Buffer>) => {
      let first = true;
      stream.on('data', (chunk: Buffer) => {
        if (first) {
          first = false;
          const ack: HandshakeAck = { accepted: true, protocol: 2, member: callee, reason: '', leaving: false, closing: false };
          stream.write(encodeFrame({ handshakeAck: ack }));
          return;
        }
        const frame = decodeFrame(chunk);
        if (!('batch' in frame)) return;
        const responses = frame.batch.requests
          .filter((r) => r.id <= answerUpTo)
          .map((r) => ({ id: r.id, status: Status.OK, result: new Uint8Array([0xc0]), error: null }));
        if (responses.length > 0) stream.write(encodeFrame({ batch: { strings: [], requests: [], responses } }));
        if (frame.batch.requests.some((r) => r.id === endAt)) setTimeout(() => stream.end(), 50);
      });
      stream.on('error', () => {});
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return { port, server };
}

const stubSweeper = { watch() {} } as unknown as DeadlineSweeper;

describe('Endpoint: failures in send order, sweeps while callbacks act', () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  function endpoint(port: number, events: Events): Endpoint {
    const e = new Endpoint(`127.0.0.1:${port}`, {
      handshake: () => ({ clusterName: 'unit', member: caller, minProtocol: 1, maxProtocol: 2, codec: 'grains-msgpack/1' }),
      maxMessageSize: 4 * 1024 * 1024,
      maxQueued: 100,
      sweeper: stubSweeper,
      events,
    });
    cleanup.push(() => e.close());
    return e;
  }

  it('fails the requests of a broken stream in the order they were sent (as the Map did)', async () => {
    const { port, server } = await rogue(62, 64);
    cleanup.push(() => server.forceShutdown());
    const events = new Events();
    const peer = endpoint(port, events);
    // 62 calls answered one at a time (the table stays at 64 slots), then two left in flight.
    for (let i = 1; i <= 62; i++) {
      peer.send(outbound(peer.address));
      await vi.waitFor(() => expect(events.answered).toHaveLength(i), { timeout: 5_000 });
    }
    peer.send(outbound(peer.address)); // id 63 -> slot 63
    peer.send(outbound(peer.address)); // id 64 -> slot 0
    await vi.waitFor(() => expect(events.failed_).toHaveLength(2), { timeout: 5_000 });
    expect(events.failed_.map((f) => f.reason)).toEqual(['disconnected', 'disconnected']);
    expect(events.failed_.map((f) => f.id)).toEqual([63, 64]);
  });

  it('a request sent while a sweep runs (from an expired callback) still gets its deadline checked', async () => {
    const { port, server } = await rogue(0, -1);
    cleanup.push(() => server.forceShutdown());
    const events = new Events();
    const peer = endpoint(port, events);
    peer.send(outbound(peer.address, 10_000)); // id 1, held; connects
    await vi.waitFor(() => expect(events.ready).toBe(true), { timeout: 5_000 });
    await vi.waitFor(() => expect((peer as unknown as { state: number }).state).toBe(2), { timeout: 5_000 });
    const a = outbound(peer.address, 20);
    peer.send(a); // id 2, held
    let b: OutboundRequest | undefined;
    events.onExpired = (r) => {
      if (r === a) peer.send((b = outbound(peer.address, 200))); // id 3
    };
    await new Promise((resolve) => setTimeout(resolve, 30));
    peer.sweep(now()); // expires a; b is sent from the callback
    expect(events.expired_).toEqual([2]);
    expect(b?.id).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, 250));
    peer.sweep(now()); // b's deadline has passed
    expect(events.expired_).toEqual([2, 3]);
  });

  it('a request let go of during a sweep (the endpoint closed from a callback) is reported once', async () => {
    const { port, server } = await rogue(0, -1);
    cleanup.push(() => server.forceShutdown());
    const events = new Events();
    const peer = endpoint(port, events);
    peer.send(outbound(peer.address, 10_000)); // id 1, held; connects
    await vi.waitFor(() => expect((peer as unknown as { state: number }).state).toBe(2), { timeout: 5_000 });
    const a = outbound(peer.address, 20);
    const b = outbound(peer.address, 20);
    peer.send(a); // id 2
    peer.send(b); // id 3
    events.onExpired = (r) => {
      if (r === a) peer.close();
    };
    await new Promise((resolve) => setTimeout(resolve, 30));
    peer.sweep(now());
    // b: failed 'closed' by close(), and nothing more
    expect(events.failed_.filter((f) => f.id === 3).map((f) => f.reason)).toEqual(['closed']);
    expect(events.expired_).toEqual([2]);
  });
});
