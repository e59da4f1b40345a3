import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Call } from '../../lib/actor/call.js';
import { now } from '../../lib/actor/clock.js';
import { BatchWriter, type WritableStream } from '../../lib/remote/batch-writer.js';
import { DEFAULT_MAX_REQUESTS_PER_BATCH, inspectFrame, NESTED_MESSAGES } from '../../lib/remote/inbound-limits.js';
import { escapeControls, PeerLog, quote } from '../../lib/remote/peer-log.js';
import { type Batch, decodeFrame, encodeFrame, type Frame, Status, type WireResponse } from '../../lib/remote/wire.js';
import { type CallOutcome, type MemberProcess, MemberHarness, ROOT } from '../support/member-harness.js';
import { collidingDoubles, setOfDoublesArgs } from '../support/colliding-doubles.js';
import { codec, handshake, RawPeer, requestBatch, type RequestSpec } from '../support/raw-peer.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';

const MiB = 1024 * 1024;
/** The victim's limit (the default): what a frame may be, gRPC framing aside. */
const MAX_MESSAGE_SIZE = 4 * MiB;
/** What the victim may stall under attack: a third of FAST_LEASE's 750 ms. */
const MAX_STALL_MS = 250;

/** A Batch frame around `inner`, the bytes of the Batch message, written by hand (nothing of ours would write it). */
function batchFrame(inner: Buffer): Buffer {
  const header = [0x1a];
  for (let v = inner.length; ; v >>>= 7) {
    if (v < 0x80) {
      header.push(v);
      break;
    }
    header.push((v & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from(header), inner]);
}

/** `count` copies of `bytes`. */
const repeat = (bytes: number[], count: number): Buffer => Buffer.alloc(bytes.length * count, Buffer.from(bytes));

// The attacks' payloads -------------------------------------------------------------------------

/** A frame of as many empty requests as fit in the largest frame (two million), written by hand. */
function emptyRequestsFrame(): Buffer {
  const flood = batchFrame(Buffer.concat([Buffer.from([0x0a, 0x00]), repeat([0x12, 0x00], (MAX_MESSAGE_SIZE - 64) / 2)]));
  expect(flood.length).toBeLessThanOrEqual(MAX_MESSAGE_SIZE);
  return flood;
}

/** One frame of `count` requests (ids 1..count), `spec(id)` each. */
const requestsFrame = (count: number, spec: (id: number) => Omit<RequestSpec, 'id'>): Buffer =>
  encodeFrame(requestBatch(Array.from({ length: count }, (_, n) => ({ id: n + 1, ...spec(n + 1) }))));

/** Arguments of 380 empty maps (the first argument a string): 10,000 of them fill a frame. */
function emptyObjectsArgs(first: string): Buffer {
  const count = 380;
  return Buffer.concat([Buffer.from([0xdc, count >> 8, count & 0xff]), codec.encode(first), Buffer.alloc(count - 1, 0x80)]);
}

/** Arguments of one list of four million empty maps: more than the codec's maxEntries. */
function oneListOfEmptyObjectsArgs(): Buffer {
  const n = MAX_MESSAGE_SIZE - 1_024;
  const list = Buffer.alloc(n + 5, 0x80);
  list[0] = 0xdd;
  list.writeUInt32BE(n, 1);
  return Buffer.concat([Buffer.from([0x91]), list]);
}

/** Not a frame: a varint that never ends. */
const GARBAGE = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);

