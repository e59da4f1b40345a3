import { describe, expect, it } from 'vitest';
import {
  checkEpochHistory,
  checkListAppend,
  parseEpochOps,
  findActivationOverlaps,
  type ListViolation,
  parseJsonLines,
  parseTurnLog,
  type TurnRecord,
  turnRecordsFrom,
} from '../support/turn-checker.js';

function turn(identity: string, activationId: string, start: number, end: number, member = 'm1'): TurnRecord {
  return { identity, activationId, start: BigInt(start), end: BigInt(end), member };
}

describe('findActivationOverlaps', () => {
  it('passes a clean log: one activation at a time per identity, handed over between members', () => {
    const log = [
      turn('a', 'act-1', 0, 10, 'm1'),
      turn('a', 'act-1', 11, 20, 'm1'),
      turn('a', 'act-2', 21, 30, 'm2'), // the next activation starts after the last turn of the first
      turn('b', 'act-3', 5, 25, 'm2'), // another identity at the same time: fine
      turn('a', 'act-2', 31, 40, 'm2'),
    ];
    expect(findActivationOverlaps(log)).toEqual([]);
  });

  it('ignores overlapping turns of ONE activation (interleaving)', () => {
    expect(findActivationOverlaps([turn('a', 'act-1', 0, 100), turn('a', 'act-1', 10, 20), turn('a', 'act-1', 50, 150)])).toEqual([]);
  });

  it('reports turns of two activations of one identity that overlap, with details', () => {
    const first = turn('a', 'act-1', 100, 200, 'm1');
    const second = turn('a', 'act-2', 150, 300, 'm2');
    const overlaps = findActivationOverlaps([second, turn('b', 'x', 0, 1000), first]);
    expect(overlaps).toHaveLength(1);
    expect(overlaps[0]).toMatchObject({ identity: 'a', first, second, overlapNs: 50n });
    expect(overlaps[0]!.message).toBe('a: activation act-1 on m1 [100, 200] overlaps activation act-2 on m2 [150, 300] by 50 ns');
  });

  it('counts intervals that touch or nest, and finds overlaps hidden behind a long turn', () => {
    const long = turn('a', 'act-1', 0, 1_000);
    const overlaps = findActivationOverlaps([
      long,
      turn('a', 'act-1', 1_001, 1_002),
      turn('a', 'act-2', 500, 510), // nested in the long turn
      turn('a', 'act-3', 1_000, 1_005), // touches it at 1000 (closed intervals) and overlaps 1001..1002
    ]);
    const pairs = overlaps.map((o) => `${o.first.activationId}@${o.first.start}/${o.second.activationId}@${o.second.start}:${o.overlapNs}`);
    expect(pairs.sort()).toEqual(['act-1@0/act-2@500:10', 'act-1@0/act-3@1000:0', 'act-3@1000/act-1@1001:1'].sort());
  });

  it('handles hrtime values beyond 2^53 exactly', () => {
    const base = 2n ** 60n;
    const a = { identity: 'a', activationId: 'x', start: base, end: base + 1n, member: 'm1' };
    const b = { identity: 'a', activationId: 'y', start: base + 2n, end: base + 3n, member: 'm2' };
    expect(findActivationOverlaps([a, b])).toEqual([]);
    expect(findActivationOverlaps([a, { ...b, start: base + 1n }])).toHaveLength(1);
  });

  it('rejects a turn that ends before it starts', () => {
    expect(() => findActivationOverlaps([turn('a', 'x', 10, 5)])).toThrow(/ends before it starts/);
  });
});

