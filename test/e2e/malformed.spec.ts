import { PROTOCOL_MAX } from '../../lib/remote/protocol.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CallOutcome, type MemberProcess, MemberHarness } from '../support/member-harness.js';
import type { Reply } from '../support/members/grains.js';
import { codec, handshake, RawPeer, requestBatch } from '../support/raw-peer.js';
import { type Batch, decodeFrame, encodeFrame, Status } from '../../lib/remote/wire.js';

const MAX_MESSAGE_SIZE = 256 * 1024;
/** gRPC status codes. */
const OK = 0;
const RESOURCE_EXHAUSTED = 8;

type Ok<T> = Extract<CallOutcome<T>, { ok: true }>;

/**
 * A member process fed hostile and wrong input by a raw gRPC peer (the library's service
 * definition and frame codec, driven by hand), while another member keeps calling it.
 */
describe('a member process under malformed input from a raw peer', () => {
  let h: MemberHarness | undefined;
  let target: MemberProcess;
  let caller: MemberProcess;
  const peers: RawPeer[] = [];
  const open = (): RawPeer => {
    const peer = new RawPeer(target.address);
    peers.push(peer);
    return peer;
  };
  /** Calls from the other member that are in flight while a test abuses the target. */
  let load: Promise<Array<CallOutcome<Reply>>> | undefined;
  let loadIds: string[] = [];
  let testNo = 0;

  beforeAll(async () => {
    h = await MemberHarness.start([
      { env: { MAX_MESSAGE_SIZE: String(MAX_MESSAGE_SIZE) }, label: 'target' },
      // client only: every grain lives on the target
      { clientOnly: true, env: { MAX_MESSAGE_SIZE: String(MAX_MESSAGE_SIZE) }, label: 'caller' },
    ]);
    [target, caller] = h.members as [MemberProcess, MemberProcess];
  }, 60_000);

  afterAll(async () => {
    await h?.shutdown();
  }, 30_000);

  // Every test runs beside calls from the other member (startLoad), which must all go on;
  // and the target must be up and serving afterwards.
  afterEach(async () => {
    for (const p of peers.splice(0)) p.close();
    const outcomes = await load;
    load = undefined;
    expect(outcomes, 'the test did not start the load').toBeDefined();
    expect(outcomes!.filter((o) => !o.ok)).toEqual([]);
    await h!.readEvents();
    const execs = target.execEvents().filter((e) => loadIds.includes(e.callId));
    expect(execs).toHaveLength(loadIds.length); // each ran once, on the target
    expect(target.alive, target.tail()).toBe(true);
    const after = await caller.call<Reply>('counter', 'after', 'exec', [`after-${testNo}`]);
    expect(after.ok, JSON.stringify(after)).toBe(true);
    expect(target.stderr()).not.toMatch(/Uncaught|UnhandledPromiseRejection/);
  }, 30_000);

  function startLoad(): void {
    testNo++;
    loadIds = Array.from({ length: 40 }, (_, n) => `load-${testNo}-${n}`);
    load = caller.batch<Reply>(
      loadIds.map((callId, n) => ({ kind: 'slow', identity: `load-${n % 10}`, method: 'hold', args: [callId, 50], timeoutMs: 20_000 })),
      60_000,
    );
  }

  it('drops garbage, refuses strangers and a stream that does not start with a handshake, and logs each', async () => {
    startLoad();
    const garbage = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(() => decodeFrame(garbage)).toThrow(); // it really is garbage

    // garbage first: dropped, and the stream still takes the handshake
    const p1 = open();
    p1.send(garbage);
    const ack1 = await p1.handshake(handshake('e2e'));
    expect(ack1).toMatchObject({ accepted: true, protocol: PROTOCOL_MAX, member: { memberId: target.address, address: target.address } });
    await target.waitFor((l) => /dropped a malformed frame from an unidentified peer at \S+: undecodable frame/.test(l.text), 10_000, 'the garbage log line');

    // a handshake for another cluster: refused, and told nothing more (this member logs why); stream closed
    const p2 = open();
    const ack2 = await p2.handshake(handshake('other-cluster'));
    expect(ack2).toMatchObject({ accepted: false, reason: 'refused', member: { memberId: '', address: '', kinds: [] } });
    expect(Buffer.concat(p2.raw).toString('latin1')).not.toMatch(/e2e|counter|127\.0\.0\.1/);
    expect(await p2.ended).toMatchObject({ code: OK });
    await target.waitFor(
      (l) => /Remote: refused member "raw-peer-\w+" \(client only, from [^)]+\): cluster "other-cluster" is not this member's cluster "e2e"/.test(l.text),
      10_000,
      'the refusal log line',
    );

    // another codec: refused
    const p3 = open();
    const ack3 = await p3.handshake(handshake('e2e', { codec: 'v8' }));
    expect(ack3).toMatchObject({ accepted: false, reason: 'refused' });
    await target.waitFor((l) => l.text.includes('codec "v8" differs'), 10_000, 'the codec log line');

    // requests before any handshake: refused, and never served
    const p4 = open();
    p4.send(requestBatch([{ id: 1, kind: 'counter', identity: 'sneaky', method: 'exec', args: ['sneaky-1'] }]));
    const ack4 = await p4.waitFrame((f) => 'handshakeAck' in f, 10_000, 'a refusal');
    expect(ack4).toMatchObject({ handshakeAck: { accepted: false, reason: 'refused' } });
    await p4.ended;
    await target.waitFor((l) => l.text.includes('the first frame was not a handshake'), 10_000, 'the first-frame log line');
    expect(p4.responses().size).toBe(0);
    await h!.readEvents();
    expect(h!.execEvents().filter((e) => e.callId === 'sneaky-1')).toEqual([]);
  }, 60_000);

  it('drops malformed batches and keeps the stream; answers wrong requests with the right statuses', async () => {
    startLoad();
    const peer = open();
    const hello = handshake('e2e');
    expect((await peer.handshake(hello)).accepted).toBe(true);
    const from = hello.member.memberId;

    // a string index out of range, an unknown status, garbage: each dropped and logged
    const outOfRange: Batch = {
      strings: ['counter'],
      requests: [{ id: 1, kind: 0, identity: 5, method: 0, args: codec.encode(['oob-1']), timeoutMs: 5_000, chain: [], targetIncarnation: 0 }],
      responses: [],
    };
    peer.send(encodeFrame({ batch: outOfRange }));
    const badStatus: Batch = {
      strings: [],
      requests: [],
      responses: [{ id: 7, status: 99 as Status, result: new Uint8Array(0), error: { name: 'X', message: 'x', code: '', origin: '', cycle: [] } }],
    };
    peer.send(encodeFrame({ batch: badStatus }));
    peer.send(new Uint8Array([0x1a, 0x05, 0x0a, 0x03])); // a batch whose length lies
    const dropped = (what: string) => (l: { text: string }) => l.text.includes(`dropped a malformed frame from member "${from}" at `) && l.text.includes(what);
    await target.waitFor(dropped(": identity index 5 outside the batch's 1 strings"), 10_000, 'the index log line');
    await target.waitFor(dropped(': unknown status 99'), 10_000, 'the status log line');
    await target.waitFor(dropped(': undecodable frame'), 10_000, 'the undecodable log line');

    // the same stream carries on: a valid call
    peer.send(requestBatch([{ id: 10, kind: 'counter', identity: 'raw-1', method: 'exec', args: ['raw-10'] }]));
    const first = (await peer.waitResponses([10])).get(10)!;
    expect(first.status).toBe(Status.OK);
    const reply = codec.decode(first.result) as Reply;
    expect(reply).toMatchObject({ kind: 'counter', identity: 'raw-1', member: target.address, count: 1 });

    // valid frames, wrong requests
    peer.send(
      requestBatch([
        { id: 11, kind: 'nope', identity: 'x', method: 'exec', args: ['never-11'] },
        { id: 12, kind: 'counter', identity: 'raw-1', method: 'noSuchMethod', args: ['never-12'] },
        { id: 13, kind: 'counter', identity: 'raw-1', method: '_private', args: [] },
        { id: 14, kind: 'counter', identity: 'raw-1', method: 'constructor', args: [] },
        { id: 15, kind: 'counter', identity: 'raw-1', method: 'exec', rawArgs: new Uint8Array([0xc1, 0xc1]) },
        { id: 16, kind: 'counter', identity: 'raw-1', method: 'exec', rawArgs: codec.encode('not a list') },
        { id: 17, kind: 'counter', identity: 'raw-1', method: 'exec', args: ['never-17'], timeoutMs: 0 },
        { id: 18, kind: 'counter', identity: 'raw-1', method: 'exec', args: ['never-18'], targetIncarnation: 'an-earlier-run' },
        { id: 19, kind: 'counter', identity: 'raw-1', method: 'fail', args: ['raw-19'] },
        // its own activation in the chain: A→A
        { id: 20, kind: 'counter', identity: 'raw-1', method: 'exec', args: ['never-20'], chain: [{ activationId: reply.activation, label: 'counter/raw-1' }] },
        // runs past its deadline
        { id: 21, kind: 'slow', identity: 'raw-slow', method: 'hold', args: ['raw-21', 1_500], timeoutMs: 300 },
        { id: 22, kind: 'counter', identity: 'raw-1', method: 'exec', args: ['raw-22'], targetIncarnation: target.ready!['incarnation'] as string },
        // no identity: a local caller cannot even make this call
        { id: 23, kind: 'counter', identity: '', method: 'exec', args: ['never-23'] },
      ]),
    );
    const r = await peer.waitResponses([11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]);
    const status = (id: number) => r.get(id)!.status;
    expect(status(11)).toBe(Status.NOT_HERE); // not hosted here: the caller resolves again
    expect(status(12)).toBe(Status.METHOD_NOT_CALLABLE);
    expect(status(13)).toBe(Status.METHOD_NOT_CALLABLE);
    expect(status(14)).toBe(Status.METHOD_NOT_CALLABLE);
    expect(status(15)).toBe(Status.BAD_REQUEST);
    expect(r.get(15)!.error!.message).toContain('undecodable arguments');
    expect(status(16)).toBe(Status.BAD_REQUEST);
    expect(r.get(16)!.error!.message).toContain('not a list');
    expect(status(17)).toBe(Status.EXPIRED);
    expect(status(18)).toBe(Status.NOT_HERE);
    expect(status(19)).toBe(Status.INVOCATION_FAILED);
    expect(r.get(19)!.error).toMatchObject({ name: 'RangeError', code: 'COUNTER_REFUSES', origin: 'counter/raw-1.fail' });
    expect(status(20)).toBe(Status.CALL_CYCLE);
    expect(r.get(20)!.error!.cycle).toEqual(['counter/raw-1', 'counter/raw-1']);
    expect(status(21)).toBe(Status.TIMEOUT);
    expect(status(22)).toBe(Status.OK);
    expect(codec.decode(r.get(22)!.result)).toMatchObject({ identity: 'raw-1', count: 3 }); // raw-10, raw-19, raw-22
    expect(status(23)).toBe(Status.BAD_REQUEST);
    // the dropped request got no answer
    expect(r.has(1)).toBe(false);

    // what ran: exactly the requests answered as having run, once each
    await h!.readEvents();
    const ran = target
      .execEvents()
      .filter((e) => /^(raw|never|oob)-/.test(e.callId))
      .map((e) => e.callId);
    expect(ran.sort()).toEqual(['raw-10', 'raw-19', 'raw-21', 'raw-22']);
  }, 60_000);

  it('refuses an oversized frame by closing that stream only', async () => {
    startLoad();
    const peer = open();
    expect((await peer.handshake(handshake('e2e'))).accepted).toBe(true);
    const big = requestBatch([{ id: 1, kind: 'counter', identity: 'big', method: 'exec', rawArgs: new Uint8Array(MAX_MESSAGE_SIZE + 1024) }]);
    peer.send(big);
    const ended = await peer.ended;
    expect(ended.code).toBe(RESOURCE_EXHAUSTED);
    expect(peer.responses().size).toBe(0);
    // a new stream is served as before
    const again = open();
    expect((await again.handshake(handshake('e2e'))).accepted).toBe(true);
    again.send(requestBatch([{ id: 2, kind: 'counter', identity: 'big', method: 'exec', args: ['big-2'] }]));
    expect((await again.waitResponses([2])).get(2)!.status).toBe(Status.OK);
    expect((await caller.call<Reply>('counter', 'big', 'exec', ['big-3'])) as Ok<Reply>).toMatchObject({ ok: true, value: { count: 2 } });
  }, 60_000);
});
