/**
 * The default codec (`grains-msgpack/1`): a strict profile of MessagePack for plain JS data,
 * written here rather than taken from a library so that exactly the documented values
 * round-trip, everything else is refused at encode time with its path, and the decoder can
 * only ever build plain data (see README.md beside this file for the format and the numbers).
 *
 * Wire format (valid MessagePack; big-endian):
 * - null, booleans, strings (UTF-8), Uint8Array (`bin`), arrays, plain objects (maps with
 *   string keys): the standard MessagePack forms.
 * - numbers: the int formats up to 32 bits for integers that fit (except -0), else float64.
 * - extension types: undefined `0x00` (1 byte, 0), BigInt `B` (8 bytes int64, or a sign byte
 *   then the magnitude), Date `D` (float64 ms since the epoch), Buffer `N` (its bytes), Map
 *   `M` and Set `S` (a MessagePack map / array inside the extension).
 * The decoder accepts these forms, non-minimal lengths and float32, and nothing else
 * (no 64-bit int formats, no other extension types, no trailing bytes).
 * Limits (codec.ts, README.md): `maxBytes`, `maxDepth`, and the collection limits `maxSetSize`,
 * `maxMapSize`, `maxSetAndMapEntries` (hash flooding) and `maxEntries`, checked the same way
 * by the encoder and the decoder.
 */
import { Buffer } from 'node:buffer';
import {
  type Codec,
  CodecError,
  type CodecErrorCode,
  type CodecLimits,
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_ENTRIES,
  DEFAULT_MAX_MAP_SIZE,
  DEFAULT_MAX_SET_AND_MAP_ENTRIES,
  DEFAULT_MAX_SET_SIZE,
} from './codec.js';

/** Encodings are written one after another into a slab this size; a full slab is left to the GC. */
const SLAB_BYTES = 64 * 1024;
/** Strings shorter than this are UTF-8 encoded by a JS loop; longer ones by Buffer#write. */
const JS_UTF8_MAX_CHARS = 64;
/** Strings shorter than this (in bytes) are decoded by a JS loop when they are ASCII. */
const JS_ASCII_MAX_BYTES = 32;
/** How far `encode` may run past `maxBytes` before it stops (an estimate's slack). */
const SIZE_SLACK = 256;

const EXT_UNDEFINED = 0x00;
const EXT_BIGINT = 0x42; // 'B'
const EXT_DATE = 0x44; // 'D'
const EXT_MAP = 0x4d; // 'M'
const EXT_BUFFER = 0x4e; // 'N'
const EXT_SET = 0x53; // 'S'

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

// NOTE: floats and int64 go through these scratch arrays rather than a DataView, so that
// neither encode nor decode allocates one per call; the copy loops turn the platform's byte
// order into MessagePack's big-endian.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const f64 = new Float64Array(1);
const f32 = new Float32Array(1);
const i64 = new BigInt64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const f32Bytes = new Uint8Array(f32.buffer);
const i64Bytes = new Uint8Array(i64.buffer);

/**
 * Object keys decoded lately, by a hash of their bytes (short ASCII keys only). A hit returns
 * the same string as last time — already internalized, which makes `object[key] = value`
 * much cheaper — and allocates nothing. Checked char by char, so a collision (or hostile
 * input) costs a miss, never a wrong key.
 */
const KEY_CACHE_SIZE = 4096;
const keyCache: (string | undefined)[] = new Array<string | undefined>(KEY_CACHE_SIZE).fill(undefined);

/** Reused argument arrays for `String.fromCharCode.apply`, one per length. */
const CHAR_CODES: number[][] = Array.from({ length: JS_ASCII_MAX_BYTES }, (_, n) => new Array<number>(n).fill(0));

/** Options of the default codec (defaults and reasons in codec.ts and README.md). */
export type MsgpackCodecOptions = CodecLimits;

/** Every limit, resolved. */
type Limits = Readonly<Required<CodecLimits>>;

/**
 * The default codec. One instance per member is enough: encode and decode are synchronous and
 * keep nothing between calls but the output slab (and a module-wide cache of decoded keys).
 */
export class MsgpackCodec implements Codec {
  readonly name = 'grains-msgpack/1';
  readonly maxBytes: number;
  readonly maxDepth: number;
  readonly maxSetSize: number;
  readonly maxMapSize: number;
  readonly maxSetAndMapEntries: number;
  readonly maxEntries: number;
  private readonly limits: Limits;
  private readonly encoder: Encoder;
  private readonly decoder: Decoder;

  constructor(options: MsgpackCodecOptions = {}) {
    this.maxBytes = positiveInteger(options.maxBytes ?? DEFAULT_MAX_BYTES, 'maxBytes');
    this.maxDepth = positiveInteger(options.maxDepth ?? DEFAULT_MAX_DEPTH, 'maxDepth');
    this.maxSetSize = positiveInteger(options.maxSetSize ?? DEFAULT_MAX_SET_SIZE, 'maxSetSize');
    this.maxMapSize = positiveInteger(options.maxMapSize ?? DEFAULT_MAX_MAP_SIZE, 'maxMapSize');
    this.maxSetAndMapEntries = positiveInteger(options.maxSetAndMapEntries ?? DEFAULT_MAX_SET_AND_MAP_ENTRIES, 'maxSetAndMapEntries');
    this.maxEntries = positiveInteger(options.maxEntries ?? DEFAULT_MAX_ENTRIES, 'maxEntries');
    this.limits = {
      maxBytes: this.maxBytes,
      maxDepth: this.maxDepth,
      maxSetSize: this.maxSetSize,
      maxMapSize: this.maxMapSize,
      maxSetAndMapEntries: this.maxSetAndMapEntries,
      maxEntries: this.maxEntries,
    };
    this.encoder = new Encoder(this.limits);
    this.decoder = new Decoder(this.limits);
  }

