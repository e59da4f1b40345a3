import type { Codec } from './codec/codec.js';
import type { InboundLimitOptions } from './inbound-limits.js';
import type { ProtocolRange } from './protocol.js';

/** Options of a member's remote (gRPC). */
export interface RemoteOptions {
  /** Interface the server binds. @default '0.0.0.0' */
  host?: string;
  /** Port the server listens on; 0 picks a free one. Omit for a client-only member (hosts no kinds, serves nothing). */
  port?: number;
  /**
   * The host other members use to reach this one. @default `host`; when `host` is every
   * interface ('0.0.0.0', '::'), this host's own address (logged): IPv4 of a physical interface
   * first, then of a virtual bridge (docker0, …), then a global IPv6 address; a startup error
   * when it has nothing but loopback
   */
  advertisedHost?: string;
  /** Largest frame sent or accepted, and largest encoded argument list or result. @default 4 MiB */
  maxMessageSize?: number;
  /** Envelopes that may wait per peer stream before calls are refused with GrainOverloadedError. @default 10000 */
  maxQueuedPerPeer?: number;
  /**
   * Bytes (arguments, results, error texts) that may wait per peer stream: past it, responses
   * to a peer that does not read them are dropped (its calls time out) and its stream is not
   * read until they drain. @default 64 MiB
   */
  maxQueuedBytesPerPeer?: number;
  /**
   * What a peer may make this member do: requests per frame, call chain length, timeout,
   * malformed frames and open streams (each with its default; docs/architecture.md, "Inbound
   * limits"). Identities are held to the cluster's `maxIdentityBytes`.
   */
  inbound?: InboundLimitOptions;
  /** The argument codec. Every member of a cluster must use the same (compared in the handshake). @default `grains-msgpack/1` (lib/remote/codec/README.md) */
  codec?: Codec;
  /** Protocol versions spoken. Tests and rolling upgrades only. @default this build's range */
  protocol?: ProtocolRange;
  /**
   * Mutual TLS between members: every connection, both ways, is TLS; this member presents
   * `cert` and accepts only peers whose certificate the cluster CA (`ca`) signed — peers
   * without one, with another CA's, or speaking plaintext are refused during the TLS
   * handshake. Give it to every member, client-only ones included. @default none: plaintext
   */
  tls?: RemoteTlsOptions;
}

/**
 * The cluster CA and this member's certificate and key, in PEM. Each one either inline
 * (`ca`, `cert`, `key`: the PEM text, as Node's `tls` options take it) or as a file path
 * (`caFile`, `certFile`, `keyFile`), never both. Files are read at start and re-read every
 * `reloadIntervalMs`: replaced files take effect without a restart (new connections use
 * them; open connections keep going), and files that do not form a valid set (a certificate
 * replaced before its key) are not used until they do.
 *
 * Trust is "signed by the cluster CA": a peer's host name or IP address is not checked
 * against its certificate (members are dialled by address, which may change), so the CA
 * must be one dedicated to the cluster — every certificate it signs is a member.
 */
export interface RemoteTlsOptions {
  /** The cluster CA certificate(s) (PEM). Several concatenated while the CA is being replaced. */
  ca?: string | Buffer;
  /** Path of a PEM file holding `ca`. */
  caFile?: string;
  /** This member's certificate (PEM), signed by the cluster CA, optionally followed by intermediate CA certificates. */
  cert?: string | Buffer;
  /** Path of a PEM file holding `cert`. */
  certFile?: string;
  /** This member's private key (PEM, unencrypted). */
  key?: string | Buffer;
  /** Path of a PEM file holding `key`. */
  keyFile?: string;
  /** How often the files are checked for new contents, in ms. @default 10000 */
  reloadIntervalMs?: number;
}

/** `RemoteOptions.maxMessageSize` when not given. */
export const DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024;
/** `RemoteOptions.maxQueuedPerPeer` when not given. */
export const DEFAULT_MAX_QUEUED_PER_PEER = 10_000;
/** `RemoteTlsOptions.reloadIntervalMs` when not given. */
export const DEFAULT_TLS_RELOAD_INTERVAL_MS = 10_000;
