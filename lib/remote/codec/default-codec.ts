import type { Codec } from './codec.js';
import { MsgpackCodec } from './msgpack-codec.js';

/** The codec a member uses unless `remote.codec` says otherwise. */
export function defaultCodec(maxBytes: number): Codec {
  return new MsgpackCodec({ maxBytes });
}
