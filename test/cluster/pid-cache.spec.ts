import { describe, expect, it } from 'vitest';
import { PidCache } from '../../lib/cluster/pid-cache.js';

const pid = (memberId: string, address: string, incarnation = 'i1') => ({ memberId, address, incarnation, id: '' });

describe('PidCache', () => {
  it('evicts the oldest entry beyond its size and counts hits and misses', () => {
    const cache = new PidCache(2);
    cache.set('a', pid('m1', 'h:1'));
    cache.set('b', pid('m1', 'h:1'));
    cache.set('c', pid('m2', 'h:2'));
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('c')?.memberId).toBe('m2');
    expect({ size: cache.size, hits: cache.hits, misses: cache.misses }).toEqual({ size: 2, hits: 1, misses: 1 });
  });

  it('drops every entry at an address whose connection failed, and only those', () => {
    const cache = new PidCache();
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, pid(i % 2 ? 'm1' : 'm2', i % 2 ? 'h:1' : 'h:2'));
    cache.dropAddress('h:1');
    expect(cache.size).toBe(50);
    expect(cache.get('k1')).toBeUndefined();
    expect(cache.get('k2')?.address).toBe('h:2');
    cache.set('k1', pid('m3', 'h:3')); // re-resolved elsewhere
    cache.dropAddress('h:1');
    expect(cache.get('k1')?.address).toBe('h:3');
  });

  it("drops a member's entries of other incarnations when it is seen again", () => {
    const cache = new PidCache();
    cache.set('old', pid('m1', 'h:1', 'i1'));
    cache.set('new', pid('m1', 'h:1', 'i2'));
    cache.dropMember('m1', 'i2');
    expect(cache.get('old')).toBeUndefined();
    expect(cache.get('new')?.incarnation).toBe('i2');
  });
});
