import { describe, expect, it } from 'vitest';
import { GossipState, markMap } from '../../../lib/cluster/gossip/gossip-state.js';
import { decodeGossip, encodeGossip, GOSSIP_WIRE_LIMITS, type GossipMessage, GossipWireError } from '../../../lib/cluster/gossip/gossip-wire.js';

const bytes = (value: unknown) => Buffer.from(JSON.stringify(value));
const text = (value: Uint8Array | undefined) => (value === undefined ? undefined : Buffer.from(value).toString());
const anyone = () => true;

/** One push from `from` to `to` and its reply, as the gossiper does it (through the wire encoding). */
function exchange(from: GossipState, to: GossipState, seenByTo: Map<string, number> | undefined, listed = anyone): void {
  const push: GossipMessage = { states: from.delta(seenByTo ?? new Map(), 1 << 20, to.memberId), seen: from.watermarks(), reply: false };
  const received = decodeGossip(encodeGossip(push));
  to.merge(received, listed);
  const reply = decodeGossip(encodeGossip({ states: to.delta(received.seen, 1 << 20), seen: to.watermarks(), reply: true }));
  from.merge(reply, listed);
}

describe('GossipState', () => {
  it('spreads an origin’s changes, deletions included, through a relay', () => {
    const a = new GossipState('a', 'a1');
    const b = new GossipState('b', 'b1');
    const c = new GossipState('c', 'c1');
    a.setOwn('k', bytes(1));
    a.setOwn('gone', bytes('x'));
    exchange(a, b, undefined);
    a.setOwn('k', bytes(2));
    a.setOwn('gone', undefined);
    exchange(a, b, undefined);
    // c hears of a only through b.
    exchange(c, b, undefined);
    expect(text(c.value('a', 'k'))).toBe('2');
    expect(c.value('a', 'gone')).toBeUndefined();
    expect(c.watermarks().find((m) => m.memberId === 'a')?.sequence).toBe(4);
  });

  it('keeps only origins the member list names, by id and incarnation, and never takes its own state from a peer', () => {
    const a = new GossipState('a', 'a1');
    const b = new GossipState('b', 'b1');
    a.setOwn('k', bytes('from a'));
    const forged: GossipMessage = {
      states: [
        { memberId: 'a', incarnation: 'a1', after: 0, entries: [{ key: 'k', sequence: 1, value: bytes('x') }] },
        { memberId: 'stranger', incarnation: 's1', after: 0, entries: [{ key: 'k', sequence: 1, value: bytes('x') }] },
        { memberId: 'b', incarnation: 'b1', after: 0, entries: [{ key: 'k', sequence: 9, value: bytes('forged') }] },
      ],
      seen: [],
      reply: false,
    };
    const changes = b.merge(forged, (id, incarnation) => id === 'a' && incarnation === 'a0');
    expect(changes).toEqual([]);
    expect(b.value('a', 'k')).toBeUndefined();
    expect(b.value('stranger', 'k')).toBeUndefined();
    expect(b.value('b', 'k')).toBeUndefined();
    expect([...b.heldMembers()]).toEqual([]);
  });

  it('replaces what it held of a member when a new incarnation of it is listed', () => {
    const b = new GossipState('b', 'b1');
    b.merge(
      { states: [{ memberId: 'a', incarnation: 'a1', after: 0, entries: [{ key: 'k', sequence: 1, value: bytes(1) }] }], seen: [], reply: false },
      anyone,
    );
    const changes = b.merge(
      { states: [{ memberId: 'a', incarnation: 'a2', after: 0, entries: [{ key: 'j', sequence: 1, value: bytes(2) }] }], seen: [], reply: false },
      anyone,
    );
    expect(changes.map((c) => [c.key, text(c.value)])).toEqual([
      ['k', undefined],
      ['j', '2'],
    ]);
    expect(b.value('a', 'k')).toBeUndefined();
    expect(b.heldIncarnation('a')).toBe('a2');
  });

  it('takes nothing of a delta that starts after more than it holds: it never holds a later change without the earlier ones', () => {
    const b = new GossipState('b', 'b1');
    b.merge(
      { states: [{ memberId: 'a', incarnation: 'a1', after: 5, entries: [{ key: 'k', sequence: 7, value: bytes(1) }] }], seen: [], reply: false },
      anyone,
    );
    expect(b.value('a', 'k')).toBeUndefined();
    expect(b.watermarks().find((m) => m.memberId === 'a')?.sequence).toBe(0);
  });

  it('converges after a receiver forgot an origin that peers still think it holds (a provider flap, a restart at the same address)', () => {
    // O writes changes 1..5; change 3 is a user key. P1 holds up to 2, R up to 3.
    const o = new GossipState('o', 'o1');
    for (let i = 1; i <= 5; i++) o.setOwn(i === 3 ? 'user' : `k${i}`, bytes(i));
    const p1 = new GossipState('p1', 'p1a');
    const r = new GossipState('r', 'r1');
    const p3 = new GossipState('p3', 'p3a');
    const upTo = (n: number) => ({
      states: o.delta(new Map(), 1 << 20).map((st) => ({ ...st, entries: st.entries.filter((e) => e.sequence <= n) })),
      seen: [],
      reply: false,
    });
    p1.merge(upTo(2), anyone);
    r.merge(upTo(3), anyone);
    p3.merge(upTo(5), anyone);
    const rMarks = new Map(markMap(r.watermarks()));
    // The provider drops O for a moment: R forgets it; P3 still believes R holds up to 3.
    r.drop('o');
    r.merge(decodeGossip(encodeGossip({ states: p3.delta(rMarks, 1 << 20, 'r'), seen: p3.watermarks(), reply: false })), anyone);
    // R pulls from P1 (up to 2), then a newcomer N learns O through R, then from everyone.
    exchange(r, p1, undefined);
    const n = new GossipState('n', 'n1');
    exchange(n, r, undefined);
    for (let round = 0; round < 3; round++) for (const peer of [r, p1, p3, o]) exchange(n, peer, markMap(n.watermarks()));
    expect(text(n.value('o', 'user'))).toBe('3');
    expect(n.watermarks().find((m) => m.memberId === 'o')?.sequence).toBe(5);
    for (let i of [1, 2, 4, 5]) expect(text(n.value('o', `k${i}`))).toBe(String(i));
  });

  it('sends a prefix of an origin in sequence order when the budget is short, and the rest next time', () => {
    const a = new GossipState('a', 'a1');
    for (let i = 0; i < 10; i++) a.setOwn(`k${i}`, bytes('v'.repeat(100)));
    const first = a.delta(new Map(), 300);
    expect(first[0]!.entries.map((e) => e.sequence)).toEqual([1, 2]);
    const b = new GossipState('b', 'b1');
    b.merge({ states: first, seen: [], reply: false }, anyone);
    const rest = a.delta(b.watermarks(), 1 << 20);
    expect(rest[0]!.after).toBe(2);
    expect(rest[0]!.entries.map((e) => e.sequence)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('carries its values over to a new incarnation of its own, numbered anew', () => {
    const a = new GossipState('a', 'a1');
    a.setOwn('x', bytes(1));
    a.setOwn('y', bytes(2));
    a.setOwn('x', undefined);
    a.renewOwn('a2');
    expect(a.incarnation).toBe('a2');
    expect(a.watermarks()[0]).toEqual({ memberId: 'a', incarnation: 'a2', sequence: 1 });
    expect(text(a.value('a', 'y'))).toBe('2');
    expect(a.value('a', 'x')).toBeUndefined();
  });
});

describe('decodeGossip (untrusted bytes)', () => {
  it('refuses what gossip.proto and the limits do not allow, with a GossipWireError', () => {
    const valid = encodeGossip({
      states: [{ memberId: 'a', incarnation: 'a1', after: 0, entries: [{ key: 'k', sequence: 1, value: bytes(1) }] }],
      seen: [],
      reply: false,
    });
    expect(decodeGossip(valid).states[0]!.entries[0]!.key).toBe('k');
    const bad = (message: GossipMessage) => () => decodeGossip(encodeGossip(message));
    expect(bad({ states: [{ memberId: '', incarnation: 'a1', after: 0, entries: [] }], seen: [], reply: false })).toThrow(GossipWireError);
    expect(
      bad({ states: [{ memberId: 'a', incarnation: 'a1', after: 0, entries: [{ key: 'k', sequence: 0, value: bytes(1) }] }], seen: [], reply: false }),
    ).toThrow(/sequence number 0/);
    expect(
      bad({
        states: [
          { memberId: 'a', incarnation: 'a1', after: 0, entries: [{ key: 'k', sequence: 1, value: new Uint8Array(GOSSIP_WIRE_LIMITS.maxValueBytes + 1) }] },
        ],
        seen: [],
        reply: false,
      }),
    ).toThrow(/value of more than/);
    expect(bad({ states: [], seen: [{ memberId: 'a', incarnation: 'x'.repeat(GOSSIP_WIRE_LIMITS.maxNameLength + 1), sequence: 1 }], reply: false })).toThrow(
      GossipWireError,
    );
    const many = Array.from({ length: GOSSIP_WIRE_LIMITS.maxEntriesPerOrigin + 1 }, (_, i) => ({ key: `k${i}`, sequence: i + 1, value: undefined }));
    expect(bad({ states: [{ memberId: 'a', incarnation: 'a1', after: 0, entries: many }], seen: [], reply: false })).toThrow(GossipWireError);
    expect(() => decodeGossip(new Uint8Array(GOSSIP_WIRE_LIMITS.maxMessageBytes + 1))).toThrow(/more than/);
    expect(() => decodeGossip(Uint8Array.of(0x0a, 0xff, 0xff))).toThrow(GossipWireError);
  });

  it('turns random and mutated bytes into a valid message or a GossipWireError, never anything else', () => {
    let seed = 0x9e3779b9;
    const next = () => {
      seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      return seed;
    };
    const base = encodeGossip({
      states: [
        {
          memberId: 'a',
          incarnation: 'a1',
          after: 3,
          entries: [
            { key: 'k', sequence: 4, value: bytes({ n: 1 }) },
            { key: 'd', sequence: 5, value: undefined },
          ],
        },
      ],
      seen: [{ memberId: 'b', incarnation: 'b1', sequence: 2 ** 40 }],
      reply: true,
    });
    for (let i = 0; i < 3_000; i++) {
      const input =
        i % 2 === 0 ? Uint8Array.from({ length: next() % 64 }, () => next() & 0xff) : Uint8Array.from(base, (b) => (next() % 16 === 0 ? next() & 0xff : b));
      try {
        const message = decodeGossip(input);
        for (const state of message.states) {
          expect(state.memberId.length).toBeGreaterThan(0);
          expect(Number.isSafeInteger(state.after)).toBe(true);
          for (const entry of state.entries) expect(entry.sequence).toBeGreaterThan(0);
        }
      } catch (error) {
        expect(error, `input #${i}`).toBeInstanceOf(GossipWireError);
      }
    }
  });
});

describe('gossip.proto against the gossip wire types', () => {
  it('agree as shipped, and an edited proto is reported', async () => {
    const { readFileSync } = await import('node:fs');
    const protobuf = (await import('protobufjs')).default;
    const { contractDrift } = await import('../../../lib/remote/wire-contract.js');
    const { GOSSIP_CONTRACT } = await import('../../../lib/cluster/gossip/gossip-wire.js');
    const source = readFileSync(new URL('../../../proto/gossip.proto', import.meta.url), 'utf8');
    expect(contractDrift(protobuf.parse(source).root, GOSSIP_CONTRACT)).toEqual([]);
    const edited = source.replace('uint64 after = 3;', 'uint64 since = 3;');
    expect(edited).not.toBe(source);
    expect(contractDrift(protobuf.parse(edited).root, GOSSIP_CONTRACT)).toEqual([
      'message MemberState: field "after" of the TypeScript type is not in gossip.proto',
      'message MemberState: field "since" of gossip.proto is not in the TypeScript type',
    ]);
  });
});
