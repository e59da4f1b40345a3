/**
 * Measures codec candidates for grain arguments and results (lib/remote/codec/README.md
 * quotes its output). Not part of `npm run bench`:
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/codec-candidates.js \
 *       [--modules DIR] [--rounds 7] [--round-ms 60]
 *
 * Candidates from npm (msgpackr, cbor-x, @msgpack/msgpack) are not dependencies of the
 * project: they are measured when they resolve from the repo or from `--modules DIR` (a
 * folder holding a node_modules/, e.g. one made with `npm install --prefix DIR msgpackr`),
 * and skipped otherwise.
 *
 * Method: for every candidate and payload, the round size is calibrated to about
 * --round-ms; then timed rounds are interleaved (round r of every subject before round
 * r+1), so drift on this shared machine hits all subjects alike. Figures are medians.
 * Three operations are timed: encode+decode (the figure that matters: one grain call
 * argument list, or one result, crossing members), encode alone, decode alone.
 * Every candidate's round trip is checked against the payload first (`lossy` if it differs).
 */
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import v8 from 'node:v8';
import { type Codec, CodecError } from '../lib/remote/codec/codec.js';
import { MsgpackCodec } from '../lib/remote/codec/msgpack-codec.js';
import { fmtNum, fmtRate, table } from './support/format.js';

interface Candidate {
  readonly label: string;
  readonly note: string;
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

// ---------------------------------------------------------------------------------------------
// Payloads

const SMALL = ['account-123', 100, { note: 'short' }];

function order(i: number): Record<string, unknown> {
  return {
    id: `order-${100000 + i}`,
    customer: { id: `customer-${i % 97}`, name: 'Ada Lovelace', email: 'ada@example.com', vip: i % 3 === 0 },
    createdAt: 1_732_700_000_000 + i * 1000,
    status: i % 2 === 0 ? 'paid' : 'pending',
    total: 1234.56 + i,
    currency: 'EUR',
    lines: [
      { sku: `SKU-${i}-A`, qty: 1, price: 999.99, title: 'A reasonably long product title' },
      { sku: `SKU-${i}-B`, qty: 3, price: 78.19, title: 'Another product, with a comma' },
    ],
    tags: ['web', 'eu', 'gift'],
    notes: null,
  };
}

/** ~1 KB as JSON. */
const ONE_KB = { page: 1, orders: [order(1), order(2)], next: 'cursor-abcdef' };
/** ~64 KB as JSON. */
const SIXTY_FOUR_KB = { page: 1, orders: Array.from({ length: 128 }, (_, i) => order(i)), next: 'cursor-abcdef' };
const MIX = [
  new Map<unknown, unknown>([
    ['alice', { balance: 10_000_000_000n, since: new Date(1_700_000_000_000) }],
    [42, new Set(['a', 'b', 'c'])],
  ]),
  new Set([1, 2, 3, 'four']),
  new Date(1_732_700_000_123),
  -(2n ** 64n) - 1n,
  { amount: 12345678901234567890n, at: new Date(0), tags: new Set(['x']), missing: undefined },
];

const PAYLOADS: readonly { readonly name: string; readonly value: unknown }[] = [
  { name: 'small args', value: SMALL },
  { name: '1 KB object', value: ONE_KB },
  { name: '64 KB object', value: SIXTY_FOUR_KB },
  { name: 'Map/Set/Date/BigInt', value: MIX },
];

// ---------------------------------------------------------------------------------------------
// The same rules as the default codec, as a separate walk: what a library codec would need
// before encode (refuse what would not cross intact) and after decode (refuse what is not
// plain data), to be as strict as the default. Measured with the library, as "+ checks".

const MAX_DEPTH = 128;

function checkPlain(value: unknown, depth: number): void {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'undefined':
    case 'bigint':
      return;
    case 'object': {
      if (value === null) return;
      if (depth >= MAX_DEPTH) throw new CodecError('CODEC_UNSUPPORTED_VALUE', 'too deep (or a cycle)');
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) checkPlain(value[i], depth + 1);
        return;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto === Object.prototype || proto === null) {
        const record = value as Record<string, unknown>;
        for (const key of Object.keys(record)) checkPlain(record[key], depth + 1);
        return;
      }
      if (proto === Date.prototype || proto === Uint8Array.prototype || proto === Buffer.prototype) return;
      if (proto === Map.prototype) {
        for (const [k, v] of value as Map<unknown, unknown>) {
          checkPlain(k, depth + 1);
          checkPlain(v, depth + 1);
        }
        return;
      }
      if (proto === Set.prototype) {
        for (const item of value as Set<unknown>) checkPlain(item, depth + 1);
        return;
      }
      throw new CodecError('CODEC_UNSUPPORTED_VALUE', 'not plain data');
    }
    default:
      throw new CodecError('CODEC_UNSUPPORTED_VALUE', `a ${typeof value}`);
  }
}

