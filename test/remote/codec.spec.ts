import { Buffer } from 'node:buffer';
import { isDeepStrictEqual } from 'node:util';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { type Codec, CodecError } from '../../lib/remote/codec/codec.js';
import { defaultCodec } from '../../lib/remote/codec/default-codec.js';
import { MsgpackCodec } from '../../lib/remote/codec/msgpack-codec.js';
import { collidingDoubles, setOfDoubles } from '../support/colliding-doubles.js';
import { prng } from '../support/prng.js';

const codec = new MsgpackCodec();

function roundTrip(value: unknown, c: Codec = codec): unknown {
  return c.decode(c.encode(value));
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function fromHex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

function codecError(fn: () => unknown): CodecError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CodecError);
    return error as CodecError;
  }
  throw new Error('expected a CodecError, nothing was thrown');
}

/** What decode may return: primitives, and only these containers, all the way down. */
function assertPlainData(value: unknown, input?: Uint8Array, depth = 0): void {
  expect(depth).toBeLessThan(200);
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'undefined':
    case 'bigint':
      return;
    case 'object':
      break;
    default:
      throw new Error(`decode returned a ${typeof value}`);
  }
  if (value === null) return;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Array.prototype) {
    for (const item of value as unknown[]) assertPlainData(item, input, depth + 1);
  } else if (proto === Object.prototype) {
    for (const key of Object.keys(value)) assertPlainData((value as Record<string, unknown>)[key], input, depth + 1);
  } else if (proto === Map.prototype) {
    for (const [k, v] of value as Map<unknown, unknown>) {
      assertPlainData(k, input, depth + 1);
      assertPlainData(v, input, depth + 1);
    }
  } else if (proto === Set.prototype) {
    for (const item of value as Set<unknown>) assertPlainData(item, input, depth + 1);
  } else if (proto === Uint8Array.prototype || proto === Buffer.prototype) {
    const bytes = value as Uint8Array;
    if (input) expect(bytes.buffer).not.toBe(input.buffer);
    // Its own memory: nothing else (another message, Node's Buffer pool) is reachable through it.
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.buffer.byteLength).toBe(bytes.byteLength);
  } else if (proto !== Date.prototype) {
    throw new Error(`decode returned a ${Object.prototype.toString.call(value)}`);
  }
}

/** Decoding untrusted bytes: a CodecError or plain data, nothing else, no pollution. */
function decodeUntrusted(bytes: Uint8Array, c: Codec = codec): void {
  let value: unknown;
  try {
    value = c.decode(bytes);
  } catch (error) {
    if (!(error instanceof CodecError)) throw new Error(`decode of ${hex(bytes)} threw ${String(error)}`);
    expect(['CODEC_MALFORMED', 'CODEC_TOO_LARGE', 'CODEC_LIMIT_EXCEEDED']).toContain(error.code);
    return;
  }
  assertPlainData(value, bytes);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
}

const RICH = [
  'account-123',
  100,
  { note: 'short', nested: { deeper: [1, 2, { x: null }] } },
  -0,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  undefined,
  new Date(1_732_700_000_123),
  123n,
  -(2n ** 100n),
  new Map<unknown, unknown>([
    ['a', 1],
    [2, new Set(['x', 3n])],
    [{ k: 1 }, [new Date(0)]],
  ]),
  new Set([1, 'two', null]),
  new Uint8Array([0, 1, 254, 255]),
  Buffer.from('buffer bytes'),
  'ünïcødé ✓ 😀 '.repeat(20),
  { 'a key with spaces': true, ['__proto__']: 'own' },
];

