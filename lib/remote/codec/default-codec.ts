import type { Codec, CodecLimits } from './codec.js';
import { MsgpackCodec } from './msgpack-codec.js';

/**
 * The codec a member uses unless `remote.codec` says otherwise. `maxBytes`: the transport's
 * max message size; `limits`: the collection limits and `maxDepth` (defaults in codec.ts and
 * README.md). Both members must use the same values.
 */
export function defaultCodec(maxBytes: number, limits: Omit<CodecLimits, 'maxBytes'> = {}): Codec {
  return new MsgpackCodec({ ...limits, maxBytes });
}
