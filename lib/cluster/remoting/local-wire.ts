import { Call } from '../../actor/call.js';
import type { Codec } from '../../remote/codec/codec.js';
import { defaultCodec } from '../../remote/codec/default-codec.js';
import { DEFAULT_MAX_MESSAGE_SIZE, type RemoteOptions } from '../../remote/remote-options.js';
import type { Status } from '../../remote/wire.js';
import { GrainActivationError, type GrainError, GrainInvocationError } from '../errors.js';
import { decodeArguments, decodeResult, encodeArguments, encodeResult, type Refusal } from './crossing.js';
import { outcomeOfStatus, responseForError, toErrorInfo } from './status-errors.js';

/** The codec a call served on this member crosses with `serializeLocalCalls`, and its size limit. */
export interface LocalWire {
  readonly codec: Codec;
  /** `remote.maxMessageSize`: arguments and results are held to it as between members. */
  readonly maxMessageSize: number;
}

/** What `serializeLocalCalls` crosses: the member's remote codec, or the one a remote would use by default. */
export function localWireOf(remote: RemoteOptions | undefined): LocalWire {
  const maxMessageSize = remote?.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  return { codec: remote?.codec ?? defaultCodec(maxMessageSize), maxMessageSize };
}

/**
 * A call made on a member with `serializeLocalCalls`: when it is served on this member, its
 * arguments and its outcome cross the codec as they would between members, through the same
 * functions (crossing.ts) and with the errors a remote caller gets (status-errors.ts). A call
 * sent to another member crosses the real wire instead, and nothing here touches it.
 */
export class WireCall extends Call {
  // NOTE: replaced once, by the decoded copy, when the call is delivered here (`crossArguments`).
  declare args: readonly unknown[];
  /** Its arguments crossed the codec (it was delivered here): its outcome crosses back. */
  crossed = false;

  constructor(
    private readonly wire: LocalWire,
    ...call: ConstructorParameters<typeof Call>
  ) {
    super(...call);
  }

  /** Encode the arguments as the caller side does, decode them as the callee side does; false when the call failed instead. */
  crossArguments(): boolean {
    const { codec, maxMessageSize } = this.wire;
    const bytes = encodeArguments(this, codec, maxMessageSize);
    if (!(bytes instanceof Uint8Array)) {
      this.reject(bytes);
      return false;
    }
    const args = decodeArguments(codec, bytes);
    if (!Array.isArray(args)) {
      this.reject(this.answered(args));
      return false;
    }
    this.args = args;
    this.crossed = true;
    return true;
  }

  override resolve(value: unknown): void {
    if (!this.crossed || this.settled) return super.resolve(value);
    const { codec, maxMessageSize } = this.wire;
    const bytes = encodeResult(codec, maxMessageSize, value, this);
    if (!(bytes instanceof Uint8Array)) return super.reject(this.answered(bytes));
    const result = decodeResult(this, codec, bytes);
    if ('value' in result) super.resolve(result.value);
    else super.reject(result);
  }

  override reject(reason: unknown): void {
    // NOTE: only what a turn here produced crosses back: the grain threw, or its activation
    // failed. Remotely they arrive as name, message and code, without the original `cause`.
    // The caller side's own errors (timeout, abort) are the same either way.
    if (this.crossed && !this.settled && (reason instanceof GrainInvocationError || reason instanceof GrainActivationError)) {
      const response = responseForError(0, reason);
      if (response.error !== undefined) reason = this.answered({ status: response.status, error: response.error }) ?? reason;
    }
    super.reject(reason);
  }

  /** The error a remote caller gets for a response with this status and error. */
  private answered(refusal: Refusal): GrainError {
    return outcomeOfStatus(refusal.status as Status, toErrorInfo(refusal.error), this).error!;
  }
}