  encode(value: unknown): Uint8Array {
    // NOTE: re-entry is possible only through a getter that encodes; give it its own encoder.
    if (this.encoder.busy) return new Encoder(this.limits).encode(value);
    return this.encoder.encode(value);
  }

  decode(bytes: Uint8Array): unknown {
    if (this.decoder.busy) return new Decoder(this.limits).decode(bytes);
    return this.decoder.decode(bytes);
  }
}

/**
 * What a Set item or Map key counts toward `maxSetSize`, `maxMapSize` and
 * `maxSetAndMapEntries`: a number 1, a BigInt 1 plus its size in 64-bit words, anything else
 * 0. NOTE: only numbers and BigInts can be made to collide in V8's hash tables (it hashes
 * them unseeded; strings get a per-process random seed, objects hash by identity), and a
 * BigInt is hashed by its lowest word only and compared word by word, so big BigInts that
 * share their lowest word cost more per collision; counted this way, no key type costs more
 * than colliding doubles do per unit (measured, README.md). A `Map<string, Set<string>>` is
 * bounded by `maxEntries` alone.
 */
function keyWeight(key: unknown): number {
  if (typeof key === 'number') return 1;
  if (typeof key !== 'bigint') return 0;
  if (key >= INT64_MIN && key <= INT64_MAX) return 2;
  return 1 + Math.ceil((key < 0n ? -key : key).toString(16).length / 16);
}

type Collection = 'array' | 'object' | 'Set' | 'Map';

/**
 * A message's collection entries, counted against `maxEntries`, `maxSetSize`, `maxMapSize` and
 * `maxSetAndMapEntries` as encode writes them or decode reads them. NOTE: the hot checks are
 * inlined by the callers (`(counter.entriesLeft -= n) < 0`); the methods here say why a value
 * is over a limit, and run only then (or per Set and Map).
 */
class EntryCounter {
  /** Collection entries the message may still have (`maxEntries`). */
  entriesLeft = 0;
  /** Set items and Map entries, by weight, it may still have (`maxSetAndMapEntries`). */
  keyedLeft = 0;

  constructor(private readonly limits: Limits) {}

  reset(): void {
    this.entriesLeft = this.limits.maxEntries;
    this.keyedLeft = this.limits.maxSetAndMapEntries;
  }

  /** Why `n` entries of a `kind` went over `maxEntries` (after `entriesLeft` went below 0). */
  tooManyEntries(kind: Collection, n: number): string {
    const what = `${describeCollection(kind, n)}, which makes more collection entries than one message carries`;
    return `${what}: the limit is ${this.limits.maxEntries} (maxEntries)`;
  }

  /** A Set's or Map's `n` items, before any is written or read: why they are too many, or undefined. */
  keyed(kind: 'Set' | 'Map', n: number): string | undefined {
    return (this.entriesLeft -= n) < 0 ? this.tooManyEntries(kind, n) : undefined;
  }

  /**
   * A number or BigInt item or key of a Set or Map of `n`, before it is inserted: `w` its
   * weight (`keyWeight`), `weight` the collection's numeric weight with it. Why that is too
   * much, or undefined.
   */
  keyWeight(kind: 'Set' | 'Map', n: number, w: number, weight: number): string | undefined {
    const limit = kind === 'Set' ? this.limits.maxSetSize : this.limits.maxMapSize;
    const counting = 'numbers counting 1, BigInts 1 plus their 64-bit words';
    if (weight > limit) return `${describeCollection(kind, n)} (${counting}): the limit is ${limit} (${kind === 'Set' ? 'maxSetSize' : 'maxMapSize'})`;
    return (this.keyedLeft -= w) < 0 ? `${this.tooManyKeyed(kind, n)} (${counting})` : undefined;
  }

  private tooManyKeyed(kind: 'Set' | 'Map', n: number): string {
    const what = `${describeCollection(kind, n)}, which makes more Set items and Map entries than one message carries`;
    return `${what}: the limit is ${this.limits.maxSetAndMapEntries} (maxSetAndMapEntries)`;
  }
}