describe('inbound limits, in this process', () => {
  it("inspectFrame's table of nested messages is remote.proto's", () => {
    const root = protobuf.loadSync(join(ROOT, 'proto', 'remote.proto'));
    const fromProto: Record<string, Record<number, string>> = {};
    for (const type of (root.lookup('nestjs_grains.remote.v1') as protobuf.Namespace).nestedArray) {
      if (!(type instanceof protobuf.Type)) continue;
      for (const field of type.fieldsArray) {
        field.resolve();
        if (field.resolvedType instanceof protobuf.Type) (fromProto[type.name] ??= {})[field.id] = field.resolvedType.name;
      }
    }
    expect(NESTED_MESSAGES).toEqual(fromProto);
  });

  it('passes what members write, and refuses frames over the limits before anything decodes them', () => {
    const hello = encodeFrame({ handshake: handshake('e2e', { member: { memberId: 'm', incarnation: 'i', address: 'a:1', kinds: ['k1', 'k2'] } }) });
    const chain = Array.from({ length: 10 }, (_, n) => ({ activationId: `a${n}`, label: `counter/${n}` }));
    const requests = requestBatch(
      // a chain on every tenth request: as a member writes them (batch-writer.ts splits frames of longer chains)
      Array.from({ length: 1_000 }, (_, n) => ({ id: n + 1, kind: 'counter', identity: `c${n}`, method: 'exec', args: [n], chain: n % 10 === 0 ? chain : [] })),
    );
    const responses: Frame = {
      batch: {
        strings: [],
        requests: [],
        responses: [
          { id: 1, status: Status.CALL_CYCLE, result: new Uint8Array(0), error: { name: 'E', message: 'm', code: 'c', origin: 'o', cycle: ['a', 'b'] } },
        ],
      },
    };
    for (const frame of [hello, encodeFrame(requests), encodeFrame(responses)]) {
      expect(inspectFrame(frame, 1_000)).toBeUndefined();
      expect(() => decodeFrame(frame)).not.toThrow();
    }
    // requests (and responses): up to the limit, whatever else the frame holds
    const empty = (n: number) => batchFrame(Buffer.concat([Buffer.from([0x0a, 0x00]), repeat([0x12, 0x00], n)]));
    expect(inspectFrame(empty(1_000), 1_000)).toBeUndefined();
    expect(inspectFrame(empty(1_001), 1_000)).toMatch(/more than 1000 requests in one frame/);
    // values in all: 16 per request allowed
    const strings = (n: number) => batchFrame(repeat([0x0a, 0x00], n));
    expect(inspectFrame(strings(16_000 - 1), 1_000)).toBeUndefined(); // + the batch's own tag
    expect(inspectFrame(strings(16_000), 1_000)).toMatch(/more than 16000 values/);
    // not protobuf: said so, as decodeFrame would
    expect(inspectFrame(Buffer.from([0x1a, 0x05, 0x0a, 0x03]), 1_000)).toMatch(/^undecodable frame/);
    expect(inspectFrame(Buffer.from([0x0b, 0x0c]), 1_000)).toMatch(/^undecodable frame: wire type 3/); // a group

    // as many empty requests as fit in the largest frame: refused in milliseconds, not decoded
    const flood = empty((MAX_MESSAGE_SIZE - 16) / 2);
    const started = performance.now();
    expect(inspectFrame(flood, DEFAULT_MAX_REQUESTS_PER_BATCH)).toMatch(/more than 10000 requests/);
    expect(performance.now() - started).toBeLessThan(50);
  });

  it('quotes what a peer sent: one line, escaped, bounded', () => {
    expect(quote('member-1')).toBe('"member-1"');
    expect(quote('x\n[nestjs-grains] error: fake')).toBe('"x\\n[nestjs-grains] error: fake"');
    expect(quote('\u001b[31mred\u001b[0m \u202eevil \u2028 \u0085 \ud800')).toBe('"\\u001b[31mred\\u001b[0m \\u202eevil \\u2028 \\u0085 \\ud800"');
    expect(quote('y'.repeat(MiB))).toBe(`"${'y'.repeat(200)}"… (${MiB} characters)`);
    expect(escapeControls('Remote 1.2.3.4:5 refused this member: no\r\n[nestjs-grains] error: fake \u202e \ud800')).toBe(
      'Remote 1.2.3.4:5 refused this member: no\\r\\n[nestjs-grains] error: fake \\u202e \\ud800',
    );
    expect(escapeControls('plain "quotes" and ünïcödé and 😀 stay')).toBe('plain "quotes" and ünïcödé and 😀 stay');
  });

  it('rate-limits the lines each peer causes, and all peers together, then says how many it suppressed', () => {
    let clock = 0;
    const lines: string[] = [];
    const log = new PeerLog((_level, message) => lines.push(message), { perPeer: 3, total: 5, windowMs: 10_000, now: () => clock });
    for (let n = 0; n < 10; n++) log.log('a', 'peer a', 'warn', `a${n}`);
    for (let n = 0; n < 10; n++) log.log('b', 'peer b', 'warn', `b${n}`);
    expect(lines).toEqual(['a0', 'a1', 'a2', 'b0', 'b1']); // 3 of a, then 5 in all
    clock = 10_000;
    log.log('a', 'peer a', 'warn', 'a-later');
    expect(lines.slice(5)).toEqual([
      'Remote: 8 more log lines caused by all peers together within 10 s suppressed',
      'Remote: 7 more log lines caused by peer a within 10 s suppressed',
      'a-later',
    ]);
    for (let n = 0; n < 4; n++) log.log('b', 'peer b', 'warn', `b-later${n}`);
    log.close();
    expect(lines.slice(8)).toEqual(['b-later0', 'b-later1', 'b-later2', 'Remote: 1 more log line caused by peer b within 10 s suppressed']);
  });

  it('BatchWriter: bounds the bytes queued, and splits writes of long call chains', async () => {
    const written: Batch[] = [];
    let accepting = false;
    let drain: (() => void) | undefined;
    const stream: WritableStream = {
      write: (chunk) => {
        const frame = decodeFrame(chunk);
        if ('batch' in frame) written.push(frame.batch);
        return accepting;
      },
      once: (_event, listener) => (drain = listener),
    };
    const writer = new BatchWriter(stream, 100_000, () => {}, 4 * MiB);
    const big = { id: 1, status: Status.OK, result: new Uint8Array(MiB) };
    expect([1, 2, 3, 4, 5].map((id) => writer.enqueueResponse({ ...big, id }))).toEqual([true, true, true, false, false]);
    expect(writer.queuedBytes).toBeGreaterThan(3 * MiB);
    await new Promise((resolve) => setImmediate(resolve));
    // one written (1 MiB per write), and the stream takes no more: half the bytes bound waits
    expect(written).toHaveLength(1);
    expect(writer.congested).toBe(true);
    expect(writer.enqueueResponse({ ...big, id: 6 })).toBe(true);
    expect(writer.enqueueResponse({ ...big, id: 7 })).toBe(false);
    accepting = true;
    drain!();
    await writer.flushed();
    expect(writer.queuedBytes).toBe(0);
    expect(writer.congested).toBe(false);
    expect(written.flatMap((b) => b.responses.map((r) => r.id))).toEqual([1, 2, 3, 6]);
    writer.close();

    written.length = 0;
    const chained = new BatchWriter(stream, 100_000);
    const chain = Array.from({ length: 10 }, (_, n) => ({ activationId: `a${n}`, label: `counter/${n}`, interleaved: false }));
    for (let n = 0; n < 1_000; n++) {
      const call = new Call(
        'counter',
        `c${n}`,
        `counter/c${n}`,
        'exec',
        [],
        now() + 10_000,
        10_000,
        chain,
        () => {},
        () => {},
      );
      chained.enqueueRequest({ id: n + 1, call, args: new Uint8Array([0x90]), targetIncarnation: '', address: 'x', written: false });
    }
    await chained.flushed();
    expect(written.length).toBeGreaterThan(1);
    expect(written.reduce((sum, b) => sum + b.requests.length, 0)).toBe(1_000);
    // each frame passes a reader that takes the least it may be configured to
    for (const batch of written) expect(inspectFrame(encodeFrame({ batch }), 1_000)).toBeUndefined();
  });
});