describe('MsgpackCodec round trips', () => {
  it('is named for the handshake', () => {
    expect(codec.name).toBe('grains-msgpack/1');
  });

  it.each([
    ['an empty string', ''],
    ['an ASCII string', 'account-123'],
    ['a string of 31 ASCII chars', 'a'.repeat(31)],
    ['a string of 32 ASCII chars', 'a'.repeat(32)],
    ['a long ASCII string', 'x'.repeat(100_000)],
    ['a short non-ASCII string', 'é'],
    ['non-ASCII strings of every size class', ['ü'.repeat(10), 'ü'.repeat(40), 'ü'.repeat(70), '✓'.repeat(30_000)]],
    ['astral characters (surrogate pairs)', ['😀', 'a😀b'.repeat(50)]],
    ['small integers', [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32]],
    ['negative integers', [-1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1]],
    ['large and fractional numbers', [Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 60, 0.1, -1.5, 1e-300, Number.MAX_VALUE, Number.MIN_VALUE]],
    ['NaN and the infinities', [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]],
    ['booleans and null', [true, false, null]],
    ['undefined as a value', undefined],
    ['undefined in an array', [undefined, 1, undefined]],
    ['an empty array', []],
    ['arrays of 15, 16 and 70,000 items', [15, 16, 70_000].map((length) => Array.from({ length }, (_, i) => i % 7))],
    ['an empty object', {}],
    [
      'objects of 15, 16 and 70,000 properties',
      [
        Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i}`, i])),
        Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])),
        Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`key-${i}`, i])),
      ],
    ],
    ['keys that are not identifiers, are numeric, or are long', { 'with space': 1, '0': 2, '': 3, ['k'.repeat(40)]: 4, ключ: 5 }],
    ['Dates, including an invalid one', [new Date(0), new Date(-1e12), new Date(8.64e15), new Date(Number.NaN)]],
    ['BigInts of every size', [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n, -(2n ** 63n) - 1n, 2n ** 1000n, -(3n ** 500n)]],
    [
      'Maps with keys of any type',
      new Map<unknown, unknown>([
        [1, 'a'],
        ['1', 'b'],
        [{ o: 1 }, [2]],
        [null, undefined],
        [Number.NaN, 0],
      ]),
    ],
    ['an empty Map and a Map of 20 entries', [new Map(), new Map(Array.from({ length: 20 }, (_, i) => [i, i]))]],
    ['Sets', [new Set(), new Set([1, 'a', { b: 2 }, [3]]), new Set(Array.from({ length: 20 }, (_, i) => i))]],
    ['Uint8Arrays of every size class', [new Uint8Array(0), new Uint8Array([1, 2, 3]), new Uint8Array(300).fill(7), new Uint8Array(70_000).fill(9)]],
    ['Buffers', [Buffer.alloc(0), Buffer.from('hi'), Buffer.alloc(300, 1), Buffer.alloc(70_000, 2)]],
    ['nested combinations', RICH],
  ])('%s', (_name, value) => {
    expect(roundTrip(value)).toStrictEqual(value);
  });

  it('keeps -0 distinct from 0', () => {
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
    expect(Object.is(roundTrip(0), 0)).toBe(true);
    expect(Object.is((roundTrip([-0]) as number[])[0], -0)).toBe(true);
  });

  it('keeps an object property whose value is undefined (JSON would drop it)', () => {
    const decoded = roundTrip({ a: undefined, b: 1 }) as Record<string, unknown>;
    expect(Object.keys(decoded)).toEqual(['a', 'b']);
    expect('a' in decoded).toBe(true);
    expect(decoded.a).toBeUndefined();
  });

  it('keeps property order, and a Map’s and a Set’s order', () => {
    expect(Object.keys(roundTrip({ z: 1, a: 2, m: 3 }) as object)).toEqual(['z', 'a', 'm']);
    expect([
      ...(
        roundTrip(
          new Map([
            ['z', 1],
            ['a', 2],
          ]),
        ) as Map<string, number>
      ).keys(),
    ]).toEqual(['z', 'a']);
    expect([...(roundTrip(new Set(['z', 'a'])) as Set<string>)]).toEqual(['z', 'a']);
  });

  it('gives back a Uint8Array for a Uint8Array and a Buffer for a Buffer, as copies', () => {
    const backing = new Uint8Array([9, 1, 2, 3, 9]);
    const view = backing.subarray(1, 4);
    const [bytes, buffer] = roundTrip([view, Buffer.from([4, 5])]) as [Uint8Array, Buffer];
    expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
    expect([...bytes]).toEqual([1, 2, 3]);
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.buffer.byteLength).toBe(3);
    expect(Buffer.isBuffer(buffer)).toBe(true);
    expect(buffer.toString('hex')).toBe('0405');
  });

  it('gives Buffers and Uint8Arrays memory of their own, never a view into Node’s Buffer pool', () => {
    // Small Buffers from Buffer.allocUnsafe/Buffer.from share an 8 KiB pool: a decoded Buffer
    // there would expose, through `.buffer`, the bytes of whatever else was put in the pool.
    const secret = Buffer.from('another message, not yours');
    const decoded = roundTrip([Buffer.from([1, 2, 3]), new Uint8Array([4]), Buffer.alloc(0), Buffer.alloc(5000, 7)]) as Uint8Array[];
    for (const bytes of decoded) {
      expect(bytes.byteOffset).toBe(0);
      expect(bytes.buffer.byteLength).toBe(bytes.byteLength);
      expect(Buffer.from(bytes.buffer).includes(secret)).toBe(false);
    }
    expect(Buffer.isBuffer(decoded[0])).toBe(true);
    expect([...decoded[0]!]).toEqual([1, 2, 3]);
    // Two small Buffers of one message do not share memory either.
    const [a, b] = roundTrip([Buffer.from([1]), Buffer.from([2])]) as [Buffer, Buffer];
    expect(a.buffer).not.toBe(b.buffer);
  });

  it('keeps no reference into the input: changing the input afterwards changes nothing', () => {
    const encoded = codec.encode({ bytes: new Uint8Array([1, 2]), buffer: Buffer.from([3]), text: 'x'.repeat(100) });
    const input = new Uint8Array(encoded); // a copy the test owns
    const decoded = codec.decode(input) as { bytes: Uint8Array; buffer: Buffer; text: string };
    input.fill(0);
    expect([...decoded.bytes]).toEqual([1, 2]);
    expect([...decoded.buffer]).toEqual([3]);
    expect(decoded.text).toBe('x'.repeat(100));
  });

  it('returns encodings that later encodes never overwrite', () => {
    const first = codec.encode(['first', 1]);
    const firstHex = hex(first);
    for (let i = 0; i < 5000; i++) codec.encode({ i, filler: 'y'.repeat(i % 50) });
    codec.encode('z'.repeat(200_000)); // forces a new, bigger slab
    expect(hex(first)).toBe(firstHex);
    expect(codec.decode(first)).toEqual(['first', 1]);
  });

  it('keeps Map and Set lengths right when the output buffer fills up in the middle of them', () => {
    // A fresh codec writes into a 64 KiB slab: 65,003 bytes of bin leave too little room
    // for what follows, so the slab is replaced while the Map's content is being written.
    for (const filler of [65_000, 65_400, 65_520, 65_530]) {
      const fresh = new MsgpackCodec();
      fresh.encode(new Uint8Array(filler));
      const value = new Map<unknown, unknown>([
        ['items', new Set(Array.from({ length: 200 }, (_, i) => `item-${i}`))],
        ['when', new Date(5)],
      ]);
      expect(roundTrip(value, fresh)).toStrictEqual(value);
    }
  });

  it('decodes from a Buffer and from a Uint8Array view at an offset', () => {
    const encoded = codec.encode(RICH);
    const padded = new Uint8Array(encoded.byteLength + 10);
    padded.set(encoded, 5);
    expect(codec.decode(padded.subarray(5, 5 + encoded.byteLength))).toStrictEqual(RICH);
    expect(codec.decode(Buffer.from(encoded))).toStrictEqual(RICH);
  });

  describe('what changes on the way', () => {
    it('turns the holes of a sparse array into undefined, keeping its length', () => {
      const decoded = roundTrip([1, , 3]) as unknown[];
      expect(decoded).toHaveLength(3);
      expect(1 in decoded).toBe(true);
      expect(decoded[1]).toBeUndefined();
    });

    it('copies a shared reference once per place it appears', () => {
      const shared = { n: 1 };
      const [a, b] = roundTrip([shared, shared]) as [object, object];
      expect(a).toEqual(shared);
      expect(b).toEqual(shared);
      expect(a).not.toBe(b);
    });

    it('gives an Object.prototype object for a null-prototype object', () => {
      const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
      const decoded = roundTrip(bare) as object;
      expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
      expect(decoded).toEqual({ a: 1 });
    });

    it('carries own enumerable string-keyed properties only (getters are read, symbols dropped)', () => {
      const source: Record<string | symbol, unknown> = { a: 1, [Symbol('s')]: 2 };
      Object.defineProperty(source, 'hidden', { value: 3, enumerable: false });
      Object.defineProperty(source, 'computed', { get: () => 4, enumerable: true });
      expect(roundTrip(source)).toStrictEqual({ a: 1, computed: 4 });
      const array = Object.assign([1, 2], { extra: 'dropped' });
      expect(roundTrip(array)).toStrictEqual([1, 2]);
    });

    it('replaces lone surrogates with U+FFFD (UTF-8 cannot carry them)', () => {
      expect(roundTrip('a\ud800b')).toBe('a\ufffdb');
      expect(roundTrip('\udc00'.repeat(100))).toBe('\ufffd'.repeat(100));
    });

    it('gives unfrozen copies of frozen values', () => {
      const decoded = roundTrip(Object.freeze({ a: Object.freeze([1]) })) as { a: number[] };
      expect(Object.isFrozen(decoded)).toBe(false);
      expect(Object.isFrozen(decoded.a)).toBe(false);
    });
  });
});

describe('MsgpackCodec refuses what it cannot carry', () => {
  class Account {
    constructor(readonly id: string) {}
    balance(): number {
      return 0;
    }
  }
  class SpecialMap extends Map<string, number> {}

  it.each([
    ['a function', () => 1, '$'],
    ['a method in an object', { save() {} }, '$.save'],
    ['a symbol in an array', ['a', Symbol('s')], '$[1]'],
    ['a class instance', { owner: new Account('a1') }, '$.owner'],
    ['an Error', [new TypeError('boom')], '$[0]'],
    ['a Promise', { result: Promise.resolve(1) }, '$.result'],
    ['a Float64Array', { samples: new Float64Array(2) }, '$.samples'],
    ['an ArrayBuffer', [new ArrayBuffer(4)], '$[0]'],
    ['a RegExp', { pattern: /a+/ }, '$.pattern'],
    ['a boxed primitive', [Object('text')], '$[0]'],
    ['a WeakMap', [new WeakMap()], '$[0]'],
    ['a Map subclass', { m: new SpecialMap() }, '$.m'],
    ['a function inside a Map value', new Map([['k', () => 1]]), '$.get("k")'],
    ['a function as a Map key', new Map([[() => 1, 'v']]), '$.<map key #0>'],
    ['a symbol inside a Set', new Set([1, Symbol('s')]), '$.<set item #1>'],
    ['a function under an odd key', { 'odd key': [() => 1] }, '$["odd key"][0]'],
  ])('%s, naming its path', (_name, value, path) => {
    const error = codecError(() => codec.encode(value));
    expect(error.code).toBe('CODEC_UNSUPPORTED_VALUE');
    expect(error.path).toBe(path);
    expect(error.message).toContain(path);
  });

  it('says what to send instead of a class instance', () => {
    const error = codecError(() => codec.encode([new Account('a1')]));
    expect(error.message).toMatch(/instance of class Account.*plain object/);
  });

  it('refuses a cycle, naming where it closes', () => {
    const node: { name: string; next?: unknown } = { name: 'a' };
    node.next = { name: 'b', back: [node] };
    const error = codecError(() => codec.encode({ root: node }));
    expect(error.code).toBe('CODEC_UNSUPPORTED_VALUE');
    expect(error.message).toMatch(/cycle/);
    expect(['$.root', '$.root.next', '$.root.next.back']).toContain(error.path);
  });

  it('refuses a Map that contains itself', () => {
    const map = new Map<string, unknown>();
    map.set('self', map);
    expect(codecError(() => codec.encode(map)).message).toMatch(/cycle/);
  });

  it('turns a throwing getter into a CodecError with the original as cause', () => {
    const boom = new Error('getter failed');
    const value = {
      get bad(): number {
        throw boom;
      },
    };
    const error = codecError(() => codec.encode(value));
    expect(error.code).toBe('CODEC_UNSUPPORTED_VALUE');
    expect(error.path).toBe('$.bad');
    expect(error.cause).toBe(boom);
  });

  it('leaves the codec usable after a refusal', () => {
    codecError(() => codec.encode(['ok', () => 1]));
    expect(roundTrip(['ok', 1])).toEqual(['ok', 1]);
  });

  it('encodes with a fresh encoder when a getter re-enters encode', () => {
    const value = {
      get inner(): Uint8Array {
        return codec.encode({ nested: true });
      },
    };
    const decoded = roundTrip(value) as { inner: Uint8Array };
    expect(codec.decode(decoded.inner)).toEqual({ nested: true });
  });
});

describe('MsgpackCodec wire format', () => {
  it('writes standard MessagePack for JSON-like values', () => {
    expect(hex(codec.encode(['account-123', 100, { note: 'short' }]))).toBe('93' + 'ab6163636f756e742d313233' + '64' + '81' + 'a46e6f7465' + 'a573686f7274');
    expect(hex(codec.encode([null, true, false, -1, -33, 200, 1.5]))).toBe('97c0c3c2ffd0dfccc8cb3ff8000000000000');
    expect(hex(codec.encode(new Uint8Array([1, 2])))).toBe('c4020102');
  });

  it('pins the extension types (changing them means a new codec name)', () => {
    expect(hex(codec.encode(undefined))).toBe('d40000');
    expect(hex(codec.encode(-0))).toBe('cb8000000000000000');
    expect(hex(codec.encode(new Date(0)))).toBe('d7440000000000000000');
    expect(hex(codec.encode(-2n))).toBe('d742fffffffffffffffe');
    expect(hex(codec.encode(2n ** 64n))).toBe('c70a4200010000000000000000');
    expect(hex(codec.encode(Buffer.from([7])))).toBe('c7014e07');
    expect(hex(codec.encode(new Map([[1, 2]])))).toBe('c9000000034d810102');
    expect(hex(codec.encode(new Set([1])))).toBe('c9000000025391' + '01');
  });

  it('reads non-minimal lengths and float32, which other MessagePack writers may use', () => {
    expect(codec.decode(fromHex('d9 01 61'))).toBe('a'); // str8 for a 1-byte string
    expect(codec.decode(fromHex('cd 00 05'))).toBe(5); // uint16 for 5
    expect(codec.decode(fromHex('dc 0001 01'))).toEqual([1]); // array16 of 1
    expect(codec.decode(fromHex('de 0001 a1 61 01'))).toEqual({ a: 1 }); // map16 of 1
    expect(codec.decode(fromHex('ca 3fc00000'))).toBe(1.5); // float32
  });

  it.each([
    ['an empty input', ''],
    ['the never-used type byte', 'c1'],
    ['a uint64 (never written)', 'cf 0000000000000001'],
    ['an int64 (never written)', 'd3 0000000000000001'],
    ['trailing bytes', '01 02'],
    ['an unknown extension type', 'd4 7f 00'],
    ['an undefined extension with a non-zero byte', 'd4 00 01'],
    ['a Date extension of the wrong size', 'd6 44 00000000'],
    ['a BigInt without a magnitude', 'd4 42 00'],
    ['a BigInt with a bad sign byte', 'c7 02 42 07 01'],
    ['an object key that is not a string', '81 01 02'],
    ['a Map extension holding an array', 'c9 00000002 4d 91 01'],
    ['a Set extension holding a map', 'c9 00000003 53 81 a0 01'],
    ['a Map extension whose content overruns it', 'c9 00000002 4d 81 01 02'],
    ['a Set extension with bytes left over', 'c9 00000004 53 91 01 01 01'],
    ['a truncated float', 'cb 3ff0'],
    ['a string longer than the input', 'db ffffffff 61'],
    ['a bin longer than the input', 'c6 ffffffff 00'],
    ['an array longer than the input', 'dd ffffffff c0'],
    ['a map longer than the input', 'df ffffffff a0 c0'],
    ['an extension longer than the input', 'c9 ffffffff 4d'],
  ])('refuses %s as CODEC_MALFORMED', (_name, bytes) => {
    expect(codecError(() => codec.decode(fromHex(bytes))).code).toBe('CODEC_MALFORMED');
  });

  it('refuses something that is not a Uint8Array', () => {
    expect(codecError(() => codec.decode('93' as unknown as Uint8Array)).code).toBe('CODEC_MALFORMED');
  });
});

describe('MsgpackCodec on hostile input', () => {
  it('makes "__proto__" an own property and never touches a prototype', () => {
    const key = 'a9' + Buffer.from('__proto__').toString('hex');
    const polluting = fromHex(`82 ${key} 81 a8 ${Buffer.from('polluted').toString('hex')} c3 a1 61 01`);
    const decoded = codec.decode(polluting) as Record<string, unknown>;
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.keys(decoded)).toEqual(['__proto__', 'a']);
    expect(Object.getOwnPropertyDescriptor(decoded, '__proto__')?.value).toEqual({ polluted: true });
    expect(decoded.polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // The same inside a Map value and inside a Set.
    decodeUntrusted(codec.encode(new Map([['m', JSON.parse('{"__proto__":{"polluted":true}}') as unknown]])));
    decodeUntrusted(codec.encode(new Set([JSON.parse('{"__proto__":{"polluted":true}}') as unknown])));
    // And it round-trips as the own property it is.
    const own = JSON.parse('{"__proto__":{"polluted":true}}') as object;
    expect(roundTrip(own)).toStrictEqual(own);
  });

  it('treats constructor and prototype keys as ordinary data', () => {
    const value = JSON.parse('{"constructor":{"prototype":{"polluted":true}},"toString":1}') as object;
    const decoded = codec.decode(codec.encode(value)) as Record<string, unknown>;
    // NOTE: not toStrictEqual, which compares `.constructor` — here an own data property.
    expect(isDeepStrictEqual(decoded, value)).toBe(true);
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses nesting deeper than maxDepth, in both directions, without a stack overflow', () => {
    const nested = (depth: number): unknown => {
      let value: unknown = null;
      for (let i = 0; i < depth; i++) value = [value];
      return value;
    };
    expect(roundTrip(nested(128))).toEqual(nested(128));
    expect(codecError(() => codec.encode(nested(129))).code).toBe('CODEC_UNSUPPORTED_VALUE');
    // 129 array headers, then null: what a hostile peer could send.
    const tooDeep = new Uint8Array(130).fill(0x91);
    tooDeep[129] = 0xc0;
    expect(codecError(() => codec.decode(tooDeep)).message).toMatch(/deeper than 128/);
    // A megabyte of nesting, of every container kind.
    for (const header of ['91', '81a0', 'c9000000004d81a0', 'c9000000005391']) {
      const unit = fromHex(header);
      const bytes = new Uint8Array(unit.length * 100_000);
      for (let i = 0; i < 100_000; i++) bytes.set(unit, i * unit.length);
      expect(codecError(() => codec.decode(bytes)).code).toBe('CODEC_MALFORMED');
    }
  });

  it('turns a stack overflow into CODEC_MALFORMED when maxDepth is set too high', () => {
    const reckless = new MsgpackCodec({ maxDepth: 10_000_000 });
    const bytes = new Uint8Array(2_000_001).fill(0x91);
    bytes[2_000_000] = 0xc0;
    const error = codecError(() => reckless.decode(bytes));
    expect(error.code).toBe('CODEC_MALFORMED');
    expect(error.cause).toBeInstanceOf(RangeError);
    let value: unknown = null;
    for (let i = 0; i < 1_000_000; i++) value = [value];
    expect(codecError(() => reckless.encode(value)).code).toBe('CODEC_UNSUPPORTED_VALUE');
    expect(roundTrip(['still', 'works'], reckless)).toEqual(['still', 'works']);
  });

  it('allocates no more than the input pays for, whatever the length headers say', () => {
    // Each array claims (almost) the whole remaining input: nested, they would add up to
    // O(n²) slots without the per-decode budget.
    const n = 200_000;
    const bytes = new Uint8Array(n);
    for (let p = 0; p + 5 <= n; p += 5) {
      const claim = n - p - 5; // every byte after this header
      bytes.set([0xdd, (claim >>> 24) & 0xff, (claim >>> 16) & 0xff, (claim >>> 8) & 0xff, claim & 0xff], p);
    }
    // By default maxEntries refuses the first header; without it, the budget refuses the nesting.
    expect(codecError(() => codec.decode(bytes)).code).toBe('CODEC_LIMIT_EXCEEDED');
    const unlimited = new MsgpackCodec({ maxEntries: 2 ** 40 });
    const started = performance.now();
    expect(codecError(() => unlimited.decode(bytes)).code).toBe('CODEC_MALFORMED');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('survives thousands of random inputs', () => {
    const next = prng(0xc0dec);
    for (let i = 0; i < 5000; i++) {
      const bytes = new Uint8Array(Math.floor(next() * 64));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(next() * 256);
      decodeUntrusted(bytes);
    }
  });

  it('survives random inputs made of the format’s own headers', () => {
    // Random bytes rarely get past the first header; these do.
    const pieces = [
      '91',
      '92',
      '93',
      '81',
      '82',
      'a1',
      'a3',
      'c0',
      'c3',
      '00',
      '7f',
      'ff',
      'd40000',
      'd744',
      'd742',
      'c70142',
      'c7014e',
      'c9',
      '4d',
      '53',
      'dc',
      'de',
      'da',
      'c4',
      'cb',
      'a9' + Buffer.from('__proto__').toString('hex'),
    ];
    const next = prng(7);
    for (let i = 0; i < 5000; i++) {
      let text = '';
      const count = 1 + Math.floor(next() * 12);
      for (let j = 0; j < count; j++) text += pieces[Math.floor(next() * pieces.length)];
      decodeUntrusted(fromHex(text));
    }
  });

  it('refuses every truncation of a valid encoding', () => {
    const encoded = codec.encode(RICH);
    for (let length = 0; length < encoded.byteLength; length++) {
      expect(codecError(() => codec.decode(encoded.subarray(0, length))).code).toBe('CODEC_MALFORMED');
    }
  });

  it('survives every single-bit flip of valid encodings', () => {
    const samples = [RICH, ['account-123', 100, { note: 'short' }], new Map([[1, new Set([2n, new Date(5)])]])];
    for (const sample of samples) {
      const encoded = new Uint8Array(codec.encode(sample));
      for (let bit = 0; bit < encoded.byteLength * 8; bit++) {
        const flipped = new Uint8Array(encoded);
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        decodeUntrusted(flipped);
      }
    }
  });

  it('survives random byte changes, insertions and deletions in valid encodings', () => {
    const next = prng(42);
    const encoded = codec.encode(RICH);
    for (let i = 0; i < 3000; i++) {
      const bytes = [...encoded];
      const edits = 1 + Math.floor(next() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(next() * bytes.length);
        const kind = next();
        if (kind < 0.5) bytes[at] = Math.floor(next() * 256);
        else if (kind < 0.75) bytes.splice(at, 0, Math.floor(next() * 256));
        else bytes.splice(at, 1);
      }
      decodeUntrusted(new Uint8Array(bytes));
    }
  });
});

describe('MsgpackCodec size limit', () => {
  const small = new MsgpackCodec({ maxBytes: 1024 });

  it('refuses to decode more than maxBytes before reading anything', () => {
    const error = codecError(() => small.decode(new Uint8Array(1025)));
    expect(error.code).toBe('CODEC_TOO_LARGE');
    expect(error.message).toMatch(/1025 bytes.*1024/);
  });

  it('refuses to encode more than maxBytes, whatever makes it large', () => {
    for (const value of [
      'x'.repeat(2000),
      'ü'.repeat(600),
      new Uint8Array(2000),
      Buffer.alloc(2000),
      Array.from({ length: 1000 }, () => 'ab'),
      Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i])),
      new Set(Array.from({ length: 1100 }, (_, i) => i)),
      2n ** 10_000n,
    ]) {
      expect(codecError(() => small.encode(value)).code).toBe('CODEC_TOO_LARGE');
    }
    expect(roundTrip('x'.repeat(1000), small)).toBe('x'.repeat(1000));
  });

  it('stops early on a huge sparse array instead of writing every hole', () => {
    const sparse: unknown[] = [];
    sparse[2 ** 31] = 1;
    // By default maxEntries refuses it before writing anything.
    expect(codecError(() => codec.encode(sparse)).code).toBe('CODEC_LIMIT_EXCEEDED');
    // Without that limit, maxBytes stops it part-way.
    const unlimited = new MsgpackCodec({ maxEntries: 2 ** 40 });
    const started = performance.now();
    expect(codecError(() => unlimited.encode(sparse)).code).toBe('CODEC_TOO_LARGE');
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('uses 4 MiB, depth 128 and the documented collection limits by default, and checks its options', () => {
    expect(codec.maxBytes).toBe(4 * 1024 * 1024);
    expect(codec.maxDepth).toBe(128);
    expect(codec.maxSetSize).toBe(4096);
    expect(codec.maxMapSize).toBe(4096);
    expect(codec.maxSetAndMapEntries).toBe(4096);
    expect(codec.maxEntries).toBe(100_000);
    expect(() => new MsgpackCodec({ maxBytes: 0 })).toThrow(RangeError);
    expect(() => new MsgpackCodec({ maxDepth: 1.5 })).toThrow(RangeError);
    for (const name of ['maxSetSize', 'maxMapSize', 'maxSetAndMapEntries', 'maxEntries']) {
      expect(() => new MsgpackCodec({ [name]: 0 })).toThrow(RangeError);
      expect(() => new MsgpackCodec({ [name]: Number.NaN })).toThrow(RangeError);
    }
  });

  it('takes the collection limits through defaultCodec', () => {
    const c = defaultCodec(1000, { maxSetSize: 3, maxEntries: 50 }) as MsgpackCodec;
    expect(c.maxBytes).toBe(1000);
    expect(c.maxSetSize).toBe(3);
    expect(c.maxEntries).toBe(50);
    expect(c.maxMapSize).toBe(4096);
    expect((defaultCodec(2000) as MsgpackCodec).maxSetAndMapEntries).toBe(4096);
  });
});

describe('MsgpackCodec collection limits', () => {
  const unlimited = new MsgpackCodec({ maxSetSize: 1e9, maxMapSize: 1e9, maxSetAndMapEntries: 1e9, maxEntries: 1e9 });
  const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

  function limited(fn: () => unknown, limit: string): CodecError {
    const error = codecError(fn);
    expect(error.code).toBe('CODEC_LIMIT_EXCEEDED');
    expect(error.message).toContain(`(${limit})`);
    return error;
  }

  it('counts only number and BigInt items and keys toward the Set and Map limits (strings and objects cannot be made to collide)', () => {
    const state = new Map(range(1_000).map((i) => [`user${i}`, new Set(['a', 'b', 'c', 'd', 'e'])]));
    expect(roundTrip(state)).toStrictEqual(state);
    const strings = new Set(range(10_000).map((i) => `s${i}`));
    expect(roundTrip(strings)).toStrictEqual(strings);
    const mixed = new Set<unknown>([...range(4096), ...range(1_000).map((i) => `s${i}`)]);
    expect(roundTrip(mixed)).toStrictEqual(mixed);
    limited(() => codec.encode([new Set<unknown>([...range(4097), 'x'])]), 'maxSetSize');
    limited(() => codec.decode(unlimited.encode([new Map(range(4097).map((i) => [i, 'v']))])), 'maxMapSize');
    // numbers across the message still add up
    limited(() => codec.encode([new Set(range(3000)), new Set(range(3000, 3000))]), 'maxSetAndMapEntries');
  });

  it('carries a Set and a Map of exactly maxSetSize / maxMapSize', () => {
    const set = new Set(range(4096));
    const map = new Map(range(4096).map((i) => [`k${i}`, i]));
    expect(roundTrip(set)).toStrictEqual(set);
    expect(roundTrip(map)).toStrictEqual(map);
  });

  it('refuses one item more on encode, naming the collection, and on decode, whole', () => {
    const error = limited(() => codec.encode({ tags: new Set(range(4097)) }), 'maxSetSize');
    expect(error.path).toBe('$.tags');
    expect(error.message).toMatch(/a Set of 4097 items.*4096/);
    limited(() => codec.encode([new Map(range(4097).map((i) => [i, i]))]), 'maxMapSize');
    limited(() => codec.decode(unlimited.encode({ tags: new Set(range(4097)) })), 'maxSetSize');
    limited(() => codec.decode(unlimited.encode(new Map(range(4097).map((i) => [i, i])))), 'maxMapSize');
  });

  it('counts all the Sets and Maps of a message together (maxSetAndMapEntries)', () => {
    // 2000 + 16 + 16 × 130 = 4096
    const fits = [new Set(range(2000)), new Map(range(16).map((i) => [i, new Set(range(130))]))];
    expect(roundTrip(fits)).toStrictEqual(fits);
    const tooMany = [new Set(range(2000)), new Map(range(16).map((i) => [i, new Set(range(131))]))];
    limited(() => codec.encode(tooMany), 'maxSetAndMapEntries');
    limited(() => codec.decode(unlimited.encode(tooMany)), 'maxSetAndMapEntries');
  });

  it('counts a BigInt item or key as 1 plus its 64-bit words', () => {
    const small = (n: number) => new Set(range(n).map((i) => BigInt(i))); // 2 each
    const large = (n: number) => new Map(range(n).map((i) => [2n ** 64n + BigInt(i), i])); // 3 each
    expect(roundTrip(small(2048))).toStrictEqual(small(2048));
    expect(roundTrip(large(1365))).toStrictEqual(large(1365));
    limited(() => codec.encode(small(2049)), 'maxSetSize');
    limited(() => codec.encode(large(1366)), 'maxMapSize');
    limited(() => codec.decode(unlimited.encode(small(2049))), 'maxSetSize');
    limited(() => codec.decode(unlimited.encode(large(1366))), 'maxMapSize');
    // Across collections too; Map values are not keys and count 1 entry each.
    limited(() => codec.decode(unlimited.encode([small(1500), small(1500)])), 'maxSetAndMapEntries');
    const values = new Map(range(4096).map((i) => [i, 2n ** 200n]));
    expect(roundTrip(values)).toStrictEqual(values);
  });

  it('carries at most maxEntries array items, properties, Set items and Map entries per message', () => {
    expect((roundTrip(range(100_000)) as unknown[]).length).toBe(100_000);
    const nested = [range(50_000), Object.fromEntries(range(49_998).map((i) => [`k${i}`, i]))];
    expect(roundTrip(nested)).toStrictEqual(nested);
    limited(() => codec.encode(range(100_001)), 'maxEntries');
    const tooMany = [range(50_000), Object.fromEntries(range(49_999).map((i) => [`k${i}`, i]))];
    const error = limited(() => codec.encode(tooMany), 'maxEntries');
    expect(error.path).toBe('$[1]');
    limited(() => codec.decode(unlimited.encode(tooMany)), 'maxEntries');
    limited(() => codec.decode(unlimited.encode([range(98_000), new Set(range(2000))])), 'maxEntries');
  });

  it('refuses what the header claims before reading the items', () => {
    const small = new MsgpackCodec({ maxSetSize: 2, maxMapSize: 2, maxSetAndMapEntries: 3, maxEntries: 10 });
    expect(small.decode(fromHex('c9 00000003 53 92 01 02'))).toEqual(new Set([1, 2]));
    // Headers with one item too many, and not even the bytes for them: the limit speaks first.
    limited(() => small.decode(fromHex('c9 00000004 53 93 01 02 03')), 'maxSetSize');
    limited(() => small.decode(fromHex('c9 00000007 4d 83 01 01 02 02 03 03')), 'maxMapSize');
    limited(() => small.decode(fromHex('92 c9 00000003 53 92 01 02 c9 00000003 53 92 03 04')), 'maxSetAndMapEntries');
    limited(() => small.decode(fromHex('9b 00 00 00 00 00 00 00 00 00 00 00')), 'maxEntries');
    limited(() => small.decode(fromHex('92 95 00 00 00 00 00 86 a0 00 a1 61 00 a1 62 00 a1 63 00 a1 64 00 a1 65 00')), 'maxEntries');
  });

  it('keeps hash flooding bounded: colliding doubles in a Set', () => {
    // 60,000 doubles that V8 hashes alike took 4 s to put into a Set (README.md): refused now,
    // before any is inserted.
    const flood = setOfDoubles(collidingDoubles(60_000));
    let started = performance.now();
    limited(() => codec.decode(flood), 'maxSetSize');
    expect(performance.now() - started).toBeLessThan(100);
    // The most one Set may hold: ~25 ms here (README.md); the bound leaves room for a busy machine.
    const most = collidingDoubles(4096);
    started = performance.now();
    const decoded = codec.decode(setOfDoubles(most)) as Set<number>;
    expect(performance.now() - started).toBeLessThan(1000);
    expect(decoded.size).toBe(4096);
    expect(decoded.has(most[4095]!)).toBe(true);
  });
});

describe('MsgpackCodec and msgpackr agree on plain MessagePack', () => {
  // msgpackr in its plain mode: no records, maps as objects; with minimal map headers and without.
  const packrs = [new Packr({ useRecords: false }), new Packr({ useRecords: false, variableMapSize: true })];
  const unpackr = new Unpackr({ useRecords: false });

  /** What both sides agree a value becomes: well-formed strings, bytes as plain Uint8Arrays. */
  function normalize(value: unknown, { negativeZero = true } = {}): unknown {
    if (typeof value === 'string') return value.toWellFormed();
    if (typeof value === 'number') return !negativeZero && Object.is(value, -0) ? 0 : value;
    if (value instanceof Uint8Array) return new Uint8Array(value);
    if (Array.isArray(value)) return value.map((item) => normalize(item, { negativeZero }));
    if (typeof value === 'object' && value !== null) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.toWellFormed(), normalize(v, { negativeZero })]));
    }
    return value;
  }

  /** Random plain data: what MessagePack itself has (and `undefined`, which both write as d4 00 00). */
  function plain(next: () => number, depth = 0, budget = { values: 300 }): unknown {
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    const size = () => Math.min(pick([0, 1, 2, 5, 15, 16, 40]), Math.max(0, budget.values));
    budget.values--;
    const kind = Math.floor(next() * (depth < 4 && budget.values > 0 ? 10 : 7));
    switch (kind) {
      case 0:
        return pick([0, 1, -1, 127, 128, -32, -33, 255, 256, 65535, 65536, -32768, -32769, 2 ** 31, -(2 ** 31) - 1, 2 ** 32, 2 ** 40, -(2 ** 40)]);
      case 1:
        return pick([
          Number.MAX_SAFE_INTEGER,
          Number.MIN_SAFE_INTEGER,
          -0,
          Number.NaN,
          Number.POSITIVE_INFINITY,
          Number.NEGATIVE_INFINITY,
          0.1,
          -1.5,
          1e300,
          5e-324,
          2 ** 70,
        ]);
      case 2:
        return (next() - 0.5) * 10 ** Math.floor(next() * 30);
      case 3:
        return randomString(next, pick([0, 3, 31, 32, 255, 256, depth === 0 ? 70_000 : 300]));
      case 4:
        return pick([true, false, null, undefined]);
      case 5:
        return new Uint8Array(pick([0, 1, 255, 256, depth === 0 ? 70_000 : 300])).map(() => Math.floor(next() * 256));
      case 6:
        return Math.floor((next() - 0.5) * 2 ** 33);
      case 7:
      case 8:
        return Array.from({ length: size() }, () => plain(next, depth + 1, budget));
      default:
        return Object.fromEntries(Array.from({ length: size() }, () => [randomString(next, Math.floor(next() * 12)), plain(next, depth + 1, budget)]));
    }
  }

  function randomString(next: () => number, length: number): string {
    const alphabets = ['abcxyz-_ 019', 'äöüßéñ', '✓€中文字', '😀🎉', '\ud800\udfff\udc00'];
    const alphabet = [...alphabets[Math.floor(next() * alphabets.length)]!];
    let text = '';
    while (text.length < length) text += alphabet[Math.floor(next() * alphabet.length)];
    return text.slice(0, length);
  }

  it('decodes in msgpackr what our encoder writes, and decodes what msgpackr writes', () => {
    const next = prng(0x5eed);
    for (let i = 0; i < 1000; i++) {
      const value = plain(next);
      // NOTE: isDeepStrictEqual first, expect only to show a difference: vitest's equality
      // is slow on 70 KB Uint8Arrays.
      const same = (actual: unknown, expected: unknown) => isDeepStrictEqual(actual, expected) || expect(actual).toStrictEqual(expected);
      // Ours → msgpackr: the same values, -0 included; msgpackr gives Buffers for bin.
      same(normalize(unpackr.unpack(codec.encode(value))), normalize(value));
      for (const packr of packrs) {
        // msgpackr → ours: the same values, but msgpackr writes -0 as the integer 0.
        const bytes = packr.pack(value);
        const decoded = codec.decode(bytes);
        same(normalize(decoded), normalize(value, { negativeZero: false }));
        same(decoded, normalize(unpackr.unpack(bytes)));
      }
    }
  });

  it('writes the same bytes as msgpackr for small JSON-like values', () => {
    for (const value of [['account-123', 100, { note: 'short' }], [null, true, false, -1, -33, 200, 1.5], 'ü', [2 ** 32, -(2 ** 31), 0.1]]) {
      expect(hex(codec.encode(value))).toBe(hex(packrs[1]!.pack(value)));
    }
  });

  it('shares undefined with msgpackr; its other extensions are its own', () => {
    expect(unpackr.unpack(codec.encode([undefined]))).toEqual([undefined]);
    // Date 'D', Map 'M', Set 'S', Buffer 'N': unknown to msgpackr.
    for (const value of [new Date(0), new Map([[1, 2]]), new Set([1]), Buffer.from([1])]) {
      expect(() => unpackr.unpack(codec.encode(value))).toThrow(/Unknown extension/);
    }
    // BigInt 'B': msgpackr's BigInt extension has the same number but two's complement; it reads
    // ours right up to int64 and for positive values, and wrong for negative ones beyond int64.
    for (const value of [0n, -5n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n, 2n ** 1000n]) {
      expect(unpackr.unpack(codec.encode(value))).toBe(value);
    }
    expect(unpackr.unpack(codec.encode(-(2n ** 100n)))).not.toBe(-(2n ** 100n));
    // msgpackr's own forms for these are not in our profile: timestamp ext, int64 formats.
    for (const value of [new Date(0), 5n, 2n ** 40n]) {
      expect(codecError(() => codec.decode(packrs[0]!.pack(value))).code).toBe('CODEC_MALFORMED');
    }
  });
});