function describeCollection(kind: Collection, n: number): string {
  switch (kind) {
    case 'array':
      return `an array of ${n} items`;
    case 'object':
      return `an object of ${n} properties`;
    case 'Set':
      return `a Set of ${n} items`;
    default:
      return `a Map of ${n} entries`;
  }
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`MsgpackCodec: ${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** An encode failure on its way up; each container adds its path segment. */
class EncodeFailure {
  /** Path segments, innermost first. */
  readonly segments: string[] = [];
  /**
   * Set when a container on the way up turns out to be the too-deep value itself — a cycle:
   * how many of `segments` lie inside that container.
   */
  cycleAt: number | undefined;
  constructor(
    readonly code: CodecErrorCode,
    readonly reason: string,
    /** For "nested too deep": the container that was too deep, to recognise a cycle. */
    readonly tooDeep?: object,
    readonly cause?: unknown,
  ) {}

  path(): string {
    let path = '$';
    for (let i = this.segments.length - 1; i >= 0; i--) path += this.segments[i];
    return path;
  }

  toCodecError(): CodecError {
    if (this.cycleAt !== undefined) {
      // The outermost container that is also the too-deep value: the cycle goes through it.
      let path = '$';
      for (let i = this.segments.length - 1; i >= this.cycleAt; i--) path += this.segments[i];
      const message = `Cannot encode a cycle: the value at ${path} contains itself; send a tree, not a graph`;
      return new CodecError(this.code, message, path);
    }
    const path = this.path();
    const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
    return new CodecError(this.code, `Cannot encode ${this.reason} at ${shown}`, path, { cause: this.cause });
  }
}

class Encoder {
  busy = false;
  private slab: Buffer = Buffer.allocUnsafeSlow(SLAB_BYTES);
  /** Where the encoding in progress starts in the slab. */
  private start = 0;
  private pos = 0;
  private readonly maxBytes: number;
  private readonly maxDepth: number;
  private readonly counter: EntryCounter;

  constructor(limits: Limits) {
    this.maxBytes = limits.maxBytes;
    this.maxDepth = limits.maxDepth;
    this.counter = new EntryCounter(limits);
  }

  encode(value: unknown): Uint8Array {
    this.busy = true;
    this.counter.reset();
    try {
      this.write(value, 0);
      const length = this.pos - this.start;
      if (length > this.maxBytes) throw this.tooLarge(length);
      // NOTE: zero-copy: a view into the slab, which is never written there again.
      const out = new Uint8Array(this.slab.buffer, this.slab.byteOffset + this.start, length);
      this.start = this.pos;
      return out;
    } catch (error) {
      this.pos = this.start;
      if (error instanceof EncodeFailure) throw error.toCodecError();
      if (error instanceof CodecError) throw error;
      throw new CodecError('CODEC_UNSUPPORTED_VALUE', `Cannot encode the value: ${String(error)}`, '$', {
        cause: error,
      });
    } finally {
      this.busy = false;
    }
  }

  /** `length`: the final size, or undefined when encode stopped part-way. */
  private tooLarge(length?: number): EncodeFailure {
    const size = length === undefined ? `more than ${this.maxBytes}` : `${length}`;
    return new EncodeFailure('CODEC_TOO_LARGE', `a value of ${size} bytes: the limit is ${this.maxBytes} (maxBytes)`);
  }

  /** Make room for `n` more bytes. */
  private ensure(n: number): void {
    if (this.pos + n > this.slab.length) this.grow(n);
  }

  private grow(n: number): void {
    const used = this.pos - this.start;
    if (used + n > this.maxBytes + SIZE_SLACK) throw this.tooLarge();
    let size = SLAB_BYTES;
    while (size < (used + n) * 2) size *= 2;
    const slab = Buffer.allocUnsafeSlow(size);
    this.slab.copy(slab, 0, this.start, this.pos);
    this.slab = slab;
    this.start = 0;
    this.pos = used;
  }

  /** `depth`: how many containers enclose `value`. */
  private write(value: unknown, depth: number): void {
    switch (typeof value) {
      case 'string':
        return this.writeString(value);
      case 'number':
        return this.writeNumber(value);
      case 'boolean':
        this.ensure(1);
        this.slab[this.pos++] = value ? 0xc3 : 0xc2;
        return;
      case 'object':
        if (value === null) {
          this.ensure(1);
          this.slab[this.pos++] = 0xc0;
          return;
        }
        return this.writeObject(value, depth);
      case 'undefined':
        this.ensure(3);
        this.slab[this.pos++] = 0xd4;
        this.slab[this.pos++] = EXT_UNDEFINED;
        this.slab[this.pos++] = 0;
        return;
      case 'bigint':
        return this.writeBigInt(value);
      default:
        throw new EncodeFailure('CODEC_UNSUPPORTED_VALUE', describeUnsupported(value));
    }
  }

  private writeObject(value: object, depth: number): void {
    if (Array.isArray(value)) return this.writeArray(value, depth);
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      return this.writePlainObject(value as Record<string, unknown>, depth);
    }
    if (proto === Uint8Array.prototype) return this.writeBin(value as Uint8Array);
    if (proto === Buffer.prototype) return this.writeBuffer(value as Buffer);
    if (proto === Date.prototype) return this.writeDate(value as Date);
    if (proto === Map.prototype) return this.writeMap(value as Map<unknown, unknown>, depth);
    if (proto === Set.prototype) return this.writeSet(value as Set<unknown>, depth);
    throw new EncodeFailure('CODEC_UNSUPPORTED_VALUE', describeUnsupported(value));
  }

  private enter(container: object, depth: number): void {
    if (depth >= this.maxDepth) {
      const reason = `a value nested deeper than ${this.maxDepth} levels (maxDepth)`;
      throw new EncodeFailure('CODEC_UNSUPPORTED_VALUE', reason, container);
    }
  }

  /** Rethrow `error` with the segment of the child it came from. */
  private failIn(error: unknown, container: object, segment: string): EncodeFailure {
    let failure: EncodeFailure;
    if (error instanceof EncodeFailure) {
      failure = error;
    } else if (error instanceof RangeError && /call stack/i.test(error.message)) {
      const reason = 'a value nested too deeply for the stack (lower maxDepth)';
      failure = new EncodeFailure('CODEC_UNSUPPORTED_VALUE', reason, undefined, error);
    } else {
      failure = new EncodeFailure('CODEC_UNSUPPORTED_VALUE', `a value whose reading threw (${String(error)})`, undefined, error);
    }
    failure.segments.push(segment);
    if (failure.tooDeep === container) failure.cycleAt = failure.segments.length;
    return failure;
  }

  private writeArray(array: readonly unknown[], depth: number): void {
    this.enter(array, depth);
    const n = array.length;
    if ((this.counter.entriesLeft -= n) < 0) throw new EncodeFailure('CODEC_LIMIT_EXCEEDED', this.counter.tooManyEntries('array', n));
    this.writeContainerHeader(n, 0x90, 0xdc);
    let i = 0;
    try {
      for (; i < n; i++) this.write(array[i], depth + 1);
    } catch (error) {
      throw this.failIn(error, array, `[${i}]`);
    }
  }

  private writePlainObject(object: Record<string, unknown>, depth: number): void {
    this.enter(object, depth);
    const keys = Object.keys(object);
    const n = keys.length;
    if ((this.counter.entriesLeft -= n) < 0) throw new EncodeFailure('CODEC_LIMIT_EXCEEDED', this.counter.tooManyEntries('object', n));
    this.writeContainerHeader(n, 0x80, 0xde);
    let i = 0;
    try {
      for (; i < n; i++) {
        const key = keys[i]!;
        this.writeString(key);
        this.write(object[key], depth + 1);
      }
    } catch (error) {
      throw this.failIn(error, object, propertySegment(keys[i]!));
    }
  }

  /** fix (n < 16), 16-bit or 32-bit count; `fix` is the fix form's base, `wide` the 16-bit form. */
  private writeContainerHeader(n: number, fix: number, wide: number): void {
    this.ensure(5);
    const slab = this.slab;
    if (n < 16) {
      slab[this.pos++] = fix | n;
    } else if (n < 0x10000) {
      slab[this.pos++] = wide;
      slab[this.pos++] = n >>> 8;
      slab[this.pos++] = n & 0xff;
    } else {
      slab[this.pos++] = wide + 1;
      this.writeU32(n);
    }
  }

  private writeMap(map: Map<unknown, unknown>, depth: number): void {
    this.enter(map, depth);
    const n = map.size;
    const tooMany = this.counter.keyed('Map', n);
    if (tooMany !== undefined) throw new EncodeFailure('CODEC_LIMIT_EXCEEDED', tooMany);
    const lengthAt = this.openExtension(EXT_MAP);
    this.writeContainerHeader(n, 0x80, 0xde);
    let i = 0;
    let segment = '';
    let weight = 0;
    // NOTE: thrown once out of the loop, so that its path is the Map's, not the key's.
    let over: string | undefined;
    try {
      for (const [key, value] of map) {
        if (i === n) break;
        const w = keyWeight(key);
        if (w > 0 && (over = this.counter.keyWeight('Map', n, w, (weight += w))) !== undefined) break;
        segment = `.<map key #${i}>`;
        this.write(key, depth + 1);
        segment = `.get(${previewKey(key)})`;
        this.write(value, depth + 1);
        i++;
      }
      if (over === undefined && i !== n) throw new EncodeFailure('CODEC_UNSUPPORTED_VALUE', 'a Map that changed while it was being encoded');
    } catch (error) {
      throw this.failIn(error, map, segment);
    }
    if (over !== undefined) throw new EncodeFailure('CODEC_LIMIT_EXCEEDED', over);
    this.closeExtension(lengthAt);
  }

  private writeSet(set: Set<unknown>, depth: number): void {
    this.enter(set, depth);
    const n = set.size;
    const tooMany = this.counter.keyed('Set', n);
    if (tooMany !== undefined) throw new EncodeFailure('CODEC_LIMIT_EXCEEDED', tooMany);
    const lengthAt = this.openExtension(EXT_SET);
    this.writeContainerHeader(n, 0x90, 0xdc);
    let i = 0;
    let weight = 0;
    let over: string | undefined;
    try {
      for (const item of set) {
        if (i === n) break;
        const w = keyWeight(item);
        if (w > 0 && (over = this.counter.keyWeight('Set', n, w, (weight += w))) !== undefined) break;
        this.write(item, depth + 1);
        i++;
      }
      if (over === undefined && i !== n) throw new EncodeFailure('CODEC_UNSUPPORTED_VALUE', 'a Set that changed while it was being encoded');
    } catch (error) {
      throw this.failIn(error, set, `.<set item #${i}>`);
    }
    if (over !== undefined) throw new EncodeFailure('CODEC_LIMIT_EXCEEDED', over);
    this.closeExtension(lengthAt);
  }

  /** ext32 header with the length left blank; returns where the length goes, from `start`. */
  private openExtension(type: number): number {
    this.ensure(6);
    this.slab[this.pos++] = 0xc9;
    const lengthAt = this.pos - this.start;
    this.pos += 4;
    this.slab[this.pos++] = type;
    return lengthAt;
  }

  private closeExtension(lengthAt: number): void {
    // NOTE: relative to `start`: the slab may have been replaced while the content was written.
    const at = this.start + lengthAt;
    const length = this.pos - at - 5;
    const slab = this.slab;
    slab[at] = length >>> 24;
    slab[at + 1] = (length >>> 16) & 0xff;
    slab[at + 2] = (length >>> 8) & 0xff;
    slab[at + 3] = length & 0xff;
  }

  private writeU32(n: number): void {
    const slab = this.slab;
    slab[this.pos++] = n >>> 24;
    slab[this.pos++] = (n >>> 16) & 0xff;
    slab[this.pos++] = (n >>> 8) & 0xff;
    slab[this.pos++] = n & 0xff;
  }

  private writeNumber(n: number): void {
    this.ensure(9);
    const slab = this.slab;
    if ((n | 0) === n) {
      if (n >= 0) {
        if (n < 0x80) {
          if (n === 0 && 1 / n < 0) return this.writeFloat64(n); // -0
          slab[this.pos++] = n;
        } else if (n < 0x100) {
          slab[this.pos++] = 0xcc;
          slab[this.pos++] = n;
        } else if (n < 0x10000) {
          slab[this.pos++] = 0xcd;
          slab[this.pos++] = n >>> 8;
          slab[this.pos++] = n & 0xff;
        } else {
          slab[this.pos++] = 0xce;
          this.writeU32(n);
        }
      } else if (n >= -0x20) {
        slab[this.pos++] = n & 0xff;
      } else if (n >= -0x80) {
        slab[this.pos++] = 0xd0;
        slab[this.pos++] = n & 0xff;
      } else if (n >= -0x8000) {
        slab[this.pos++] = 0xd1;
        slab[this.pos++] = (n >> 8) & 0xff;
        slab[this.pos++] = n & 0xff;
      } else {
        slab[this.pos++] = 0xd2;
        this.writeU32(n >>> 0);
      }
    } else if (n >>> 0 === n) {
      slab[this.pos++] = 0xce;
      this.writeU32(n);
    } else {
      this.writeFloat64(n);
    }
  }

  /** 0xcb + float64; the caller made room for 9 bytes. */
  private writeFloat64(n: number): void {
    const slab = this.slab;
    slab[this.pos++] = 0xcb;
    this.writeF64Bytes(n);
  }

  private writeF64Bytes(n: number): void {
    const slab = this.slab;
    const p = this.pos;
    f64[0] = n;
    if (LITTLE_ENDIAN) {
      for (let i = 0; i < 8; i++) slab[p + i] = f64Bytes[7 - i]!;
    } else {
      for (let i = 0; i < 8; i++) slab[p + i] = f64Bytes[i]!;
    }
    this.pos = p + 8;
  }

  private writeString(s: string): void {
    const length = s.length;
    if (length < 32) {
      // Optimistic: ASCII fits a fixstr (≤ 31 bytes), one byte per char.
      this.ensure(1 + length);
      const slab = this.slab;
      const start = this.pos;
      let p = start + 1;
      let i = 0;
      for (; i < length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        slab[p++] = c;
      }
      if (i === length) {
        slab[start] = 0xa0 | length;
        this.pos = p;
        return;
      }
    }
    if (length < JS_UTF8_MAX_CHARS) return this.writeStringInJs(s);
    const bytes = Buffer.byteLength(s, 'utf8');
    this.ensureBytes(bytes);
    this.writeStringHeader(bytes);
    this.pos += this.slab.write(s, this.pos, bytes, 'utf8');
  }

  /** Room for a `bytes`-long payload plus its header, refusing early when it cannot fit. */
  private ensureBytes(bytes: number): void {
    if (this.pos - this.start + bytes > this.maxBytes) throw this.tooLarge();
    this.ensure(6 + bytes);
  }

  private writeStringHeader(bytes: number): void {
    const slab = this.slab;
    if (bytes < 32) {
      slab[this.pos++] = 0xa0 | bytes;
    } else if (bytes < 0x100) {
      slab[this.pos++] = 0xd9;
      slab[this.pos++] = bytes;
    } else if (bytes < 0x10000) {
      slab[this.pos++] = 0xda;
      slab[this.pos++] = bytes >>> 8;
      slab[this.pos++] = bytes & 0xff;
    } else {
      slab[this.pos++] = 0xdb;
      this.writeU32(bytes);
    }
  }

  /** UTF-8 by hand (short strings): the header is sized for 3 bytes per char, then filled in. */
  private writeStringInJs(s: string): void {
    const length = s.length;
    const max = length * 3;
    const headerSize = max < 32 ? 1 : max < 0x100 ? 2 : 3;
    this.ensure(headerSize + max);
    const slab = this.slab;
    const start = this.pos;
    let p = start + headerSize;
    for (let i = 0; i < length; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        slab[p++] = c;
      } else if (c < 0x800) {
        slab[p++] = 0xc0 | (c >> 6);
        slab[p++] = 0x80 | (c & 0x3f);
      } else if (c < 0xd800 || c > 0xdfff) {
        slab[p++] = 0xe0 | (c >> 12);
        slab[p++] = 0x80 | ((c >> 6) & 0x3f);
        slab[p++] = 0x80 | (c & 0x3f);
      } else {
        const next = i + 1 < length ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          slab[p++] = 0xf0 | (c >> 18);
          slab[p++] = 0x80 | ((c >> 12) & 0x3f);
          slab[p++] = 0x80 | ((c >> 6) & 0x3f);
          slab[p++] = 0x80 | (c & 0x3f);
        } else {
          // A lone surrogate: U+FFFD, as Buffer and TextEncoder write it.
          slab[p++] = 0xef;
          slab[p++] = 0xbf;
          slab[p++] = 0xbd;
        }
      }
    }
    const bytes = p - start - headerSize;
    if (headerSize === 1) {
      slab[start] = 0xa0 | bytes;
    } else if (headerSize === 2) {
      slab[start] = 0xd9;
      slab[start + 1] = bytes;
    } else {
      slab[start] = 0xda;
      slab[start + 1] = bytes >>> 8;
      slab[start + 2] = bytes & 0xff;
    }
    this.pos = p;
  }

  private writeBin(bytes: Uint8Array): void {
    const n = bytes.byteLength;
    this.ensureBytes(n);
    const slab = this.slab;
    if (n < 0x100) {
      slab[this.pos++] = 0xc4;
      slab[this.pos++] = n;
    } else if (n < 0x10000) {
      slab[this.pos++] = 0xc5;
      slab[this.pos++] = n >>> 8;
      slab[this.pos++] = n & 0xff;
    } else {
      slab[this.pos++] = 0xc6;
      this.writeU32(n);
    }
    slab.set(bytes, this.pos);
    this.pos += n;
  }

  private writeBuffer(bytes: Buffer): void {
    const n = bytes.byteLength;
    this.ensureBytes(n);
    this.writeExtensionHeader(n, EXT_BUFFER);
    this.slab.set(bytes, this.pos);
    this.pos += n;
  }

  /** ext8/16/32 header; the caller made room. */
  private writeExtensionHeader(n: number, type: number): void {
    const slab = this.slab;
    if (n < 0x100) {
      slab[this.pos++] = 0xc7;
      slab[this.pos++] = n;
    } else if (n < 0x10000) {
      slab[this.pos++] = 0xc8;
      slab[this.pos++] = n >>> 8;
      slab[this.pos++] = n & 0xff;
    } else {
      slab[this.pos++] = 0xc9;
      this.writeU32(n);
    }
    slab[this.pos++] = type;
  }

  private writeDate(date: Date): void {
    this.ensure(10);
    this.slab[this.pos++] = 0xd7;
    this.slab[this.pos++] = EXT_DATE;
    this.writeF64Bytes(date.getTime());
  }

  private writeBigInt(n: bigint): void {
    if (n >= INT64_MIN && n <= INT64_MAX) {
      this.ensure(10);
      const slab = this.slab;
      slab[this.pos++] = 0xd7;
      slab[this.pos++] = EXT_BIGINT;
      i64[0] = n;
      const p = this.pos;
      if (LITTLE_ENDIAN) {
        for (let i = 0; i < 8; i++) slab[p + i] = i64Bytes[7 - i]!;
      } else {
        for (let i = 0; i < 8; i++) slab[p + i] = i64Bytes[i]!;
      }
      this.pos = p + 8;
      return;
    }
    // Sign byte, then the magnitude big-endian (via hex, which BigInt and Buffer both speak).
    const negative = n < 0n;
    let hex = (negative ? -n : n).toString(16);
    if (hex.length % 2 === 1) hex = `0${hex}`;
    const magnitude = hex.length / 2;
    this.ensureBytes(1 + magnitude);
    this.writeExtensionHeader(1 + magnitude, EXT_BIGINT);
    this.slab[this.pos++] = negative ? 1 : 0;
    this.pos += this.slab.write(hex, this.pos, magnitude, 'hex');
  }
}

