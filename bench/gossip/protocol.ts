/**
 * What the gossip scenarios' member processes (bench/gossip/member.ts) and the orchestrator
 * (bench/gossip/scenarios.ts) say to each other over IPC (bench/remote/child-process.ts).
 * Types only.
 */
import type { MemberHealth } from '../support/member-child.js';

/** A member's configuration: one JSON argument on its command line. */
export interface GossipMemberConfig {
  /** For messages. */
  readonly name: string;
  readonly clusterName: string;
  /** The remote port on 127.0.0.1 (the member id is then `127.0.0.1:<port>`). */
  readonly port: number;
  /** Every member's address (its own included): the StaticProvider's list. */
  readonly members: readonly string[];
  /** StaticProvider's dial interval for listed members not heard yet (ms). */
  readonly probeIntervalMs: number;
  /** false: `gossip: { enabled: false }`; true: no `gossip` option at all (the defaults: 300 ms, fanout 3). */
  readonly gossip: boolean;
}

export interface GossipMemberStats extends MemberHealth {
  readonly memberId: string;
  readonly gossipEnabled: boolean;
  /** Hosting members known (itself included). */
  readonly members: number;
  readonly activations: number;
  /** `cluster.topologyConsensus().consensus` now. */
  readonly consensus: boolean;
  /** Members gossip suspects now. */
  readonly suspected: readonly string[];
}

/** `gossipReady`: until topology consensus and every other member's heartbeat heard (bounded); replies the ms waited. */
export interface GossipReadyRequest {
  readonly maxMs: number;
}

/** `spreadSet`: `cluster.gossip.set(SPREAD_KEY, { seq })`; replies the process.hrtime (ns) just before it. */
export interface SpreadSetRequest {
  readonly seq: number;
}

/** `spreadSeen`: when (process.hrtime, ns) this member's `gossip.watch` saw `from`'s value `seq`; waits up to `maxMs`, then null. */
export interface SpreadSeenRequest {
  readonly from: string;
  readonly seq: number;
  readonly maxMs: number;
}

/** `rtt`: `warmup` then `calls` sequential `ping` calls (1 caller) to one grain placed on another member, each timed. */
export interface RttRequest {
  readonly calls: number;
  readonly warmup: number;
}

export interface RttReply {
  /** The member hosting the grain called. */
  readonly target: string;
  /** Every timed call's round trip, µs, in call order. */
  readonly latenciesUs: readonly number[];
}

/** `loadPrepare`: find `callers` identities (`${prefix}${n}`) placed on member `on`, activating them; replies how many. */
export interface LoadPrepareRequest {
  readonly prefix: string;
  readonly callers: number;
  readonly on: string;
}

/** `loadRound`: every prepared caller calls `ping` on its grain, without pause, for `ms`. */
export interface LoadRoundRequest {
  readonly ms: number;
}

export interface LoadRoundReply {
  readonly startNs: number;
  /** When the last caller's last call returned. */
  readonly endNs: number;
  readonly calls: number;
  readonly failed: number;
  readonly lastError: string | null;
}