type Stall = { maxMs: number; p99Ms: number; samples: number };

/** Who is attacked, and the calls a legit caller keeps making meanwhile. */
interface Target {
  victim(): MemberProcess;
  /** The caller's `n`th call during attack `name` (one after another). */
  legit(name: string, n: number): Promise<CallOutcome>;
}

/**
 * The attacks' tools, for one victim: raw peers to it, and `underAttack`, which runs an attack
 * while the caller calls the victim, then checks the victim's longest event-loop stall
 * (measured inside it, `stall` of control.ts) and every call of the caller.
 */
function attackKit(target: Target) {
  const stalls: Record<string, number> = {};
  const peers: RawPeer[] = [];
  const open = (): RawPeer => {
    const peer = new RawPeer(target.victim().address);
    peers.push(peer);
    return peer;
  };
  const closePeers = () => {
    for (const p of peers.splice(0)) p.close();
  };

  /** Run `attack` while the caller calls the victim, one call after another; then check the stall and the calls. */
  async function underAttack(name: string, attack: () => Promise<void>): Promise<void> {
    const victim = target.victim();
    await victim.request({ cmd: 'stall' }); // reset
    let stop = false;
    const outcomes: CallOutcome[] = [];
    const load = (async () => {
      for (let n = 0; !stop || outcomes.length === 0; n++) {
        outcomes.push(await target.legit(name, n));
        await sleep(5);
      }
    })();
    await sleep(20);
    try {
      await attack();
      await sleep(50);
    } finally {
      stop = true;
      await load;
      closePeers();
    }
    const stall = (await victim.request({ cmd: 'stall' }))['value'] as Stall;
    stalls[name] = Math.round(stall.maxMs);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(stall.maxMs, `${name}: the victim's event loop stalled`).toBeLessThan(MAX_STALL_MS);
    expect(victim.alive, victim.tail()).toBe(true);
  }

  /** Wait for responses to requests 1..n (without listing them all when they do not come). */
  async function answered(peer: RawPeer, n: number, timeoutMs = 20_000): Promise<Map<number, WireResponse>> {
    let got = 0;
    await peer
      .until(
        () => {
          got = peer.responses().size;
          return got >= n;
        },
        timeoutMs,
        `${n} responses`,
      )
      .catch((error: Error) => {
        throw new Error(`${error.message}; ${got} responses came`);
      });
    return peer.responses();
  }

  async function accepted(): Promise<RawPeer> {
    const peer = open();
    expect((await peer.handshake(handshake('e2e'))).accepted).toBe(true);
    return peer;
  }

  /** 1,000 garbage frames on one stream (refused, and closed), then 8 each on `streams` more, 10 at a time. */
  async function garbage(streams: number): Promise<void> {
    const first = open();
    for (let n = 0; n < 1_000; n++) first.send(GARBAGE);
    const refused = await first.waitFrame((f) => 'handshakeAck' in f, 10_000, 'a refusal');
    expect(refused).toMatchObject({ handshakeAck: { accepted: false, reason: 'refused' } });
    await first.ended;
    for (let group = 0; group < streams / 10; group++) {
      const round = Array.from({ length: 10 }, () => open());
      for (const p of round) for (let n = 0; n < 8; n++) p.send(GARBAGE);
      await Promise.all(round.map((p) => p.ended));
      closePeers();
    }
  }

  return { stalls, open, closePeers, underAttack, answered, accepted, garbage };
}