function propertySegment(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function previewKey(key: unknown): string {
  if (typeof key === 'string') return JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key);
  if (typeof key === 'number' || typeof key === 'boolean' || key === null || key === undefined) return String(key);
  if (typeof key === 'bigint') return `${key}n`;
  return `<${typeof key}>`;
}

/** What the value is and what to send instead. */
function describeUnsupported(value: unknown): string {
  if (typeof value === 'function') {
    return `a function${value.name ? ` (${value.name})` : ''}: functions do not cross members; send data`;
  }
  if (typeof value === 'symbol') return `a symbol (${String(value.description)}): symbols do not cross members`;
  if (typeof value !== 'object' || value === null) return `a value of type ${typeof value}`;
  if (value instanceof Error) {
    const what = `${value.name}: ${value.message.slice(0, 80)}`;
    return `an Error (${what}): throw it from the grain, or send { name, message } as plain data`;
  }
  if (value instanceof Promise) return 'a Promise: await it before sending its result';
  if (ArrayBuffer.isView(value)) return `a ${constructorName(value)}: send a Uint8Array (or Buffer) of its bytes`;
  if (value instanceof ArrayBuffer) return 'an ArrayBuffer: send a Uint8Array view of it';
  if (value instanceof Date || value instanceof Map || value instanceof Set || value instanceof Uint8Array) {
    const base = Object.prototype.toString.call(value).slice(8, -1);
    return `an instance of ${constructorName(value)} (a subclass): send a plain ${base}`;
  }
  return (
    `an instance of class ${constructorName(value)}: only plain objects cross members ` +
    '(the prototype and methods would be lost); send a plain object, e.g. { ...value }'
  );
}

