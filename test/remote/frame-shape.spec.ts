/**
 * `inspectMessage` (the shape check every frame and gossip message gets before protobufjs
 * decodes it) against a plain reference of the same rule: the first version of the check,
 * written for clarity (string-keyed tables, closures, `2 ** shift`), kept here as the oracle
 * after the check was rewritten for speed (it cost more than decoding the frame). Seeded:
 * `SHAPE_SEED=<n>` replays a run.
 */
import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { inspectMessage, NESTED_MESSAGES } from '../../lib/remote/inbound-limits.js';
import { type Batch, encodeFrame, Status } from '../../lib/remote/wire.js';
import { prng } from '../support/prng.js';

const SEED = process.env['SHAPE_SEED'] !== undefined ? Number(process.env['SHAPE_SEED']) >>> 0 : randomInt(0, 2 ** 32 - 1);

type Nested = Readonly<Record<string, Readonly<Record<number, string>>>>;

class Malformed extends Error {}
class OverLimit extends Error {}

/** The rule, stated plainly: see the file's header. */
function reference(bytes: Uint8Array, nested: Nested, root: string, maxValues: number, maxChildren: Readonly<Record<string, number>> = {}): string | undefined {
  let entries = 0;
  let pos = 0;
  const varint = (end: number): number => {
    let value = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (pos >= end) throw new Malformed('a value runs past its end');
      const byte = bytes[pos++]!;
      if (shift < 32) value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    throw new Malformed('a varint of more than 10 bytes');
  };
  const walk = (message: string, end: number): void => {
    const inside = nested[message];
    const maxInside = maxChildren[message];
    let children = 0;
    while (pos < end) {
      const tag = varint(end);
      const field = Math.floor(tag / 8);
      const wireType = tag % 8;
      if (field === 0) throw new Malformed('field number 0');
      if (++entries > maxValues) throw new OverLimit(`more than ${maxValues} values`);
      if (wireType === 0) varint(end);
      else if (wireType === 1 || wireType === 5) {
        const size = wireType === 1 ? 8 : 4;
        if (end - pos < size) throw new Malformed('a value runs past its end');
        pos += size;
      } else if (wireType === 2) {
        const length = varint(end);
        if (length > end - pos) throw new Malformed('a length runs past its end');
        const inner = inside?.[field];
        if (inner === undefined) pos += length;
        else {
          if (maxInside !== undefined && ++children > maxInside)
            throw new OverLimit(`more than ${maxInside} ${message === 'Batch' ? 'requests' : `entries in one ${message}`}`);
          walk(inner, pos + length);
        }
      } else throw new Malformed(`wire type ${wireType}`);
    }
  };
  try {
    walk(root, bytes.length);
  } catch (error) {
    if (error instanceof OverLimit) return error.message;
    if (error instanceof Malformed) return `undecodable ${root === 'Frame' ? 'frame' : 'message'}: ${error.message}`;
    throw error;
  }
  return undefined;
}

/** A frame as members write them: requests with chains, responses with errors, long varints. */
function realFrame(next: () => number): Uint8Array {
  const n = 1 + Math.floor(next() * 40);
  const strings = ['echo', 'ping', 'k/id', 'a1b2c3d4', 'x'.repeat(200)];
  const batch: Batch = { strings, requests: [], responses: [] };
  for (let i = 0; i < n; i++) {
    if (next() < 0.5) {
      const links = Math.floor(next() * 4);
      batch.requests.push({
        id: Math.floor(next() * 2 ** 32),
        kind: 0,
        identity: 2,
        method: 1,
        args: new Uint8Array(Math.floor(next() * 300)),
        timeoutMs: Math.floor(next() * 2 ** 31),
        chain: Array.from({ length: links }, () => ({ activationId: 3, label: 2, interleaved: next() < 0.5 })),
        targetIncarnation: 3,
      });
    } else {
      batch.responses.push({
        id: Math.floor(next() * 2 ** 32),
        status: Status.OK,
        result: new Uint8Array(Math.floor(next() * 200)),
        error: null,
      });
    }
  }
  return encodeFrame({ batch });
}

/** Random bytes, half of them biased to look like protobuf (small tags, lengths, long varints). */
function randomBytes(next: () => number): Uint8Array {
  const bytes = new Uint8Array(Math.floor(next() * 64));
  for (let i = 0; i < bytes.length; i++)
    bytes[i] = next() < 0.5 ? Math.floor(next() * 256) : [0x08, 0x0a, 0x12, 0x1a, 0x80, 0xff, 0x01, 0x05][Math.floor(next() * 8)]!;
  return bytes;
}

function mutate(bytes: Uint8Array, next: () => number): Uint8Array {
  const out = Uint8Array.from(bytes);
  const edits = 1 + Math.floor(next() * 4);
  for (let e = 0; e < edits && out.length > 0; e++) out[Math.floor(next() * out.length)] = Math.floor(next() * 256);
  return next() < 0.2 ? out.subarray(0, Math.floor(next() * out.length)) : out;
}

describe(`inspectMessage against the plain rule (seed ${SEED})`, () => {
  it('gives the same verdict, word for word, on real, mutated, truncated and random frames, under tight and loose limits', () => {
    const next = prng(SEED);
    const nestedGossip: Nested = { GossipMessage: { 1: 'Entry', 2: 'Entry' }, Entry: { 3: 'Value' } };
    let problems = 0;
    for (let i = 0; i < 20_000; i++) {
      const roll = next();
      const bytes = roll < 0.3 ? realFrame(next) : roll < 0.8 ? mutate(realFrame(next), next) : randomBytes(next);
      const maxValues = next() < 0.3 ? Math.floor(next() * 60) : 1_000_000;
      const batchLimit = next() < 0.3 ? Math.floor(next() * 20) : 1_000;
      const [nested, root, limits] =
        next() < 0.85 ? [NESTED_MESSAGES, 'Frame', { Batch: batchLimit }] : [nestedGossip, 'GossipMessage', { GossipMessage: batchLimit, Entry: 2 }];
      const expected = reference(bytes, nested, root, maxValues, limits);
      const got = inspectMessage(bytes, nested, root, maxValues, limits);
      if (got !== expected)
        throw new Error(
          `input #${i} (seed ${SEED}): expected ${String(expected)}, got ${String(got)}; bytes ${Buffer.from(bytes).toString('hex').slice(0, 400)}`,
        );
      if (got !== undefined) problems++;
    }
    // NOTE: the inputs exercise both verdicts (a generator that only made good frames would prove little).
    expect(problems).toBeGreaterThan(2_000);
    expect(problems).toBeLessThan(18_000);
  });

  it('reads varints of up to 10 bytes as the rule does (a length of 2^32 and more runs past its end)', () => {
    // Field 1 (Handshake, length-delimited) with a 5-byte length of 2^32 - 1, and a 10-byte varint field.
    const cases = [Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])];
    for (const bytes of cases) expect(inspectMessage(bytes, NESTED_MESSAGES, 'Frame', 100)).toBe(reference(bytes, NESTED_MESSAGES, 'Frame', 100));
    expect(inspectMessage(cases[0]!, NESTED_MESSAGES, 'Frame', 100)).toBe('undecodable frame: a length runs past its end');
    expect(inspectMessage(cases[1]!, NESTED_MESSAGES, 'Frame', 100)).toBeUndefined();
  });
});