describe('checkListAppend', () => {
  const appends = (identity: string, ...elements: string[]) => elements.map((element) => ({ identity, element }));
  const kinds = (violations: ListViolation[]) => violations.map((v) => v.kind);

  it('passes reads that are prefixes of one history, with every acknowledged append in the final read', () => {
    const report = checkListAppend({
      reads: [
        { identity: 'l1', value: [] },
        { identity: 'l1', value: ['a'] },
        { identity: 'l1', value: ['a', 'b', 'c'] },
        { identity: 'l1', value: ['a', 'b'] },
        { identity: 'l2', value: ['x'] },
      ],
      appends: [...appends('l1', 'a', 'c'), ...appends('l2', 'x')], // 'b' was never acknowledged: fine
      final: { l1: ['a', 'b', 'c', 'd'], l2: ['x'] },
    });
    expect(report.violations).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.identities).toEqual([
      { identity: 'l1', reads: 4, appends: 2, historyLength: 4, finalLength: 4, finalSource: 'final' },
      { identity: 'l2', reads: 1, appends: 1, historyLength: 1, finalLength: 1, finalSource: 'final' },
    ]);
  });

  it('reports a fork where two reads diverge, naming the elements and a read on each branch', () => {
    const r1 = { identity: 'l1', value: ['a', 'b', 'c'], label: 'r1@m1' };
    const r2 = { identity: 'l1', value: ['a', 'x'], label: 'r2@m2' };
    const report = checkListAppend({ reads: [{ identity: 'l1', value: ['a'] }, r1, r2], appends: appends('l1', 'a') });
    expect(report.ok).toBe(false);
    expect(report.violations).toHaveLength(1);
    const fork = report.violations[0]!;
    expect(fork).toMatchObject({ kind: 'fork', identity: 'l1', index: 1 });
    if (fork.kind !== 'fork') throw new Error('not a fork');
    expect(fork.branches.map((b) => [b.element, b.read.label])).toEqual([
      ['b', 'r1@m1'],
      ['x', 'r2@m2'],
    ]);
    expect(fork.message).toBe('l1: histories fork after 1 common elements: "b" in read r1@m1 (3 elements) vs "x" in read r2@m2 (2 elements)');
  });

  it('reports a fork between the reads and the final read', () => {
    const report = checkListAppend({ reads: [{ identity: 'l', value: ['a', 'b'] }], appends: [], final: new Map([['l', ['a', 'c']]]) });
    expect(kinds(report.violations)).toEqual(['fork']);
    expect(report.violations[0]!.message).toContain('"c" in read final');
  });

  it('reports acknowledged appends missing from the final read', () => {
    const report = checkListAppend({
      reads: [{ identity: 'l', value: ['a', 'b'] }],
      appends: [...appends('l', 'a', 'b'), { identity: 'l', element: 'c', label: 'op-7' }],
      final: { l: ['a', 'b'] },
    });
    expect(kinds(report.violations)).toEqual(['lost-append']);
    expect(report.violations[0]).toMatchObject({ identity: 'l', element: 'c', finalLength: 2 });
    expect(report.violations[0]!.message).toBe('l: acknowledged append "c" (op-7) is missing from the final read (2 elements)');
  });

  it('without an explicit final read, uses the longest read (and says so)', () => {
    const report = checkListAppend({
      reads: [
        { identity: 'l', value: ['a'] },
        { identity: 'l', value: ['a', 'b'] },
      ],
      appends: appends('l', 'a', 'b', 'z'),
    });
    expect(report.identities[0]).toMatchObject({ finalSource: 'longest-read', finalLength: 2 });
    expect(report.violations.map((v) => v.message)).toEqual(['l: acknowledged append "z" is missing from the longest read (2 elements)']);
    // Acknowledged appends but no read at all: every one is lost.
    const none = checkListAppend({ reads: [], appends: appends('q', 'a') });
    expect(kinds(none.violations)).toEqual(['lost-append']);
    expect(none.identities[0]).toMatchObject({ finalSource: 'none' });
  });

  it('reports an element appended twice (unless duplicates are ignored)', () => {
    const input = { reads: [{ identity: 'l', value: ['a', 'b', 'a'] }], appends: appends('l', 'a', 'b') };
    const report = checkListAppend(input);
    expect(kinds(report.violations)).toEqual(['duplicate-element']);
    expect(report.violations[0]).toMatchObject({ element: 'a', indexes: [0, 2] });
    expect(checkListAppend({ ...input, duplicates: 'ignore' }).ok).toBe(true);
  });

  it('with timestamps: reports a read invoked after an acknowledgement that lacks the element', () => {
    const report = checkListAppend({
      reads: [
        { identity: 'l', value: [], invokedAt: 5n, label: 'early' }, // before the ack: fine
        { identity: 'l', value: [], invokedAt: 20n, label: 'stale' },
        { identity: 'l', value: ['a'], invokedAt: 30n },
      ],
      appends: [{ identity: 'l', element: 'a', ackedAt: 10n }],
    });
    expect(kinds(report.violations)).toEqual(['stale-read']);
    expect(report.violations[0]!.message).toBe('l: read stale (0 elements) invoked at 20 lacks "a", acknowledged at 10');
  });

  it('with the attempted elements: reports an element no append attempted', () => {
    const report = checkListAppend({
      reads: [{ identity: 'l', value: ['a', 'ghost'] }],
      appends: appends('l', 'a'),
      attempted: [...appends('l', 'a', 'b'), ...appends('other', 'ghost')],
    });
    expect(kinds(report.violations)).toEqual(['phantom-element']);
    expect(report.violations[0]).toMatchObject({ element: 'ghost', index: 1 });
  });
});

