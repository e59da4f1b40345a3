import { describe, expect, it } from 'vitest';
import { PreferLocalPlacement } from '../../lib/cluster/placement/prefer-local-placement.js';
import { placementStrategy } from '../../lib/cluster/placement/placement.js';
import { HostingMembers, membersHosting, type PlacementStrategy } from '../../lib/cluster/placement/placement-strategy.js';
import { RandomPlacement } from '../../lib/cluster/placement/random-placement.js';
import { RendezvousPlacement, rendezvousOwner } from '../../lib/cluster/placement/rendezvous-placement.js';
import type { Member } from '../../lib/cluster/providers/cluster-provider.js';

const member = (id: string, kinds: string[] = ['account']): Member => ({ id, incarnation: `${id}-1`, address: `${id}:1`, kinds });
const ids = (n: number) => Array.from({ length: n }, (_, i) => member(`m${i}`));

describe('rendezvous placement', () => {
  const rendezvous = new RendezvousPlacement();

  it('gives every member the same owner whatever order it lists the members in', () => {
    const members = ids(5);
    const shuffled = [members[3]!, members[0]!, members[4]!, members[2]!, members[1]!];
    for (let i = 0; i < 200; i++) {
      expect(rendezvous.place('account', `a${i}`, shuffled, members[0]!)?.id).toBe(rendezvous.place('account', `a${i}`, members, members[2]!)?.id);
    }
  });

  it('spreads identities over the members roughly evenly', () => {
    const members = ids(4);
    const counts = new Map<string, number>();
    for (let i = 0; i < 4_000; i++) {
      const owner = rendezvous.place('account', `a${i}`, members, members[0]!)!.id;
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    expect(counts.size).toBe(4);
    for (const count of counts.values()) expect(count).toBeGreaterThan(800); // 1,000 each when even
  });

  it('moves only the identities of a member that leaves', () => {
    const members = ids(5);
    const before = new Map<string, string>();
    for (let i = 0; i < 1_000; i++) before.set(`a${i}`, rendezvous.place('account', `a${i}`, members, members[0]!)!.id);
    const remaining = members.filter((m) => m.id !== 'm2');
    for (const [identity, owner] of before) {
      const after = rendezvous.place('account', identity, remaining, members[0]!)!.id;
      if (owner !== 'm2') expect(after).toBe(owner);
      else expect(after).not.toBe('m2');
    }
  });

  it('places by kind as well as identity, and finds no owner among no candidates', () => {
    const members = ids(8);
    const differs = Array.from({ length: 50 }, (_, i) => rendezvousOwner(members, `account/x${i}`)!.id !== rendezvousOwner(members, `order/x${i}`)!.id);
    expect(differs.some(Boolean)).toBe(true);
    expect(rendezvous.place('account', 'a', [], member('self'))).toBeUndefined();
  });
});

describe('prefer-local and random placement', () => {
  it('prefer-local picks the asking member when it hosts the kind, else one of the candidates', () => {
    const members = ids(3);
    const preferLocal = new PreferLocalPlacement();
    expect(preferLocal.place('account', 'a', members, members[1]!)?.id).toBe('m1');
    const gateway = member('gateway', []);
    for (let i = 0; i < 20; i++) expect(members).toContain(preferLocal.place('account', `a${i}`, members, gateway));
  });

  it('prefer-local falls back to the strategy it is given', () => {
    const first: PlacementStrategy = { name: 'first', place: (_k, _i, candidates) => candidates[0] };
    expect(new PreferLocalPlacement(first).place('account', 'a', ids(3), member('gateway', []))?.id).toBe('m0');
  });

  it('random reaches every candidate', () => {
    const members = ids(3);
    const random = new RandomPlacement();
    const seen = new Set(Array.from({ length: 200 }, (_, i) => random.place('account', `a${i}`, members)!.id));
    expect(seen).toEqual(new Set(['m0', 'm1', 'm2']));
  });

  it('only members hosting the kind are candidates', () => {
    expect(membersHosting([member('a', ['account']), member('b', ['order']), member('c', ['order', 'account'])], 'account').map((m) => m.id)).toEqual([
      'a',
      'c',
    ]);
  });
});

describe('placementStrategy (the option)', () => {
  it('takes the built-in names and strategy objects, and refuses anything else with a typed error', () => {
    expect(placementStrategy('rendezvous', 'placement').name).toBe('rendezvous');
    expect(placementStrategy('random', 'placement').name).toBe('random');
    expect(placementStrategy('prefer-local', 'placement').name).toBe('prefer-local');
    const own: PlacementStrategy = { name: 'own', place: (_k, _i, candidates) => candidates[0] };
    expect(placementStrategy(own, 'placement')).toBe(own);
    expect(() => placementStrategy('nearest' as never, 'RedisIdentityLookup placement')).toThrow(/RedisIdentityLookup placement: "nearest" is not a placement/);
  });
});

describe('HostingMembers (the members hosting a kind, kept while membership does not change)', () => {
  const a: Member = { id: 'a', incarnation: '1', address: 'a:1', kinds: ['x', 'y'] };
  const b: Member = { id: 'b', incarnation: '1', address: 'b:1', kinds: ['y'] };

  it('answers the same frozen array for the same member list, and a new one once the list is another', () => {
    const hosting = new HostingMembers();
    const list = [a, b];
    const first = hosting.get(list, 'y');
    expect(first).toEqual([a, b]);
    expect(hosting.get(list, 'y')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(hosting.get(list, 'x')).toEqual([a]);
    const changed = [b];
    expect(hosting.get(changed, 'y')).toEqual([b]);
    expect(hosting.get(changed, 'x')).toEqual([]);
  });
});
