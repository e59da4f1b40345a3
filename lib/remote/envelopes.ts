import type { Call } from '../actor/call.js';
import type { RemoteErrorInfo, Status } from './wire.js';

/** A request waiting to be written to a peer, or written and waiting for its response. */
export interface OutboundRequest {
  /** Set by the endpoint when the request is queued on a stream. */
  id: number;
  /** The caller's call: its target, deadline and chain. */
  readonly call: Call;
  /** The argument list, already encoded with the codec. */
  readonly args: Uint8Array;
  /** The incarnation the caller resolved, or '' for any. */
  readonly targetIncarnation: string;
  /** The peer it is sent to (`host:port`). */
  readonly address: string;
  /** Handed to the stream. Until then the request provably did not reach the peer. */
  written: boolean;
  /** The caller's W3C trace context (lib/observability/trace-context.ts); absent or '' when the call is not traced. */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/** A response to queue on an inbound stream. */
export interface OutboundResponse {
  readonly id: number;
  readonly status: Status;
  readonly result?: Uint8Array;
  readonly error?: RemoteErrorInfo;
}

/** An inbound request, its strings resolved. */
export interface InboundRequest {
  readonly id: number;
  readonly kind: string;
  readonly identity: string;
  readonly method: string;
  readonly args: Uint8Array;
  readonly timeoutMs: number;
  readonly chain: ReadonlyArray<{ activationId: string; label: string; interleaved: boolean }>;
  readonly targetIncarnation: string;
  /** The caller's W3C trace context, '' when none (or dropped: longer than W3C allows). Unparsed: lib/observability parses it. */
  readonly traceparent: string;
  readonly tracestate: string;
}