/**
 * A member process (the victim) attacked over gRPC by a raw peer in this process, while a
 * member process (the caller) keeps calling it. Each attack: the victim's longest event-loop
 * stall (measured inside it), every call of the caller answered meanwhile, and nothing of
 * what was refused ran.
 */
describe('a member under hostile input from a peer', () => {
  let h: MemberHarness | undefined;
  let victim: MemberProcess;
  let caller: MemberProcess;
  const { stalls, open, closePeers, underAttack, answered, accepted, garbage } = attackKit({
    victim: () => victim,
    legit: (name, n) => caller.call('counter', `legit-${n % 4}`, 'exec', [`legit-${name}-${n}`], { timeoutMs: 5_000 }),
  });
  const ran = (prefix: string) => h!.execEvents().filter((e) => typeof e.callId === 'string' && e.callId.startsWith(prefix));
  const stderrLines = () => victim.lines.filter((l) => l.stream === 'stderr').map((l) => l.text);

  beforeAll(async () => {
    h = await MemberHarness.start([{ label: 'victim' }, { clientOnly: true, label: 'caller' }]);
    [victim, caller] = h.members as [MemberProcess, MemberProcess];
  }, 30_000);

  afterAll(async () => {
    closePeers();
    await h?.shutdown();
    // the measurements, for the record
    console.log(`victim's longest event-loop stall per attack (ms): ${JSON.stringify(stalls)}`);
  }, 30_000);

  it('a frame of as many empty requests as fit (two million): dropped unread; 10,001 real ones: dropped whole', async () => {
    // NOTE: frames are built before the attack, so that this process idles while the victim works
    const flood = emptyRequestsFrame();
    const over = requestsFrame(10_001, (id) => ({ kind: 'counter', identity: `over-${id}`, method: 'exec', args: [`over-${id}`] }));
    await underAttack('2M empty requests', async () => {
      const peer = await accepted();
      peer.send(flood);
      peer.send(over);
      // the stream carries on: a valid call after them is answered
      peer.send(requestBatch([{ id: 99_999, kind: 'counter', identity: 'after-flood', method: 'exec', args: ['after-flood-1'] }]));
      expect((await peer.waitResponses([99_999], 15_000)).get(99_999)!.status).toBe(Status.OK);
    });
    await victim.waitFor((l) => l.text.includes('more than 10000 requests in one frame'), 5_000, 'the log line of the dropped frame');
    await h!.readEvents();
    expect(ran('over-')).toEqual([]);
  }, 30_000);

  it('10,000 requests in one frame, each activating a grain: served in slices', async () => {
    const ids = Array.from({ length: 10_000 }, (_, n) => n + 1);
    const frame = encodeFrame(requestBatch(ids.map((id) => ({ id, kind: 'counter', identity: `many-${id}`, method: 'exec', args: [`many-${id}`] }))));
    await underAttack('10k activations', async () => {
      const peer = await accepted();
      peer.send(frame);
      const r = await answered(peer, ids.length);
      expect(ids.filter((id) => r.get(id)!.status !== Status.OK)).toEqual([]);
    });
  }, 40_000);

  it('a 1 MiB identity, in 10,000 requests: each answered BAD_REQUEST without repeating it; nothing runs', async () => {
    const identity = 'i'.repeat(MiB);
    const ids = Array.from({ length: 10_000 }, (_, n) => n + 1);
    const frame = encodeFrame(requestBatch(ids.map((id) => ({ id, kind: 'counter', identity, method: 'exec', args: [`huge-${id}`] }))));
    await underAttack('1 MiB identity', async () => {
      const peer = await accepted();
      peer.send(frame);
      const r = await answered(peer, ids.length);
      expect(ids.filter((id) => r.get(id)!.status !== Status.BAD_REQUEST)).toEqual([]);
      expect(r.get(1)!.error!.message).toMatch(/at most 1024 UTF-8 bytes/);
      expect(Math.max(...peer.raw.map((b) => b.length))).toBeLessThan(MiB); // never echoed
    });
    await h!.readEvents();
    expect(ran('huge-')).toEqual([]);
  }, 30_000);

  it('a 4 MiB frame of empty objects as arguments: served in slices', async () => {
    // 10,000 requests of 380 empty maps each: almost four million objects to decode in all
    const ids = Array.from({ length: 10_000 }, (_, n) => n + 1);
    const bytes = requestsFrame(ids.length, (id) => ({ kind: 'counter', identity: 'objects', method: 'exec', rawArgs: emptyObjectsArgs(`objects-${id}`) }));
    expect(bytes.length).toBeGreaterThan(4 * 1_000_000);
    expect(bytes.length).toBeLessThanOrEqual(MAX_MESSAGE_SIZE);
    await underAttack('4 MiB of empty objects', async () => {
      const peer = await accepted();
      peer.send(bytes);
      await answered(peer, ids.length);
    });
    // and one request holding a single list of four million empty objects: refused by the codec
    const one = requestsFrame(1, () => ({ kind: 'counter', identity: 'objects', method: 'exec', rawArgs: oneListOfEmptyObjectsArgs() }));
    await underAttack('one argument of 4M empty objects', async () => {
      const peer = await accepted();
      peer.send(one);
      const r = await peer.waitResponses([1], 15_000);
      expect(r.get(1)!.status).toBe(Status.BAD_REQUEST);
    });
  }, 60_000);

  it('a refused handshake reveals nothing of the member; the member logs why, escaped', async () => {
    const self = victim.ready!;
    const secrets = ['e2e', String(self['memberId']), String(self['incarnation']), victim.address, 'counter', 'slow', 'relay', 'grains-msgpack'];
    const refusals: Array<[string, (p: RawPeer) => void]> = [
      ['another cluster', (p) => p.send({ handshake: handshake('other-cluster') })],
      ['another codec', (p) => p.send({ handshake: handshake('e2e', { codec: 'v8' }) })],
      ['no common protocol', (p) => p.send({ handshake: handshake('e2e', { minProtocol: 90, maxProtocol: 99 }) })],
      ['a batch first', (p) => p.send(requestBatch([{ id: 1, kind: 'counter', identity: 'sneaky', method: 'exec', args: ['sneaky-1'] }]))],
      [
        'a log injection',
        (p) =>
          p.send({ handshake: handshake('other', { member: { memberId: 'evil\n[nestjs-grains] error: fake', incarnation: 'x', address: '', kinds: [] } }) }),
      ],
    ];
    await underAttack('refused handshakes', async () => {
      for (const [what, send] of refusals) {
        const peer = open();
        send(peer);
        await peer.ended;
        expect(peer.frames, what).toHaveLength(1);
        expect(peer.frames[0], what).toMatchObject({
          handshakeAck: { accepted: false, protocol: 0, member: { memberId: '', incarnation: '', address: '', kinds: [] }, reason: 'refused' },
        });
        const bytes = Buffer.concat(peer.raw).toString('latin1');
        for (const secret of secrets) expect(bytes, `${what}: ${secret}`).not.toContain(secret);
      }
    });
    await h!.readEvents();
    expect(ran('sneaky-')).toEqual([]);
    // the member says why, and what the peer claimed
    await victim.waitFor(
      (l) => /Remote: refused member "raw-peer-\w+" \(client only, from [^)]+\): cluster "other-cluster" is not this member's cluster "e2e"/.test(l.text),
      5_000,
      'the cluster refusal',
    );
    await victim.waitFor((l) => l.text.includes('codec "v8" differs'), 5_000, 'the codec refusal');
    await victim.waitFor((l) => l.text.includes('no common protocol version: the caller speaks 90..99'), 5_000, 'the protocol refusal');
    await victim.waitFor((l) => l.text.includes('the first frame was not a handshake'), 5_000, 'the batch-first refusal');
    const injected = await victim.waitFor((l) => l.text.includes('evil'), 5_000, 'the injection attempt');
    expect(injected.text).toContain('refused member "evil\\n[nestjs-grains] error: fake"');
    expect(stderrLines().filter((l) => l.startsWith('[nestjs-grains] error: fake'))).toEqual([]);
  }, 30_000);

  it('replaces the oldest of a member’s streams by a fifth, refuses a 17th on one connection, timeouts over 10 min and chains over 64 links', async () => {
    await underAttack('streams and shapes', async () => {
      const member = handshake('e2e');
      const four = Array.from({ length: 4 }, () => open());
      for (const p of four) expect((await p.handshake(member)).accepted).toBe(true);
      // a fifth of the same member is let in (its connections may have died unnoticed), and its oldest is closed
      const fifth = open();
      expect((await fifth.handshake(member)).accepted).toBe(true);
      await victim.waitFor((l) => l.text.includes('a newer stream of the same member replaces it'), 5_000, 'the oldest stream closed');
      await four[0]!.ended; // the oldest, ended by the victim
      expect(four.slice(1).every((p) => p.status === undefined)).toBe(true);
      closePeers();
      await sleep(200); // the victim sees them closed

      // RawPeers of this process share one connection (grpc-js): 16 streams on it, then a 17th
      const sixteen = Array.from({ length: 16 }, () => open());
      await Promise.all(sixteen.map(async (p) => expect((await p.handshake(handshake('e2e'))).accepted).toBe(true)));
      const extra = open();
      expect(await extra.handshake(handshake('e2e'))).toMatchObject({ accepted: false, reason: 'refused' });
      await victim.waitFor((l) => l.text.includes('more than 16 open streams on one connection'), 5_000, 'the per-connection refusal');
      closePeers();

      const peer = await accepted();
      const chain = (n: number) => Array.from({ length: n }, (_, i) => ({ activationId: `peer-${i}`, label: `counter/link-${i}` }));
      peer.send(
        requestBatch([
          { id: 1, kind: 'counter', identity: 'shape', method: 'exec', args: ['shape-1'], timeoutMs: 10 * 60_000 + 1 },
          { id: 2, kind: 'counter', identity: 'shape', method: 'exec', args: ['shape-2'], chain: chain(65) },
          { id: 3, kind: 'c'.repeat(4_096), identity: 'shape', method: 'exec', args: ['shape-3'] },
          { id: 4, kind: 'counter', identity: 'shape', method: 'exec', args: ['shape-4'], timeoutMs: 10 * 60_000, chain: chain(64) },
        ] satisfies Array<Parameters<typeof requestBatch>[0][number]>),
      );
      const r = await peer.waitResponses([1, 2, 3, 4]);
      expect([1, 2, 3, 4].map((id) => r.get(id)!.status)).toEqual([Status.BAD_REQUEST, Status.BAD_REQUEST, Status.BAD_REQUEST, Status.OK]);
      expect(r.get(1)!.error!.message).toContain('maxTimeoutMs');
      expect(r.get(2)!.error!.message).toContain('maxChainLength');
    });
    await h!.readEvents();
    expect(ran('shape-').map((e) => e.callId)).toEqual(['shape-4']);
  }, 30_000);

  it('1,000 garbage frames without a handshake: the stream is closed after 8, and the log stays short', async () => {
    const before = stderrLines().length;
    // the same from 120 more streams, 10 at a time: 8 frames each, and the log lines they cause are capped
    await underAttack('1,000 garbage frames', () => garbage(120));
    const caused = stderrLines()
      .slice(before)
      .filter((l) => l.includes('an unidentified peer at'));
    expect(caused.length).toBeGreaterThan(8);
    // 20 per peer per 10 s, and perhaps the line saying how many more were suppressed
    expect(caused.length).toBeLessThanOrEqual(21);
  }, 30_000);
});

