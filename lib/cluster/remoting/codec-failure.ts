import type { Call } from '../../actor/call.js';
import { CodecError } from '../../remote/codec/codec.js';
import { type GrainError, GrainSerializationError, MessageTooLargeError } from '../errors.js';

/** Room left in a frame for the envelope around the arguments (or result). */
export const ENVELOPE_ALLOWANCE = 64 * 1024;

/** The typed error for a codec failure on `call`'s arguments or result. */
export function codecFailure(call: Call, error: unknown, neverRan: boolean): GrainError {
  if (error instanceof CodecError && error.code === 'CODEC_TOO_LARGE')
    return new MessageTooLargeError(call.kind, call.identity, call.method, neverRan, error.message);
  return new GrainSerializationError(call.kind, call.identity, call.method, neverRan, error instanceof Error ? error.message : String(error));
}
