/**
 * What the membership scenarios' member processes (bench/membership/member.ts) and the
 * orchestrator (bench/membership/scenarios.ts) say to each other over IPC
 * (bench/remote/child-process.ts). Types only.
 */
import type { MemberHealth } from '../support/member-child.js';
import type { Whereabouts } from './grain.js';

/** A member's configuration: one JSON argument on its command line. */
export interface MembershipMemberConfig {
  /** For messages. */
  readonly name: string;
  readonly clusterName: string;
  /** `consul`: ConsulProvider against the agent at `url` (its defaults otherwise); `static`: StaticProvider listing `members`. */
  readonly provider:
    { readonly type: 'consul'; readonly url: string } | { readonly type: 'static'; readonly members: readonly string[]; readonly probeIntervalMs: number };
  /** RedisIdentityLookup (fast lease) on this Redis. */
  readonly redisUrl: string;
  /** Where this member places the new activations its own calls create. */
  readonly placement: 'prefer-local' | 'rendezvous';
  /** The remote port on 127.0.0.1 (the member id is then `127.0.0.1:<port>`); absent: a client-only member (hosts nothing). */
  readonly port?: number;
  /** Hosting members (itself included) to know before reporting ready. */
  readonly expectMembers: number;
}

/** process.hrtime (ns: one monotonic clock for every process of the host) at the points of a start. */
export interface Timeline {
  /** The member script's first statement (node started, the script's light static imports loaded). */
  readonly mainNs: number;
  /** nestjs-grains loaded. */
  readonly runtimeNs: number;
  /** `cluster.start()` resolved (remote listening, lease taken, registered with the provider, first member list). */
  readonly startedNs: number;
  /** `cluster.whenReady()` resolved and `expectMembers` hosting members known. */
  readonly readyNs: number;
}

export interface MemberView {
  readonly id: string;
  readonly incarnation: string;
  readonly address: string;
}

export interface MemberStats extends MemberHealth {
  readonly memberId: string;
  readonly incarnation: string;
  /** Hosting members known (itself included when it hosts). */
  readonly members: readonly MemberView[];
  readonly activations: number;
  readonly activated: number;
  readonly deactivated: number;
  /** onGrainActivate / onGrainDeactivate hooks that ran in this process. */
  readonly hooksActivated: number;
  readonly hooksDeactivated: number;
}

/** `touchAll`: call each identity once, all at once (activates or resolves them). */
export interface TouchAllRequest {
  readonly ids: readonly string[];
}

export interface TouchAllReply {
  readonly startNs: number;
  readonly endNs: number;
  /** Answers by member id (`where()`). */
  readonly byMember: Readonly<Record<string, number>>;
}

/**
 * `probeJoin`: every `tickMs`, once `target` is among this member's hosting members with an
 * incarnation other than `notIncarnation`, call `where()` on `batch` identities never called
 * before (`${prefix}${n}`), until one is answered by an activation on `target`.
 */
export interface ProbeJoinRequest {
  readonly target: string;
  readonly notIncarnation: string | null;
  readonly prefix: string;
  readonly tickMs: number;
  readonly batch: number;
  readonly maxMs: number;
}

export interface ProbeJoinReply {
  /** When `target` (new incarnation) first showed in this member's member list. */
  readonly knownAtNs: number | null;
  /** When the first call answered from an activation on `target` returned here. */
  readonly servedAtNs: number | null;
  readonly calls: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly lastError: string | null;
  readonly answer: Whereabouts | null;
}

/** `leave`: `cluster.shutdown()`, timed in the member. */
export interface LeaveReply {
  readonly startNs: number;
  /** The last onGrainDeactivate hook that ran (0: none). */
  readonly lastHookNs: number;
  readonly endNs: number;
  readonly activationsBefore: number;
  readonly hooksDeactivated: number;
  readonly activationsAfter: number;
}

/** `waitMembers`: until this member's hosting members satisfy the condition (bounded). */
export interface WaitMembersRequest {
  /** A member that must be listed with this incarnation (or any incarnation but `notIncarnation`). */
  readonly present?: { readonly id: string; readonly incarnation?: string; readonly notIncarnation?: string };
  /** A member that must not be listed. */
  readonly absent?: string;
  readonly count?: number;
  readonly maxMs: number;
}

/** `loadStart`: `callers` loops, each calling `touch` on its `perCaller` identities in turn (`${prefix}${j}.${i}`), until `loadStop`. */
export interface LoadStartRequest {
  readonly prefix: string;
  readonly callers: number;
  readonly perCaller: number;
}

export interface Phase {
  readonly name: string;
  readonly fromNs: number;
  readonly toNs: number;
}

export interface PhaseFigures {
  readonly name: string;
  readonly seconds: number;
  readonly ok: number;
  readonly failed: number;
  readonly callsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface LoadReport {
  readonly startNs: number;
  readonly endNs: number;
  readonly ok: number;
  readonly failed: number;
  readonly phases: readonly PhaseFigures[];
  readonly errors: Readonly<Record<string, number>>;
  /** The first failures: [ms after the load started, `name: message`]. */
  readonly firstFailures: ReadonlyArray<readonly [number, string]>;
  /** Successful calls per 100 ms bucket, from the load's start. */
  readonly okPer100Ms: readonly number[];
}