/** The built Redis member (test/support/members/redis-member.ts): kind `list`, its state in Redis. */
const REDIS_MEMBER_SCRIPT = join(ROOT, 'dist', 'test', 'support', 'members', 'redis-member.js');
/** The keys of cluster `e2e` (lib/cluster/identity/redis/redis-keys.ts; the grain's own in redis-member.ts). */
const TAG = '{grains:e2e}';

/**
 * The same attacks on a member of the Redis identity lookup (FAST_LEASE: a stall of 750 ms
 * lapses its lease, and it rejoins as a new incarnation), while a client-only member keeps
 * appending to its grains: it stalls as little, its lease holds, and nothing is stored in
 * Redis for what it refused — no entry, no activation, no data.
 */
describe('a Redis member under hostile input: its lease holds, nothing is stored for refused calls', () => {
  let redis: RedisHandle | undefined;
  let h: MemberHarness | undefined;
  let victim: MemberProcess;
  let caller: MemberProcess;
  let incarnation: string;
  /** What the caller appended (and was told so), by identity, in order. */
  const appended = new Map<string, string[]>();
  const { stalls, closePeers, underAttack, answered, accepted, garbage } = attackKit({
    victim: () => victim,
    legit: async (name, n) => {
      const identity = `legit-${n % 4}`;
      const element = `legit-${name}-${n}`;
      const outcome = await caller.call('list', identity, 'append', [element], { timeoutMs: 5_000 });
      if (outcome.ok) (appended.get(identity) ?? appended.set(identity, []).get(identity)!).push(element);
      return outcome;
    },
  });
  const MiBIdentity = 'i'.repeat(MiB);
  /** The identities that may hold anything in Redis: the caller's, and those of the calls the victim served. */
  const served = () => [...appended.keys(), 'after-flood', 'objects', 'flood-max', 'flood-streams'];
  /** Turns the victim's grains ran whose operation starts with `prefix`. */
  const turns = (prefix: string) => victim.events.filter((e) => e['event'] === 'turn' && String(e['op']).startsWith(prefix));

  beforeAll(async () => {
    redis = await startRedis({ label: 'hostile-input' });
    const spec = (label: string, clientOnly = false) => ({ script: REDIS_MEMBER_SCRIPT, label, clientOnly, env: { REDIS_URL: redis!.url, LEASE: 'fast' } });
    h = await MemberHarness.start([spec('redis-victim'), spec('redis-caller', true)]);
    [victim, caller] = h.members as [MemberProcess, MemberProcess];
    incarnation = String(victim.ready!['incarnation']);
  }, 30_000);

  afterAll(async () => {
    closePeers();
    await h?.shutdown();
    await redis?.stop();
    console.log(`Redis victim's longest event-loop stall per attack (ms): ${JSON.stringify(stalls)}`);
  }, 30_000);

  it('a frame of two million empty requests: dropped unread; 10,001 appends: dropped whole', async () => {
    const flood = emptyRequestsFrame();
    const over = requestsFrame(10_001, (id) => ({ kind: 'list', identity: `over-${id}`, method: 'append', args: [`over-${id}`] }));
    await underAttack('2M empty requests', async () => {
      const peer = await accepted();
      peer.send(flood);
      peer.send(over);
      peer.send(requestBatch([{ id: 99_999, kind: 'list', identity: 'after-flood', method: 'append', args: ['after-flood-1'] }]));
      expect((await peer.waitResponses([99_999], 15_000)).get(99_999)!.status).toBe(Status.OK);
    });
    await victim.waitFor((l) => l.text.includes('more than 10000 requests in one frame'), 5_000, 'the log line of the dropped frame');
    expect(turns('over-')).toEqual([]);
  }, 30_000);

  it('a 1 MiB identity, in 10,000 appends: each answered BAD_REQUEST; nothing runs', async () => {
    const frame = requestsFrame(10_000, (id) => ({ kind: 'list', identity: MiBIdentity, method: 'append', args: [`huge-${id}`] }));
    await underAttack('1 MiB identity', async () => {
      const peer = await accepted();
      peer.send(frame);
      const r = await answered(peer, 10_000);
      expect([...r.values()].filter((response) => response.status !== Status.BAD_REQUEST)).toEqual([]);
      expect(r.get(1)!.error!.message).toMatch(/at most 1024 UTF-8 bytes/);
    });
    expect(turns('huge-')).toEqual([]);
  }, 30_000);

  it('a 4 MiB frame of empty objects as arguments: served; one argument of 4M empty objects: refused by the codec', async () => {
    // `read` answers from memory: the arguments' decoding is the work (append would write each to Redis)
    const bytes = requestsFrame(10_000, (id) => ({ kind: 'list', identity: 'objects', method: 'read', rawArgs: emptyObjectsArgs(`objects-${id}`) }));
    expect(bytes.length).toBeLessThanOrEqual(MAX_MESSAGE_SIZE);
    await underAttack('4 MiB of empty objects', async () => {
      const peer = await accepted();
      peer.send(bytes);
      const r = await answered(peer, 10_000);
      expect([...r.values()].filter((response) => response.status !== Status.OK)).toEqual([]);
    });
    const one = requestsFrame(1, () => ({ kind: 'list', identity: 'objects-refused', method: 'append', rawArgs: oneListOfEmptyObjectsArgs() }));
    await underAttack('one argument of 4M empty objects', async () => {
      const peer = await accepted();
      peer.send(one);
      const r = await peer.waitResponses([1], 15_000);
      expect(r.get(1)!.status).toBe(Status.BAD_REQUEST);
      expect(r.get(1)!.error!.message).toContain('maxEntries');
    });
  }, 40_000);

  it('hash flooding: Sets of 60,000 colliding doubles appended: refused by the codec before any is hashed', async () => {
    // seven such arguments (527 KiB each) fill a frame; unchecked, each kept a member busy for seconds
    const args = setOfDoublesArgs(collidingDoubles(60_000));
    const frame = requestsFrame(7, (id) => ({ kind: 'list', identity: `flood-refused-${id}`, method: 'append', rawArgs: args }));
    expect(frame.length).toBeLessThanOrEqual(MAX_MESSAGE_SIZE);
    await underAttack('Sets of 60,000 colliding doubles', async () => {
      const peer = await accepted();
      peer.send(frame);
      const r = await answered(peer, 7);
      expect([...r.values()].map((response) => response.status)).toEqual(Array(7).fill(Status.BAD_REQUEST));
      expect(r.get(1)!.error!.message).toContain('maxSetSize');
    });
  }, 30_000);

  it('hash flooding: a frame of appends of the largest Set of colliding doubles the codec takes (4096), ~20 ms each to decode', async () => {
    const args = setOfDoublesArgs(collidingDoubles(4_096));
    const count = Math.floor((MAX_MESSAGE_SIZE - 1_024) / (args.length + 32));
    const frame = requestsFrame(count, () => ({ kind: 'list', identity: 'flood-max', method: 'append', rawArgs: args }));
    expect(frame.length).toBeLessThanOrEqual(MAX_MESSAGE_SIZE);
    await underAttack(`${count} Sets of 4096 colliding doubles`, async () => {
      const peer = await accepted();
      peer.send(frame);
      const r = await answered(peer, count);
      expect([...r.values()].filter((response) => response.status !== Status.OK)).toEqual([]);
    });
  }, 30_000);

  it('many streams at once (64 on 4 connections, 2 of those Sets each): one budget for all, not one per stream', async () => {
    const args = setOfDoublesArgs(collidingDoubles(4_096));
    const frame = requestsFrame(2, () => ({ kind: 'list', identity: 'flood-streams', method: 'append', rawArgs: args }));
    await underAttack('64 streams of Sets of colliding doubles', async () => {
      const peers = Array.from({ length: 64 }, (_, i) => new RawPeer(victim.address, 1 + (i % 4)));
      try {
        await Promise.all(peers.map((p) => p.handshake(handshake('e2e'))));
        for (const p of peers) p.send(frame);
        const answers = await Promise.all(peers.map((p) => answered(p, 2)));
        expect(answers.flatMap((r) => [...r.values()]).filter((response) => response.status !== Status.OK)).toEqual([]);
      } finally {
        for (const p of peers) p.close();
      }
    });
  }, 60_000);

  it('1,000 garbage frames without a handshake, and 8 each on 40 more streams: closed', async () => {
    await underAttack('1,000 garbage frames', () => garbage(40));
  }, 30_000);

  it('after the attacks: the same incarnation, nothing fenced, its lease live; the appends stored; nothing of the refused calls', async () => {
    const { incarnation: current, stats } = (await victim.request({ cmd: 'stats' }))['value'] as { incarnation: string; stats: { fenced: number } };
    expect(current, 'a lapsed lease makes the member rejoin as a new incarnation').toBe(incarnation);
    expect(stats.fenced).toBe(0);
    expect(Number(await redis!.command('PTTL', `${TAG}:lease:${incarnation}`))).toBeGreaterThan(0);
    expect(victim.stderr()).not.toMatch(/RedisIdentityLookup: .*rejoining|joining failed/);

    // every append the caller was told of is stored, in order
    expect(appended.size).toBe(4);
    for (const [identity, elements] of appended) {
      const stored = (await redis!.command('HGET', `${TAG}:testlist:${identity}`, 'list')) as string | null;
      expect(JSON.parse(stored ?? '[]'), identity).toEqual(elements);
    }
    // the identities anything is stored for (entries, activation sets, the grain's data): only those served
    const keys = ((await redis!.command('KEYS', `${TAG}:*`)) as string[]).map(String);
    const identityOf = (key: string) => /^\{grains:e2e\}:(?:ci:list\/|testlist:|testhist:)([\s\S]*)$/.exec(key)?.[1];
    const stored = new Set(keys.map(identityOf).filter((id): id is string => id !== undefined));
    for (const key of keys.filter((k) => k.startsWith(`${TAG}:acts:`))) {
      for (const name of (await redis!.command('SMEMBERS', key)) as string[]) stored.add(String(name).replace(/^list\//, ''));
    }
    expect([...stored].filter((id) => !served().includes(id)).map((id) => (id.length > 64 ? `${id.slice(0, 64)}… (${id.length})` : id))).toEqual([]);
    expect(keys.filter((k) => k.length > 1_024).length, 'a key of the 1 MiB identity').toBe(0);
    for (const id of ['after-flood', 'objects', 'flood-max', 'flood-streams']) expect(stored.has(id), id).toBe(true);
    expect(JSON.parse(String(await redis!.command('HGET', `${TAG}:testlist:after-flood`, 'list')))).toEqual(['after-flood-1']);
    // the refused calls ran no turn either
    expect(turns('huge-').length + turns('over-').length).toBe(0);
    expect(victim.events.filter((e) => e['event'] === 'activate' && !served().includes(String(e['identity'])))).toEqual([]);
  }, 20_000);
});
