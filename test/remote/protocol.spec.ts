import { describe, expect, it } from 'vitest';
import { negotiate, PROTOCOL_MAX, PROTOCOL_MIN } from '../../lib/remote/protocol.js';

describe('protocol version negotiation', () => {
  it('picks the highest version both ranges hold when they overlap', () => {
    expect(negotiate({ min: 1, max: 3 }, { min: 2, max: 5 })).toBe(3);
    expect(negotiate({ min: 2, max: 5 }, { min: 1, max: 3 })).toBe(3);
  });

  it('picks the highest version of a range that lies inside the other', () => {
    expect(negotiate({ min: 1, max: 9 }, { min: 3, max: 4 })).toBe(4);
  });

  it('agrees on the single common version when the ranges only touch', () => {
    expect(negotiate({ min: 1, max: 2 }, { min: 2, max: 3 })).toBe(2);
  });

  it('finds no version when the ranges are disjoint, whichever side asks', () => {
    expect(negotiate({ min: 1, max: 1 }, { min: 2, max: 2 })).toBeUndefined();
    expect(negotiate({ min: 4, max: 6 }, { min: 1, max: 3 })).toBeUndefined();
  });

  it('keeps a rolling upgrade on the old version until every member speaks the new one', () => {
    const old = { min: 1, max: 1 };
    const upgraded = { min: 1, max: 2 };
    // old ↔ new talk on 1; new ↔ new move to 2; once the old ones are gone, raising MIN to 2 is safe
    expect(negotiate(old, upgraded)).toBe(1);
    expect(negotiate(upgraded, old)).toBe(1);
    expect(negotiate(upgraded, upgraded)).toBe(2);
    expect(negotiate({ min: 2, max: 2 }, upgraded)).toBe(2);
    expect(negotiate({ min: 2, max: 2 }, old)).toBeUndefined();
  });

  it('uses the shared top version when the ranges are equal', () => {
    expect(negotiate({ min: 1, max: 3 }, { min: 1, max: 3 })).toBe(3);
    expect(negotiate({ min: 5, max: 5 }, { min: 5, max: 5 })).toBe(5);
  });

  it("talks to another member of this build on this build's highest version", () => {
    const build = { min: PROTOCOL_MIN, max: PROTOCOL_MAX };
    expect(PROTOCOL_MIN).toBeLessThanOrEqual(PROTOCOL_MAX);
    expect(negotiate(build, build)).toBe(PROTOCOL_MAX);
  });
});
