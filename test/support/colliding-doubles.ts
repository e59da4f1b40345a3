import { Buffer } from 'node:buffer';

/**
 * Hostile codec inputs for the tests: doubles that collide in V8's number hash, and a Set of
 * them written by hand (building a real Set would hash them, slowly, in the test).
 */

/**
 * Doubles that V8 hashes alike: V8 (Node 20's 11.3) hashes a non-integer double by Thomas
 * Wang's 64→32 bit hash of its bits, unseeded, and keeps the low 30 bits. Every step of that
 * hash is invertible on 64 bits, so choose outputs with the same low 30 bits and invert them.
 */
export function collidingDoubles(count: number): number[] {
  const mask = (1n << 64n) - 1n;
  const inverse = (k: bigint): bigint => {
    let x = k;
    for (let i = 0; i < 7; i++) x = (x * (2n - ((k * x) & mask))) & mask; // Newton, mod 2^64
    return x;
  };
  const unshift = (y: bigint, s: bigint): bigint => {
    let x = y;
    for (let i = 0; i < 64; i += Number(s)) x = y ^ (x >> s);
    return x;
  };
  const [inv65, inv21, invK] = [inverse(65n), inverse(21n), inverse((1n << 18n) - 1n)];
  const bits = new BigUint64Array(1);
  const doubles = new Float64Array(bits.buffer);
  const out: number[] = [];
  for (let i = 1n; out.length < count; i++) {
    // hash = ~h + (h << 18); h ^= h >> 31; h *= 21; h ^= h >> 11; h += h << 6; h ^= h >> 22
    let h = (i << 30n) | 0x1234567n;
    h = unshift(h, 22n);
    h = (h * inv65) & mask;
    h = unshift(h, 11n);
    h = (h * inv21) & mask;
    h = unshift(h, 31n);
    h = ((h + 1n) * invK) & mask;
    bits[0] = h;
    const d = doubles[0]!;
    if (Number.isFinite(d) && !Number.isInteger(d)) out.push(d);
  }
  return out;
}

/** A Set extension holding `items` doubles, written by hand (building the Set would hash them). */
export function setOfDoubles(items: number[]): Uint8Array {
  const content = Buffer.alloc(1 + 5 + items.length * 9);
  content[0] = 0x53;
  content[1] = 0xdd;
  content.writeUInt32BE(items.length, 2);
  items.forEach((d, i) => {
    content[6 + i * 9] = 0xcb;
    content.writeDoubleBE(d, 7 + i * 9);
  });
  const header = Buffer.alloc(5);
  header[0] = 0xc9;
  header.writeUInt32BE(content.length - 1, 1);
  return new Uint8Array(Buffer.concat([header, content]));
}

/** Grain call arguments (a one-element list) holding one Set of `items` doubles. */
export function setOfDoublesArgs(items: number[]): Buffer {
  return Buffer.concat([Buffer.from([0x91]), setOfDoubles(items)]);
}
