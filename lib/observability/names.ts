/**
 * Every metric, span and attribute name this package records, in one place
 * (docs/observability.md has them in a table). Grain calls follow OpenTelemetry's RPC
 * conventions (`rpc.client.duration`, `rpc.server.duration`, `rpc.system`/`rpc.service`/
 * `rpc.method`); the rest are the package's own, under `nestjs_grains.`. No metric attribute
 * ever holds a grain identity or another unbounded value: kinds, methods, error codes and a
 * few fixed words only.
 */

/** `rpc.system` of every grain call. */
export const RPC_SYSTEM = 'nestjs-grains';

/** Metric names. */
export const METRIC = {
  /** Histogram, ms: a grain call made on this member, from the call until its caller has the outcome. Its count is the calls made. */
  clientDuration: 'rpc.client.duration',
  /** Histogram, ms: a grain call served on this member, from its arrival until its outcome. Its count is the calls served. */
  serverDuration: 'rpc.server.duration',
  /** Counter: calls sent on to wherever their grain is now because they provably never ran where they went. */
  redirects: 'nestjs_grains.call.redirects',
  /** Observable up-down counter: activations alive on this member, by kind. */
  activations: 'nestjs_grains.activations',
  /** Observable up-down counter: calls waiting in the mailboxes of this member's activations (queued, not yet running), by kind. */
  mailboxDepth: 'nestjs_grains.mailbox.depth',
  /** Counter: activations fenced (their claim may no longer be this member's): they run no further turns. */
  fences: 'nestjs_grains.fences',
  /** Histogram, bytes: one batch frame written to a peer's stream. Its count is the frames written. */
  frameSize: 'nestjs_grains.remote.frame.size',
  /** Histogram: the envelopes (requests and responses) of one batch frame written. */
  frameEnvelopes: 'nestjs_grains.remote.frame.envelopes',
  /** Histogram, ms: one round trip of the Redis identity lookup (a claim, resolve or release script). */
  lookupDuration: 'nestjs_grains.lookup.duration',
} as const;

/** Attribute keys. */
export const ATTR = {
  rpcSystem: 'rpc.system',
  /** The grain kind. */
  rpcService: 'rpc.service',
  /** The grain method. */
  rpcMethod: 'rpc.method',
  /** On failure only: the `code` of the GrainError the call ended with (`_OTHER` for anything else). */
  errorType: 'error.type',
  /** Client spans of calls sent to another member: where to. */
  serverAddress: 'server.address',
  serverPort: 'server.port',
  /** The grain kind, on the package's own metrics. */
  kind: 'nestjs_grains.kind',
  /** Spans only (never a metric): the grain's identity. */
  identity: 'nestjs_grains.identity',
  /** On a SERVER span begun for a local activation that ended before the turn: the call was sent on and never ran here. */
  redirected: 'nestjs_grains.redirected',
  /** The lookup's script: `claim`, `resolve` or `release`. */
  lookupScript: 'nestjs_grains.lookup.script',
  /** What a claim or resolve answered: `CLAIMED`, `OWNED`, `NONE`, `GEN`, `NOLEASE` (`_OTHER` for anything else). */
  lookupReply: 'nestjs_grains.lookup.reply',
} as const;

/** `error.type` for an outcome that is not a GrainError with a code of this package. */
export const OTHER_ERROR = '_OTHER';

/** Bucket boundaries (ms) for grain calls: a local call takes about a microsecond, a remote one tens to hundreds. */
export const CALL_DURATION_BUCKETS_MS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];
/** Bucket boundaries (ms) for Redis round trips. */
export const LOOKUP_DURATION_BUCKETS_MS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000];
/** Bucket boundaries (bytes) for batch frames. */
export const FRAME_SIZE_BUCKETS = [128, 512, 2_048, 8_192, 32_768, 131_072, 524_288, 2_097_152, 8_388_608];
/** Bucket boundaries for envelopes per frame (a writer puts at most 1,000 in one). */
export const FRAME_ENVELOPES_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000];

/** The `error.type` of an outcome: a GrainError's `code` (a fixed set, all `GRAIN_…`), else `_OTHER`. */
export function errorTypeOf(reason: unknown): string {
  // NOTE: matched by shape, not `instanceof GrainError`: this folder imports nothing of the
  // layers above it. The pattern keeps any other `code` (unbounded) out of the attributes.
  const code = reason instanceof Error ? (reason as { code?: unknown }).code : undefined;
  return typeof code === 'string' && GRAIN_CODE.test(code) ? code : OTHER_ERROR;
}

const GRAIN_CODE = /^GRAIN_[A-Z_]{1,48}$/;
