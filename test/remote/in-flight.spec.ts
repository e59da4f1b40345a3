import { describe, expect, it } from 'vitest';
import type { Call } from '../../lib/actor/call.js';
import type { OutboundRequest } from '../../lib/remote/envelopes.js';
import { InFlightRequests, MAX_SLOTS } from '../../lib/remote/in-flight.js';
import { prng } from '../support/prng.js';

function request(id: number): OutboundRequest {
  return { id, call: {} as Call, args: new Uint8Array(0), targetIncarnation: '', address: 'a:1', written: false };
}

describe('InFlightRequests (the requests on a stream, by id)', () => {
  it('finds, takes once and forgets requests by id', () => {
    const table = new InFlightRequests();
    const a = request(1);
    const b = request(2);
    table.add(a);
    table.add(b);
    expect(table.size).toBe(2);
    expect(table.get(1)).toBe(a);
    expect(table.take(2)).toBe(b);
    expect(table.take(2)).toBeUndefined();
    expect(table.get(2)).toBeUndefined();
    expect(table.get(3)).toBeUndefined();
    expect(table.size).toBe(1);
    expect(table.list()).toEqual([a]);
    table.clear();
    expect(table.size).toBe(0);
    expect(table.get(1)).toBeUndefined();
  });

  it('keeps a request whose slot is taken (an id 64 Ki later while the older one waits), and both stay reachable', () => {
    const table = new InFlightRequests();
    const old = request(5);
    table.add(old);
    // NOTE: the table is at its smallest, so these ids share slot 5 with the old one.
    const same = [request(5 + 64), request(5 + 128), request(5 + MAX_SLOTS)];
    for (const r of same) table.add(r);
    for (const r of [old, ...same]) expect(table.get(r.id)).toBe(r);
    expect(table.take(5 + 128)).toBe(same[1]);
    expect(table.take(5)).toBe(old);
    expect(table.get(5 + 64)).toBe(same[0]);
    expect(table.get(5 + MAX_SLOTS)).toBe(same[2]);
    expect(table.size).toBe(2);
    expect(table.list()).toEqual([same[0], same[2]]);
  });

  it('a response naming an id that was never sent, or was sent to another slot, finds nothing', () => {
    const table = new InFlightRequests();
    table.add(request(7));
    expect(table.get(7 + 64)).toBeUndefined();
    expect(table.take(7 + 64)).toBeUndefined();
    expect(table.size).toBe(1);
  });

  it('agrees with a Map over a long run of sequential ids with stragglers, growth and wrap-around', () => {
    const random = prng(42);
    const table = new InFlightRequests();
    const model = new Map<number, OutboundRequest>();
    // NOTE: ids wrap at 2^32 as the endpoint's do; starting near the top crosses it.
    let next = 0xffff_ff00;
    for (let step = 0; step < 100_000; step++) {
      const roll = random();
      if (roll < 0.52 || model.size === 0) {
        next = (next + 1) >>> 0;
        const r = request(next);
        table.add(r);
        model.set(r.id, r);
      } else {
        // Mostly the oldest (responses come back roughly in order), sometimes any, sometimes an unknown id.
        const ids = [...model.keys()];
        const pick = roll < 0.9 ? ids[0]! : roll < 0.99 ? ids[Math.floor(random() * ids.length)]! : (next + 1 + Math.floor(random() * 1000)) >>> 0;
        expect(table.take(pick)).toBe(model.get(pick));
        model.delete(pick);
      }
      if (step % 5_000 === 0) {
        expect(table.size).toBe(model.size);
        // NOTE: a Map lists in insertion order, which is send (id) order: so must the table.
        expect(table.list()).toEqual([...model.values()]);
        for (const [id, r] of model) expect(table.get(id)).toBe(r);
      }
    }
    expect(table.size).toBe(model.size);
    for (const [id, r] of model) expect(table.take(id)).toBe(r);
    expect(table.size).toBe(0);
    expect(table.list()).toEqual([]);
  });

  it('lists oldest first across a wrap of the slots and of the 32-bit ids', () => {
    const table = new InFlightRequests();
    for (const id of [63, 64]) table.add(request(id));
    expect(table.list().map((r) => r.id)).toEqual([63, 64]);
    const wrapped = new InFlightRequests();
    for (const id of [0xffff_fffe, 0xffff_ffff, 0, 1]) wrapped.add(request(id));
    expect(wrapped.list().map((r) => r.id)).toEqual([0xffff_fffe, 0xffff_ffff, 0, 1]);
  });

  it('past its largest size (requests in the overflow map), still agrees with a Map', () => {
    const table = new InFlightRequests();
    const model = new Map<number, OutboundRequest>();
    let next = 0xffff_ffff - MAX_SLOTS - 10;
    for (let i = 0; i < MAX_SLOTS + 5_000; i++) {
      next = (next + 1) >>> 0;
      const r = request(next);
      table.add(r);
      model.set(r.id, r);
    }
    expect(table.size).toBe(model.size);
    const random = prng(7);
    for (const id of [...model.keys()]) {
      if (random() < 0.9) {
        expect(table.take(id)).toBe(model.get(id));
        model.delete(id);
      }
    }
    expect(table.list()).toEqual([...model.values()]);
    for (const [id, r] of model) expect(table.get(id)).toBe(r);
  });
});
