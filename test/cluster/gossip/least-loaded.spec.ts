import { describe, expect, it } from 'vitest';
import type { MemberLoad } from '../../../lib/cluster/gossip/gossiper.js';
import { LeastLoadedPlacement } from '../../../lib/cluster/placement/least-loaded-placement.js';
import type { Member } from '../../../lib/cluster/providers/cluster-provider.js';

const member = (id: string): Member => ({ id, incarnation: `${id}-1`, address: `${id}:1`, kinds: ['k'] });
const load = (activations: number): MemberLoad => ({ activations, activationsByKind: { k: activations }, mailboxDepth: 0, callsPerSecond: 0 });

describe('LeastLoadedPlacement', () => {
  const [a, b, c] = [member('a'), member('b'), member('c')];

  it('fills the least-loaded members first, counting its own placements until the next heartbeat', () => {
    const loads = new Map([
      ['a', load(10)],
      ['b', load(4)],
      ['c', load(0)],
    ]);
    const placement = new LeastLoadedPlacement();
    const placed = Array.from({ length: 14 }, () => placement.place('k', 'x', [a, b, c], a, { load: (id) => loads.get(id) })!.id);
    const count = (id: string) => placed.filter((p) => p === id).length;
    // c takes 4 to reach b's 4, then b and c share the next 10 until both reach a's 10; a takes none.
    expect(count('a')).toBe(0);
    expect(count('b')).toBe(5);
    expect(count('c')).toBe(9);
  });

  it('starts counting again from a new heartbeat', () => {
    let loads = new Map([
      ['a', load(0)],
      ['b', load(0)],
    ]);
    const placement = new LeastLoadedPlacement();
    for (let i = 0; i < 4; i++) placement.place('k', `x${i}`, [a, b], a, { load: (id) => loads.get(id) });
    // The heartbeats now report what was placed, and b gained 10 more from elsewhere.
    loads = new Map([
      ['a', load(2)],
      ['b', load(12)],
    ]);
    const next = Array.from({ length: 5 }, () => placement.place('k', 'y', [a, b], a, { load: (id) => loads.get(id) })!.id);
    expect(next).toEqual(['a', 'a', 'a', 'a', 'a']);
  });

  it('places at random without any load (no gossip, or before the first heartbeats)', () => {
    const placement = new LeastLoadedPlacement();
    const seen = new Set(Array.from({ length: 60 }, (_, i) => placement.place('k', `z${i}`, [a, b, c], a)!.id));
    expect(seen).toEqual(new Set(['a', 'b', 'c']));
    expect(placement.place('k', 'none', [], a)).toBeUndefined();
  });
});
