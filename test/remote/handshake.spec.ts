import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Call } from '../../lib/actor/call.js';
import { now } from '../../lib/actor/clock.js';
import { DeadlineSweeper } from '../../lib/actor/deadline-sweeper.js';
import { Endpoint, type EndpointEvents, type FailureReason } from '../../lib/remote/endpoint.js';
import type { OutboundRequest } from '../../lib/remote/envelopes.js';
import type { ProtocolRange } from '../../lib/remote/protocol.js';
import { type InboundHandler, RemoteServer } from '../../lib/remote/remote-server.js';
import { remotingService } from '../../lib/remote/service-definition.js';
import { encodeFrame, type HandshakeAck, type MemberInfo, Status } from '../../lib/remote/wire.js';

const CLUSTER = 'unit';
const CODEC = 'grains-msgpack/1';
const MAX_MESSAGE_SIZE = 4 * 1024 * 1024;
const CALL_TIMEOUT_MS = 5_000;

const caller: MemberInfo = { memberId: 'caller', incarnation: 'inc-caller', address: '', kinds: [] };
const callee: MemberInfo = { memberId: 'callee', incarnation: 'inc-callee', address: '', kinds: ['counter'] };

/** What an endpoint reported, in order. */
class RecordingEvents implements EndpointEvents {
  readonly peers: Array<{ info: MemberInfo; protocol: number }> = [];
  readonly failures: Array<{ request: OutboundRequest; written: boolean; reason: FailureReason; detail: string }> = [];
  readonly answered: number[] = [];
  readonly warnings: string[] = [];
  response(request: OutboundRequest): void {
    this.answered.push(request.id);
  }
  failed(request: OutboundRequest, written: boolean, reason: FailureReason, detail: string): void {
    this.failures.push({ request, written, reason, detail });
  }
  expired(): void {}
  peer(info: MemberInfo, protocol: number): void {
    this.peers.push({ info, protocol });
  }
  log(level: 'warn' | 'log', message: string): void {
    if (level === 'warn') this.warnings.push(message);
  }
}

function outbound(address: string): OutboundRequest {
  const call = new Call(
    'counter',
    'c1',
    'counter/c1',
    'exec',
    [],
    now() + CALL_TIMEOUT_MS,
    CALL_TIMEOUT_MS,
    [],
    () => {},
    () => {},
  );
  return { id: 0, call, args: new Uint8Array([0x90]), targetIncarnation: '', address, written: false };
}

describe('the handshake between an endpoint and a server', () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  function endpoint(address: string, range: ProtocolRange, events: EndpointEvents, clusterName = CLUSTER): Endpoint {
    const sweeper = new DeadlineSweeper();
    const created = new Endpoint(address, {
      handshake: () => ({ clusterName, member: caller, minProtocol: range.min, maxProtocol: range.max, codec: CODEC }),
      maxMessageSize: MAX_MESSAGE_SIZE,
      maxQueued: 100,
      sweeper,
      events,
    });
    cleanup.push(
      () => created.close(),
      () => sweeper.stop(),
    );
    return created;
  }

  it('keeps the negotiated version on both sides and reports it with the peer', async () => {
    const inboundPeers: Array<{ info: MemberInfo; protocol: number }> = [];
    const handler: InboundHandler = {
      clusterName: CLUSTER,
      codecName: CODEC,
      protocol: { min: 2, max: 3 },
      self: () => callee,
      request: (request, respond) => respond({ id: request.id, status: Status.OK, result: new Uint8Array([0xc0]) }),
      peer: (info, protocol) => inboundPeers.push({ info, protocol }),
      log: () => {},
    };
    const server = new RemoteServer({ host: '127.0.0.1', port: 0, maxMessageSize: MAX_MESSAGE_SIZE, maxQueued: 100 }, handler);
    const port = await server.start();
    cleanup.push(() => server.shutdown());
    const events = new RecordingEvents();
    const peer = endpoint(`127.0.0.1:${port}`, { min: 1, max: 2 }, events);
    expect(peer.protocol).toBeUndefined();

    peer.send(outbound(peer.address));
    await vi.waitFor(() => expect(events.answered).toHaveLength(1), { timeout: 5_000 });
    expect(peer.protocol).toBe(2);
    expect(events.peers).toEqual([{ info: callee, protocol: 2 }]);
    expect(inboundPeers).toEqual([{ info: caller, protocol: 2 }]);
  });

  it('refuses a stranger telling it nothing; each side logs its side', async () => {
    const serverLog: string[] = [];
    const handler: InboundHandler = {
      clusterName: CLUSTER,
      codecName: CODEC,
      protocol: { min: 1, max: 1 },
      self: () => callee,
      request: () => expect.unreachable('a refused caller is never served'),
      peer: () => expect.unreachable('a refused caller is no peer'),
      log: (_level, message) => serverLog.push(message),
    };
    const server = new RemoteServer({ host: '127.0.0.1', port: 0, maxMessageSize: MAX_MESSAGE_SIZE, maxQueued: 100 }, handler);
    const port = await server.start();
    cleanup.push(() => server.shutdown());
    const events = new RecordingEvents();
    const stranger = endpoint(`127.0.0.1:${port}`, { min: 1, max: 1 }, events, 'elsewhere');
    const request = outbound(stranger.address);

    stranger.send(request);
    await vi.waitFor(() => expect(events.failures).toHaveLength(1), { timeout: 5_000 });
    // the caller: refused, and nothing of the callee (its cluster, id, kinds) nor why
    expect(events.failures[0]).toMatchObject({ request, written: false, reason: 'refused', detail: 'refused' });
    expect(events.warnings).toEqual([`Remote ${stranger.address} refused this member: refused`]);
    expect(stranger.peer).toBeUndefined();
    // the callee: who the stranger claimed to be, and why it was refused
    expect(serverLog).toEqual([
      expect.stringMatching(/^Remote: refused member "caller" \(client only, from 127\.0\.0\.1\): cluster "elsewhere" is not this member's cluster "unit"$/),
    ]);
  });

  it("treats an ack accepted on a version outside this member's range as a refusal", async () => {
    // a peer that accepts whatever it is sent, on a version nobody asked for
    const rogue = new Server();
    rogue.addService(remotingService, {
      connect: (stream: ServerDuplexStream<Buffer, Buffer>) => {
        stream.once('data', () => {
          const ack: HandshakeAck = { accepted: true, protocol: 7, member: callee, reason: '', leaving: false, closing: false };
          stream.write(encodeFrame({ handshakeAck: ack }));
        });
        stream.on('error', () => {});
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      rogue.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    cleanup.push(() => rogue.forceShutdown());
    const events = new RecordingEvents();
    const peer = endpoint(`127.0.0.1:${port}`, { min: 1, max: 2 }, events);
    const request = outbound(peer.address);

    peer.send(request);
    await vi.waitFor(() => expect(events.failures).toHaveLength(1), { timeout: 5_000 });
    expect(events.failures[0]).toMatchObject({ request, written: false, reason: 'refused' });
    expect(events.failures[0]!.detail).toContain("protocol version 7, outside this member's 1..2");
    expect(events.warnings.some((w) => w.includes('treated as a refusal'))).toBe(true);
    expect(peer.protocol).toBeUndefined();
    expect(peer.peer).toBeUndefined();
    expect(events.peers).toEqual([]);
  });
});
