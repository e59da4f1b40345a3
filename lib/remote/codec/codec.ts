/**
 * The seam through which the remote puts grain call arguments and results into protobuf
 * `bytes` fields. One codec per member; the handshake compares `name`, so members of a
 * cluster must use the same one.
 */
export interface Codec {
  /**
   * Goes into the handshake: members must use the same codec. Changes whenever the bytes
   * change meaning (e.g. `grains-msgpack/1`).
   */
  readonly name: string;
  /**
   * Encode one value (an argument list array, or a result). Throws `CodecError` for values it
   * cannot carry (functions, symbols, class instances, cycles, …), naming the path of the
   * offending value (`$[2].owner`).
   *
   * NOTE: the returned bytes may be a view into a larger buffer (`byteOffset` ≠ 0) that the
   * codec never writes again; read them through `byteOffset`/`byteLength`, never `.buffer`.
   */
  encode(value: unknown): Uint8Array;
  /**
   * Decode bytes that came from the network: untrusted. Never crashes the process, never
   * returns something that is not a plain data value, never keeps a reference into `bytes`.
   * Malformed or hostile bytes → `CodecError('CODEC_MALFORMED')`; more than the codec's size
   * limit → `CodecError('CODEC_TOO_LARGE')`; more collection entries than its limits →
   * `CodecError('CODEC_LIMIT_EXCEEDED')`. Never a partial value.
   */
  decode(bytes: Uint8Array): unknown;
}

/**
 * - `CODEC_UNSUPPORTED_VALUE`: encode met a value the codec cannot carry (nothing was sent).
 * - `CODEC_MALFORMED`: decode met bytes that are not a valid encoding (corrupt, truncated,
 *   hostile, nested too deep, or from a member using another codec).
 * - `CODEC_TOO_LARGE`: the encoding is, or would be, larger than the codec's `maxBytes`.
 * - `CODEC_LIMIT_EXCEEDED`: the value has, or the bytes claim, more collection entries than
 *   the codec's collection limits allow (`maxSetSize`, `maxMapSize`, `maxSetAndMapEntries`,
 *   `maxEntries`); encode refuses it (nothing was sent), decode refuses it whole.
 */
export type CodecErrorCode = 'CODEC_UNSUPPORTED_VALUE' | 'CODEC_MALFORMED' | 'CODEC_TOO_LARGE' | 'CODEC_LIMIT_EXCEEDED';

/**
 * The codec's only error. The remote layer's own class: lib/remote never imports the cluster
 * layer, which maps it to a `GrainError` for callers.
 */
export class CodecError extends Error {
  constructor(
    /** Stable, machine-readable code. */
    readonly code: CodecErrorCode,
    message: string,
    /** Where in the value the problem is (`$[0].items[3]`), when known. */
    readonly path?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CodecError';
  }
}

/** Limits every codec should honour; both members should use the same values. */
export interface CodecLimits {
  /**
   * Largest encoding accepted by `encode` (it throws `CODEC_TOO_LARGE` instead of producing
   * more) and by `decode` (checked before anything is read). Keep it at or below the
   * transport's max message size minus the envelope.
   * @default 4 MiB (4_194_304), gRPC's default max receive message size
   */
  readonly maxBytes?: number;
  /**
   * Deepest nesting of arrays, objects, Maps and Sets that `encode` writes and `decode`
   * reads (the top-level value is depth 1). Bounds the decoder's recursion, so hostile bytes
   * cannot overflow the stack; `encode` refuses deeper values (and cycles) with a clear error.
   * @default 128
   */
  readonly maxDepth?: number;
  /**
   * Most items in one `Set` (encode and decode). Inserting colliding keys into a V8 hash table
   * costs O(n) each, and V8 hashes numbers and BigInts without a seed, so a peer can choose
   * keys that all collide: 60,000 of them stalled a member for 4 s. A BigInt item counts as 1
   * plus its size in 64-bit words (V8 compares colliding BigInts word by word).
   * @default 4096
   */
  readonly maxSetSize?: number;
  /**
   * Most entries in one `Map` (encode and decode); BigInt keys count as for `maxSetSize`.
   * @default 4096
   */
  readonly maxMapSize?: number;
  /**
   * Most Set items and Map entries in one message, all Sets and Maps together (BigInt keys
   * counted as for `maxSetSize`). The worst case of a message grows as
   * `maxSetSize × maxSetAndMapEntries` (hash flooding, see README.md).
   * @default 4096
   */
  readonly maxSetAndMapEntries?: number;
  /**
   * Most collection entries in one message: array elements + object properties + Set items +
   * Map entries, all nesting levels together. Bounds the objects a message makes (one byte
   * on the wire can be one array, one object, one Uint8Array).
   * @default 100_000
   */
  readonly maxEntries?: number;
}

/** @see CodecLimits.maxBytes */
export const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;
/** @see CodecLimits.maxDepth */
export const DEFAULT_MAX_DEPTH = 128;
/** @see CodecLimits.maxSetSize */
export const DEFAULT_MAX_SET_SIZE = 4096;
/** @see CodecLimits.maxMapSize */
export const DEFAULT_MAX_MAP_SIZE = 4096;
/** @see CodecLimits.maxSetAndMapEntries */
export const DEFAULT_MAX_SET_AND_MAP_ENTRIES = 4096;
/** @see CodecLimits.maxEntries */
export const DEFAULT_MAX_ENTRIES = 100_000;