function constructorName(value: object): string {
  try {
    const proto: unknown = Object.getPrototypeOf(value);
    const ctor: unknown = proto && (proto as { constructor?: unknown }).constructor;
    return typeof ctor === 'function' && ctor.name ? ctor.name : '(anonymous)';
  } catch {
    return '(unknown)';
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

function defineOwn(object: object, key: string, value: unknown): void {
  Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
}

const EMPTY = new Uint8Array(0);

class Decoder {
  busy = false;
  private src: Uint8Array = EMPTY;
  /** A Buffer over `src`, made when a long string or a big BigInt needs one. */
  private view: Buffer | undefined;
  private pos = 0;
  private end = 0;
  /** Array slots the input can still pay for (each element takes at least one byte). */
  private budget = 0;
  private readonly maxBytes: number;
  private readonly maxDepth: number;
  private readonly counter: EntryCounter;

  constructor(limits: Limits) {
    this.maxBytes = limits.maxBytes;
    this.maxDepth = limits.maxDepth;
    this.counter = new EntryCounter(limits);
  }

  decode(bytes: Uint8Array): unknown {
    if (!(bytes instanceof Uint8Array)) {
      throw new CodecError('CODEC_MALFORMED', `Cannot decode a ${typeof bytes}: expected a Uint8Array`);
    }
    if (bytes.byteLength > this.maxBytes) {
      throw new CodecError('CODEC_TOO_LARGE', `Cannot decode ${bytes.byteLength} bytes: the limit is ${this.maxBytes} (maxBytes)`);
    }
    this.busy = true;
    this.src = bytes;
    this.pos = 0;
    this.end = bytes.byteLength;
    this.budget = bytes.byteLength;
    this.counter.reset();
    try {
      const value = this.read(0);
      if (this.pos !== this.end) throw this.malformed(`${this.end - this.pos} bytes after the value`);
      return value;
    } catch (error) {
      if (error instanceof CodecError) throw error;
      // RangeError (stack, allocation), TypeError, …: still just bad input.
      throw new CodecError('CODEC_MALFORMED', `Malformed grains-msgpack/1 input: ${String(error)}`, undefined, {
        cause: error,
      });
    } finally {
      this.src = EMPTY;
      this.view = undefined;
      this.busy = false;
    }
  }

  private malformed(reason: string): CodecError {
    return new CodecError('CODEC_MALFORMED', `Malformed grains-msgpack/1 input at byte ${this.pos}: ${reason}`);
  }

  /** A collection limit's error: never a partial value. */
  private overLimit(reason: string): CodecError {
    return new CodecError('CODEC_LIMIT_EXCEEDED', `Cannot decode grains-msgpack/1 input at byte ${this.pos}: ${reason}`);
  }

  private need(n: number): void {
    if (n > this.end - this.pos) throw this.malformed('truncated');
  }

  /** `depth`: how many containers enclose the value. */
  private read(depth: number): unknown {
    if (this.pos >= this.end) throw this.malformed('truncated');
    const b = this.src[this.pos++]!;
    if (b < 0x80) return b;
    if (b < 0x90) return this.readObject(b & 0x0f, depth);
    if (b < 0xa0) return this.readArray(b & 0x0f, depth);
    if (b < 0xc0) return this.readString(b & 0x1f);
    if (b >= 0xe0) return b - 0x100;
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.readBin(this.u8());
      case 0xc5:
        return this.readBin(this.u16());
      case 0xc6:
        return this.readBin(this.u32());
      case 0xc7:
        return this.readExtension(this.u8(), depth);
      case 0xc8:
        return this.readExtension(this.u16(), depth);
      case 0xc9:
        return this.readExtension(this.u32(), depth);
      case 0xca:
        return this.f32();
      case 0xcb:
        return this.f64();
      case 0xcc:
        return this.u8();
      case 0xcd:
        return this.u16();
      case 0xce:
        return this.u32();
      case 0xd0:
        return (this.u8() << 24) >> 24;
      case 0xd1:
        return (this.u16() << 16) >> 16;
      case 0xd2:
        return this.u32() | 0;
      case 0xd4:
        return this.readExtension(1, depth);
      case 0xd5:
        return this.readExtension(2, depth);
      case 0xd6:
        return this.readExtension(4, depth);
      case 0xd7:
        return this.readExtension(8, depth);
      case 0xd8:
        return this.readExtension(16, depth);
      case 0xd9:
        return this.readString(this.u8());
      case 0xda:
        return this.readString(this.u16());
      case 0xdb:
        return this.readString(this.u32());
      case 0xdc:
        return this.readArray(this.u16(), depth);
      case 0xdd:
        return this.readArray(this.u32(), depth);
      case 0xde:
        return this.readObject(this.u16(), depth);
      case 0xdf:
        return this.readObject(this.u32(), depth);
      default:
        this.pos--;
        throw this.malformed(`type byte 0x${b.toString(16)} is not part of the format`);
    }
  }

  private u8(): number {
    this.need(1);
    return this.src[this.pos++]!;
  }

  private u16(): number {
    this.need(2);
    const src = this.src;
    const p = this.pos;
    this.pos = p + 2;
    return (src[p]! << 8) | src[p + 1]!;
  }

  private u32(): number {
    this.need(4);
    const src = this.src;
    const p = this.pos;
    this.pos = p + 4;
    return src[p]! * 0x1000000 + ((src[p + 1]! << 16) | (src[p + 2]! << 8) | src[p + 3]!);
  }

  private f64(): number {
    this.need(8);
    const src = this.src;
    const p = this.pos;
    if (LITTLE_ENDIAN) {
      for (let i = 0; i < 8; i++) f64Bytes[7 - i] = src[p + i]!;
    } else {
      for (let i = 0; i < 8; i++) f64Bytes[i] = src[p + i]!;
    }
    this.pos = p + 8;
    return f64[0]!;
  }

  private f32(): number {
    this.need(4);
    const src = this.src;
    const p = this.pos;
    if (LITTLE_ENDIAN) {
      for (let i = 0; i < 4; i++) f32Bytes[3 - i] = src[p + i]!;
    } else {
      for (let i = 0; i < 4; i++) f32Bytes[i] = src[p + i]!;
    }
    this.pos = p + 4;
    return f32[0]!;
  }

  private enter(depth: number): void {
    if (depth >= this.maxDepth) throw this.malformed(`nested deeper than ${this.maxDepth} levels (maxDepth)`);
  }

  private readArray(n: number, depth: number): unknown[] {
    this.enter(depth);
    // NOTE: a length header is never trusted for an allocation the input cannot pay for.
    if (n > this.end - this.pos || (this.budget -= n) < 0) throw this.malformed(`array of ${n} items: truncated`);
    if ((this.counter.entriesLeft -= n) < 0) throw this.overLimit(this.counter.tooManyEntries('array', n));
    const array = new Array<unknown>(n);
    for (let i = 0; i < n; i++) array[i] = this.read(depth + 1);
    return array;
  }

  private readObject(n: number, depth: number): Record<string, unknown> {
    this.enter(depth);
    if (n * 2 > this.end - this.pos) throw this.malformed(`object of ${n} properties: truncated`);
    if ((this.counter.entriesLeft -= n) < 0) throw this.overLimit(this.counter.tooManyEntries('object', n));
    const object: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = this.readKey();
      const value = this.read(depth + 1);
      if (key === '__proto__') {
        // NOTE: an own property, as JSON.parse makes it; `object[key] =` would set the prototype.
        defineOwn(object, key, value);
      } else {
        try {
          object[key] = value;
        } catch {
          // Frozen intrinsics (node --frozen-intrinsics, SES): `toString` & co. are read-only
          // on Object.prototype, so assigning them throws; an own property is still fine.
          defineOwn(object, key, value);
        }
      }
    }
    return object;
  }

  private readKey(): string {
    this.need(1);
    const b = this.src[this.pos++]!;
    if (b >= 0xa0 && b < 0xc0) return this.readShortKey(b & 0x1f);
    if (b === 0xd9) return this.readString(this.u8());
    if (b === 0xda) return this.readString(this.u16());
    if (b === 0xdb) return this.readString(this.u32());
    this.pos--;
    throw this.malformed('an object key that is not a string');
  }

  /** A fixstr key: from the key cache when it is ASCII. */
  private readShortKey(n: number): string {
    this.need(n);
    if (n === 0) return '';
    const src = this.src;
    const p = this.pos;
    // NOTE: a cheap hash (length, first, middle and last byte); the comparison decides.
    const slot = (n * 0x3b1 + src[p]! * 0x61 + src[p + (n >> 1)]! * 0x0b + src[p + n - 1]!) & (KEY_CACHE_SIZE - 1);
    const cached = keyCache[slot];
    if (cached !== undefined && cached.length === n) {
      // Cached keys are ASCII, so equal char codes mean equal (ASCII) bytes.
      let j = 0;
      while (j < n && cached.charCodeAt(j) === src[p + j]) j++;
      if (j === n) {
        this.pos = p + n;
        return cached;
      }
    }
    const codes = CHAR_CODES[n]!;
    for (let j = 0; j < n; j++) {
      const c = src[p + j]!;
      if (c >= 0x80) return this.readString(n);
      codes[j] = c;
    }
    this.pos = p + n;
    const key = String.fromCharCode.apply(null, codes);
    keyCache[slot] = key;
    return key;
  }

  private readString(n: number): string {
    this.need(n);
    const src = this.src;
    const p = this.pos;
    if (n < JS_ASCII_MAX_BYTES) {
      const codes = CHAR_CODES[n]!;
      let i = 0;
      for (; i < n; i++) {
        const c = src[p + i]!;
        if (c >= 0x80) break;
        codes[i] = c;
      }
      if (i === n) {
        this.pos = p + n;
        return String.fromCharCode.apply(null, codes);
      }
    }
    this.pos = p + n;
    // NOTE: invalid UTF-8 becomes U+FFFD; it never throws.
    return this.buffer().toString('utf8', p, p + n);
  }

  private buffer(): Buffer {
    return (this.view ??= Buffer.from(this.src.buffer, this.src.byteOffset, this.src.byteLength));
  }

  private readBin(n: number): Uint8Array {
    this.need(n);
    const out = new Uint8Array(n);
    copyInto(out, this.src, this.pos);
    this.pos += n;
    return out;
  }

  private readExtension(n: number, depth: number): unknown {
    this.need(1 + n);
    const type = this.src[this.pos++]!;
    const end = this.pos + n;
    switch (type) {
      case EXT_UNDEFINED:
        if (n !== 1 || this.src[this.pos] !== 0) break;
        this.pos = end;
        return undefined;
      case EXT_DATE:
        if (n !== 8) break;
        return new Date(this.f64());
      case EXT_BIGINT:
        return this.readBigInt(n);
      case EXT_BUFFER: {
        // NOTE: allocUnsafeSlow, not allocUnsafe: a small Buffer from allocUnsafe is a view
        // into Node's shared pool, and its `.buffer` would show whatever else is there (other
        // messages). Every byte of `out` is overwritten at once, so nothing uninitialised escapes.
        const out = Buffer.allocUnsafeSlow(n);
        copyInto(out, this.src, this.pos);
        this.pos = end;
        return out;
      }
      case EXT_MAP:
      case EXT_SET: {
        this.enter(depth);
        const value = type === EXT_MAP ? this.readMapBody(depth) : this.readSetBody(depth);
        if (this.pos !== end) {
          throw this.malformed(`${type === EXT_MAP ? 'Map' : 'Set'} content does not fill its extension`);
        }
        return value;
      }
    }
    this.pos--;
    throw this.malformed(`extension type 0x${type.toString(16)} of ${n} bytes is not part of the format`);
  }

  private readMapBody(depth: number): Map<unknown, unknown> {
    const b = this.u8();
    const n = b >= 0x80 && b < 0x90 ? b & 0x0f : b === 0xde ? this.u16() : b === 0xdf ? this.u32() : -1;
    if (n < 0) throw this.malformed('a Map without a map header');
    if (n * 2 > this.end - this.pos) throw this.malformed(`Map of ${n} entries: truncated`);
    // NOTE: counted before any key is inserted: colliding keys cost O(size) each (README.md).
    const tooMany = this.counter.keyed('Map', n);
    if (tooMany !== undefined) throw this.overLimit(tooMany);
    const map = new Map<unknown, unknown>();
    let weight = 0;
    for (let i = 0; i < n; i++) {
      const key = this.read(depth + 1);
      const w = keyWeight(key);
      if (w > 0) {
        const over = this.counter.keyWeight('Map', n, w, (weight += w));
        if (over !== undefined) throw this.overLimit(over);
      }
      map.set(key, this.read(depth + 1));
    }
    return map;
  }

  private readSetBody(depth: number): Set<unknown> {
    const b = this.u8();
    const n = b >= 0x90 && b < 0xa0 ? b & 0x0f : b === 0xdc ? this.u16() : b === 0xdd ? this.u32() : -1;
    if (n < 0) throw this.malformed('a Set without an array header');
    if (n > this.end - this.pos) throw this.malformed(`Set of ${n} items: truncated`);
    const tooMany = this.counter.keyed('Set', n);
    if (tooMany !== undefined) throw this.overLimit(tooMany);
    const set = new Set<unknown>();
    let weight = 0;
    for (let i = 0; i < n; i++) {
      const item = this.read(depth + 1);
      const w = keyWeight(item);
      if (w > 0) {
        const over = this.counter.keyWeight('Set', n, w, (weight += w));
        if (over !== undefined) throw this.overLimit(over);
      }
      set.add(item);
    }
    return set;
  }

  private readBigInt(n: number): bigint {
    const src = this.src;
    const p = this.pos;
    if (n === 8) {
      if (LITTLE_ENDIAN) {
        for (let i = 0; i < 8; i++) i64Bytes[7 - i] = src[p + i]!;
      } else {
        for (let i = 0; i < 8; i++) i64Bytes[i] = src[p + i]!;
      }
      this.pos = p + 8;
      return i64[0]!;
    }
    const sign = src[p];
    if (n < 2 || (sign !== 0 && sign !== 1)) throw this.malformed('a BigInt without a sign byte and magnitude');
    const magnitude = BigInt(`0x${this.buffer().toString('hex', p + 1, p + n)}`);
    this.pos = p + n;
    return sign === 1 ? -magnitude : magnitude;
  }
}

/**
 * Fill `out` from `src` at `from`. NOTE: not `out.set(src.subarray(...))`: when `src` is a
 * Buffer (what gRPC hands over), its `subarray` builds a Buffer through Node's constructor,
 * which costs more than copying a small value (Buffer's `subarray` showed at ~2 % of both
 * members' time in the remote-call bench's profile); a short loop, or a plain Uint8Array view
 * of the same memory, does not.
 */
function copyInto(out: Uint8Array, src: Uint8Array, from: number): void {
  const n = out.length;
  if (n <= 32) {
    for (let i = 0; i < n; i++) out[i] = src[from + i]!;
    return;
  }
  out.set(new Uint8Array(src.buffer, src.byteOffset + from, n));
}