function withChecks(label: string, note: string, inner: Pick<Candidate, 'encode' | 'decode'>): Candidate {
  return {
    label,
    note,
    encode(value) {
      checkPlain(value, 0);
      return inner.encode(value);
    },
    decode(bytes) {
      if (bytes.byteLength > 4 * 1024 * 1024) throw new CodecError('CODEC_TOO_LARGE', 'too large');
      let value: unknown;
      try {
        value = inner.decode(bytes);
      } catch (error) {
        throw new CodecError('CODEC_MALFORMED', String(error), undefined, { cause: error });
      }
      checkPlain(value, 0);
      return value;
    },
  };
}

function fromCodec(codec: Codec, note: string): Candidate {
  return { label: codec.name, note, encode: (v) => codec.encode(v), decode: (b) => codec.decode(b) };
}

// ---------------------------------------------------------------------------------------------
// JSON with a tagged replacer/reviver: every value JSON cannot carry becomes { $: tag, v }, and
// a plain object that has a `$` key of its own is wrapped as { $: 'O', v: object }.

function jsonReplacer(this: Record<string, unknown>, key: string, jsonValue: unknown): unknown {
  const value = this[key]; // the value before toJSON (Date, Buffer)
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0) ? value : { $: 'n', v: String(value) };
    case 'undefined':
      return { $: 'u' };
    case 'bigint':
      return { $: 'b', v: value.toString() };
    case 'string':
    case 'boolean':
      return value;
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) return value;
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto === Object.prototype || proto === null) {
        return Object.hasOwn(value, '$') ? { $: 'O', v: Object.entries(value) } : jsonValue;
      }
      if (proto === Date.prototype) return { $: 'D', v: (value as Date).getTime() };
      if (proto === Map.prototype) return { $: 'M', v: [...(value as Map<unknown, unknown>)] };
      if (proto === Set.prototype) return { $: 'S', v: [...(value as Set<unknown>)] };
      if (proto === Buffer.prototype) return { $: 'N', v: (value as Buffer).toString('base64') };
      if (proto === Uint8Array.prototype) return { $: 'U', v: Buffer.from(value as Uint8Array).toString('base64') };
      throw new CodecError('CODEC_UNSUPPORTED_VALUE', 'not plain data');
    }
    default:
      throw new CodecError('CODEC_UNSUPPORTED_VALUE', `a ${typeof value}`);
  }
}

function jsonReviver(_key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const tagged = value as { $?: unknown; v?: unknown };
  switch (tagged.$) {
    case undefined:
      return value;
    case 'n':
      return Number(tagged.v);
    case 'u':
      return undefined;
    case 'b':
      return BigInt(String(tagged.v));
    case 'D':
      return new Date(tagged.v === null ? Number.NaN : Number(tagged.v));
    case 'M':
      return new Map(tagged.v as [unknown, unknown][]);
    case 'S':
      return new Set(tagged.v as unknown[]);
    case 'N':
      return Buffer.from(String(tagged.v), 'base64');
    case 'U':
      return new Uint8Array(Buffer.from(String(tagged.v), 'base64'));
    case 'O':
      return Object.fromEntries(tagged.v as [string, unknown][]);
    default:
      throw new CodecError('CODEC_MALFORMED', 'unknown tag');
  }
}

// NOTE: a reviver returning undefined deletes the property, so undefined travels as a marker
// that a second pass would have to restore; this candidate accepts that loss (it is already
// the slowest) and is marked lossy where it matters.
const jsonTagged: Candidate = {
  label: 'JSON + tagged replacer/reviver',
  note: 'JSON.stringify/parse with a replacer and reviver; UTF-8 via Buffer',
  encode: (value) => Buffer.from(JSON.stringify(value, jsonReplacer), 'utf8'),
  decode: (bytes) => JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'), jsonReviver),
};

const jsonPlain: Candidate = {
  label: 'JSON (plain, reference)',
  note: 'JSON.stringify/parse, no replacer: loses every non-JSON type',
  encode: (value) => Buffer.from(JSON.stringify(value), 'utf8'),
  decode: (bytes) => JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')),
};

const v8Raw: Candidate = {
  label: 'v8.serialize',
  note: 'node:v8 serialize/deserialize, nothing around it',
  encode: (value) => v8.serialize(value),
  decode: (bytes) => v8.deserialize(bytes),
};

