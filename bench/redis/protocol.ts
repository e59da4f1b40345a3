/**
 * What the Redis scenarios' children (bench/redis/member.ts, bench/redis/set-nx.ts) and the
 * orchestrator (bench/redis/scenarios.ts) say to each other over IPC
 * (bench/remote/child-process.ts). Types only.
 */
import type { MemberHealth } from '../support/member-child.js';

/** A member's configuration: one JSON argument on its command line. */
export interface MemberConfig {
  /** For messages. */
  readonly name: string;
  readonly clusterName: string;
  /** `redis`: RedisIdentityLookup (fast lease, prefer-local); `hash`: HashIdentityLookup. */
  readonly lookup: 'redis' | 'hash';
  readonly redisUrl?: string;
  /** The remote port on 127.0.0.1; a restarted member gets its port (and so its member id) back. */
  readonly port: number;
  /** Every hosting member's address (this one's included), for the StaticProvider. */
  readonly members: readonly string[];
}

/** The timed part of a round, on the child's clock (process.hrtime: one monotonic clock for every process). */
export interface TimedReply {
  readonly startNs: number;
  readonly endNs: number;
  readonly ops: number;
}

/** `activate`: `callers` loops, each calling `per` identities never called before (`${prefix}${j}.${i}`). */
export interface ActivateRequest {
  readonly prefix: string;
  readonly callers: number;
  readonly per: number;
}

/** `touchAll`: call each identity once (untimed setup; activates or resolves them). */
export interface TouchAllRequest {
  readonly ids: readonly string[];
}

/** `cachedRefs`: the identities this member's callers call in `cached` rounds, one per caller. */
export interface CachedRefsRequest {
  readonly ids: readonly string[];
}

/** `cached`: every caller calls its identity `per` times. */
export interface CachedRequest {
  readonly per: number;
}

/** `where`: one call to `where()`. */
export interface WhereRequest {
  readonly identity: string;
  readonly timeoutMs: number;
}

/** `poll`: call `where()` on `identity` until an activation other than `notActivation` answers. */
export interface PollRequest {
  readonly identity: string;
  readonly notActivation: string;
  readonly perCallTimeoutMs: number;
  readonly maxMs: number;
}

export interface PollReply {
  /** process.hrtime (ns) when the first call answered from a new activation; null: none within maxMs. */
  readonly okAtNs: number | null;
  readonly attempts: number;
  /** Failed attempts by error name. */
  readonly errors: Readonly<Record<string, number>>;
  readonly lastError: string | null;
  readonly answer: { readonly memberId: string; readonly activationId: string; readonly epoch: number } | null;
  /** The first attempts: [start ms after the poll began, duration ms, 'ok' or the error's name]. */
  readonly trace: ReadonlyArray<readonly [number, number, string]>;
}

export interface MemberStats extends MemberHealth {
  readonly memberId: string;
  readonly incarnation: string;
  readonly address: string;
  /** Members this one knows (itself included). */
  readonly members: number;
  readonly activations: number;
  readonly activated: number;
  readonly deactivated: number;
  readonly fenced: number;
  readonly pidCache: { readonly size: number; readonly hits: number; readonly misses: number };
}

/** `round` of the SET NX baseline: `callers` loops, `per` new keys each (`${prefix}${j}.${i}`). */
export interface SetNxRequest {
  readonly prefix: string;
  readonly callers: number;
  readonly per: number;
}
