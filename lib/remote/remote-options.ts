import type { Codec } from './codec/codec.js';
import type { ProtocolRange } from './protocol.js';

/** Options of a member's remote (gRPC). */
export interface RemoteOptions {
  /** Interface the server binds. @default '0.0.0.0' */
  host?: string;
  /** Port the server listens on; 0 picks a free one. Omit for a client-only member (hosts no kinds, serves nothing). */
  port?: number;
  /** The host other members use to reach this one. @default `host`, or '127.0.0.1' when host is '0.0.0.0' */
  advertisedHost?: string;
  /** Largest frame sent or accepted, and largest encoded argument list or result. @default 4 MiB */
  maxMessageSize?: number;
  /** Envelopes that may wait per peer stream before calls are refused with GrainOverloadedError. @default 10000 */
  maxQueuedPerPeer?: number;
  /** The argument codec. Every member of a cluster must use the same (compared in the handshake). @default `grains-msgpack/1` (lib/remote/codec/README.md) */
  codec?: Codec;
  /** Protocol versions spoken. Tests and rolling upgrades only. @default this build's range */
  protocol?: ProtocolRange;
}

/** `RemoteOptions.maxMessageSize` when not given. */
export const DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024;
/** `RemoteOptions.maxQueuedPerPeer` when not given. */
export const DEFAULT_MAX_QUEUED_PER_PEER = 10_000;