// ---------------------------------------------------------------------------------------------
// Candidates from npm, when they resolve.

interface PackrLike {
  pack(value: unknown): Uint8Array;
  unpack(bytes: Uint8Array): unknown;
}
interface MsgpackrModule {
  Packr: new (options?: Record<string, unknown>) => PackrLike;
}
interface CborEncoderLike {
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}
interface CborXModule {
  Encoder: new (options?: Record<string, unknown>) => CborEncoderLike;
}
interface MsgpackModule {
  encode(value: unknown, options?: Record<string, unknown>): Uint8Array;
  decode(bytes: Uint8Array, options?: Record<string, unknown>): unknown;
}

async function loadOptional<T>(name: string, modulesDir: string | undefined): Promise<T | undefined> {
  try {
    const specifier = modulesDir ? pathToFileURL(createRequire(join(resolve(modulesDir), 'index.js')).resolve(name)).href : name;
    const loaded = (await import(specifier)) as T & { default?: T };
    return loaded.default && typeof loaded.default === 'object' ? { ...loaded.default, ...loaded } : loaded;
  } catch {
    return undefined;
  }
}

async function npmCandidates(modulesDir: string | undefined): Promise<{ candidates: Candidate[]; skipped: string[] }> {
  const candidates: Candidate[] = [];
  const skipped: string[] = [];
  const msgpackr = await loadOptional<MsgpackrModule>('msgpackr', modulesDir);
  if (msgpackr?.Packr) {
    const packr = new msgpackr.Packr({ moreTypes: true, mapsAsObjects: false, useBigIntExtension: true });
    const inner = { encode: (v: unknown) => packr.pack(v), decode: (b: Uint8Array) => packr.unpack(b) };
    candidates.push({
      label: 'msgpackr (records, moreTypes)',
      note: 'new Packr({ moreTypes, mapsAsObjects: false, useBigIntExtension }): objects as records, Maps as maps',
      ...inner,
    });
    candidates.push(withChecks('msgpackr + checks', 'the same, plus the walks before encode and after decode', inner));
    const cloning = new msgpackr.Packr({ structuredClone: true, useBigIntExtension: true });
    candidates.push({
      label: 'msgpackr (structuredClone)',
      note: 'new Packr({ structuredClone, useBigIntExtension }): also cycles and shared references',
      encode: (v) => cloning.pack(v),
      decode: (b) => cloning.unpack(b),
    });
    const plain = new msgpackr.Packr({ useRecords: false });
    candidates.push({
      label: 'msgpackr (plain, reference)',
      note: 'new Packr({ useRecords: false }): Maps become objects',
      encode: (v) => plain.pack(v),
      decode: (b) => plain.unpack(b),
    });
  } else {
    skipped.push('msgpackr');
  }
  const cborX = await loadOptional<CborXModule>('cbor-x', modulesDir);
  if (cborX?.Encoder) {
    const encoder = new cborX.Encoder({});
    candidates.push({
      label: 'cbor-x',
      note: 'new Encoder(): records; Map, Set, Date, BigInt as CBOR tags',
      encode: (v) => encoder.encode(v),
      decode: (b) => encoder.decode(b),
    });
  } else {
    skipped.push('cbor-x');
  }
  const msgpack = await loadOptional<MsgpackModule>('@msgpack/msgpack', modulesDir);
  if (msgpack?.encode) {
    const options = { useBigInt64: true };
    candidates.push({
      label: '@msgpack/msgpack',
      note: 'encode/decode({ useBigInt64 }): Maps, Sets and undefined do not survive',
      encode: (v) => msgpack.encode(v, options),
      decode: (b) => msgpack.decode(b, options),
    });
  } else {
    skipped.push('@msgpack/msgpack');
  }
  return { candidates, skipped };
}

// ---------------------------------------------------------------------------------------------
// Timing

type Operation = 'round trip' | 'encode' | 'decode';
const OPERATIONS: readonly Operation[] = ['round trip', 'encode', 'decode'];

let sink: unknown;

interface Subject {
  readonly candidate: Candidate;
  readonly payload: string;
  readonly operation: Operation;
  readonly run: (iterations: number) => void;
  iterations: number;
  readonly rates: number[];
}