describe('JSON lines', () => {
  it('parses lines, reports bad ones with their numbers, and tolerates a truncated last line', () => {
    const result = parseJsonLines('{"a":1}\r\n\nnot json\n[2]\n{"cut":');
    expect(result.values).toEqual([{ a: 1 }, [2]]);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatchObject({ line: 3, text: 'not json' });
    expect(result.truncated).toBe('{"cut":');
    expect(parseJsonLines('not json\n{"a":1}\n', { skipNonJson: true })).toEqual({ values: [{ a: 1 }], errors: [], truncated: undefined });
    expect(parseJsonLines('{"a":1}\n{"bad"\n').errors).toHaveLength(1); // a complete bad last line is an error
  });

  it('reads turn records (hrtime as strings, exactly) from a mixed log, and finds overlaps in it', () => {
    const big = (2n ** 62n).toString();
    const text = [
      'member m1 starting',
      JSON.stringify({ event: 'turn', identity: 'a', activationId: 'x', member: 'm1', start: big, end: (2n ** 62n + 100n).toString(), method: 'add' }),
      JSON.stringify({ event: 'ready' }),
      JSON.stringify({ event: 'turn', identity: 'a', activationId: 'y', member: 'm2', start: (2n ** 62n + 50n).toString(), end: (2n ** 62n + 60n).toString() }),
      JSON.stringify({ event: 'turn', identity: 'b', activationId: 'z', member: 'm2', start: 1, end: 2 }),
      '',
    ].join('\n');
    const turns = parseTurnLog(text);
    expect(turns).toHaveLength(3);
    expect(turns[0]).toMatchObject({ identity: 'a', start: 2n ** 62n, end: 2n ** 62n + 100n, method: 'add', event: 'turn' });
    expect(turns[2]).toMatchObject({ start: 1n, end: 2n });
    expect(findActivationOverlaps(turns).map((o) => [o.first.activationId, o.second.activationId, o.overlapNs])).toEqual([['x', 'y', 10n]]);
    expect(parseTurnLog(text, (v) => v.member === 'm2')).toHaveLength(2);
  });

  it('rejects hrtime numbers JSON.parse already rounded', () => {
    expect(() => turnRecordsFrom([{ identity: 'a', activationId: 'x', member: 'm', start: 2 ** 60, end: 2 ** 60 }])).toThrow(/beyond 2\^53.*as strings/);
    expect(() => turnRecordsFrom([{ identity: 'a', activationId: 'x', member: 'm', start: 'soon', end: '1' }])).toThrow(/not an integer/);
  });
});

describe('checkEpochHistory', () => {
  const history = (...lines: string[]) => new Map([['a', parseEpochOps(lines)]]);

  it('passes a store that only ever saw epochs grow, one activation each', () => {
    expect(checkEpochHistory(history('load 5 x', 'write 5 x', 'write 5 x', 'load 7 y', 'write 7 y'))).toEqual([]);
  });

  it('reports a write from an activation older than one that only loaded', () => {
    const found = checkEpochHistory(history('load 5 x', 'write 5 x', 'load 7 y', 'write 5 x'));
    expect(found.map((v) => v.kind)).toEqual(['older-epoch']);
    expect(found[0]!.detail).toContain('write by x at epoch 5, after epoch 7 (y)');
  });

  it('reports two activations under one epoch (an epoch issued twice)', () => {
    expect(checkEpochHistory(history('load 5 x', 'load 5 z', 'write 5 z')).map((v) => v.kind)).toEqual(['shared-epoch', 'shared-epoch']);
  });

  it('refuses lines that are not store ops', () => {
    expect(() => parseEpochOps(['write five x'])).toThrow(/not a store op/);
  });
});