function makeRun(candidate: Candidate, value: unknown, operation: Operation): (iterations: number) => void {
  const bytes = candidate.encode(value);
  switch (operation) {
    case 'round trip':
      return (n) => {
        for (let i = 0; i < n; i++) sink = candidate.decode(candidate.encode(value));
      };
    case 'encode':
      return (n) => {
        for (let i = 0; i < n; i++) sink = candidate.encode(value);
      };
    case 'decode':
      return (n) => {
        for (let i = 0; i < n; i++) sink = candidate.decode(bytes);
      };
  }
}

function timeRound(subject: Subject): number {
  const start = process.hrtime.bigint();
  subject.run(subject.iterations);
  const ns = Number(process.hrtime.bigint() - start);
  return (subject.iterations / ns) * 1e9;
}

function calibrate(subject: Subject, roundMs: number): void {
  let n = 16;
  for (;;) {
    const start = process.hrtime.bigint();
    subject.run(n);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (ms >= roundMs / 4 || n > 1e8) {
      subject.iterations = Math.max(1, Math.round((n * roundMs) / Math.max(ms, 0.001)));
      return;
    }
    n *= 4;
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      modules: { type: 'string' },
      rounds: { type: 'string', default: '7' },
      'round-ms': { type: 'string', default: '60' },
    },
  });
  const rounds = Number(values.rounds);
  const roundMs = Number(values['round-ms']);
  const { candidates: fromNpm, skipped } = await npmCandidates(values.modules);
  const candidates: Candidate[] = [
    fromCodec(new MsgpackCodec(), 'the default: lib/remote/codec/msgpack-codec.ts (limits and checks built in)'),
    v8Raw,
    withChecks('v8.serialize + checks', 'the same, plus the walks before encode and after decode', v8Raw),
    ...fromNpm,
    jsonTagged,
    jsonPlain,
  ];

  console.log(`node ${process.version}, ${rounds} rounds of ~${roundMs} ms, interleaved; medians`);
  if (skipped.length > 0) console.log(`not measured (did not resolve; see --modules): ${skipped.join(', ')}`);
  console.log('');
  for (const c of candidates) console.log(`  ${c.label}: ${c.note}`);
  console.log('');

  // Sizes and fidelity first.
  const sizes = new Map<string, string>();
  const lossy = new Set<string>();
  for (const c of candidates) {
    for (const p of PAYLOADS) {
      const key = `${c.label}|${p.name}`;
      try {
        const bytes = c.encode(p.value);
        sizes.set(key, String(bytes.byteLength));
        if (!isDeepStrictEqual(c.decode(bytes), p.value)) lossy.add(key);
      } catch (error) {
        sizes.set(key, 'fails');
        lossy.add(key);
        console.log(`  ${c.label} / ${p.name}: ${error instanceof Error ? error.message.slice(0, 100) : String(error)}`);
      }
    }
  }

  const subjects: Subject[] = [];
  for (const c of candidates) {
    for (const p of PAYLOADS) {
      if (sizes.get(`${c.label}|${p.name}`) === 'fails') continue;
      for (const operation of OPERATIONS) {
        subjects.push({ candidate: c, payload: p.name, operation, run: makeRun(c, p.value, operation), iterations: 0, rates: [] });
      }
    }
  }
  for (const s of subjects) calibrate(s, roundMs);
  for (const s of subjects) s.run(s.iterations); // warm-up round
  for (let r = 0; r < rounds; r++) {
    const offset = r % subjects.length;
    for (let i = 0; i < subjects.length; i++) {
      const s = subjects[(i + offset) % subjects.length]!;
      s.rates.push(timeRound(s));
    }
  }

  const rate = (c: Candidate, payload: string, operation: Operation): number => {
    const s = subjects.find((x) => x.candidate === c && x.payload === payload && x.operation === operation);
    return s ? median(s.rates) : Number.NaN;
  };
  for (const p of PAYLOADS) {
    console.log(`\n${p.name}`);
    const rows: string[][] = [['candidate', 'bytes', 'enc+dec ops/s', 'enc+dec µs', 'encode µs', 'decode µs', 'round trip']];
    for (const c of candidates) {
      const key = `${c.label}|${p.name}`;
      const rt = rate(c, p.name, 'round trip');
      rows.push([
        c.label,
        sizes.get(key) ?? '',
        fmtRate(rt),
        fmtNum(1e6 / rt, 2),
        fmtNum(1e6 / rate(c, p.name, 'encode'), 2),
        fmtNum(1e6 / rate(c, p.name, 'decode'), 2),
        lossy.has(key) ? 'lossy' : 'exact',
      ]);
    }
    console.log(table(rows, ['left', 'right', 'right', 'right', 'right', 'right', 'left']));
  }
  if (sink === Symbol.for('never')) console.log('');
}

await main();
