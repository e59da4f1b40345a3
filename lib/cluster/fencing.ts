import { now } from '../actor/clock.js';
import type { ChainLink } from '../actor/turn.js';
import { FENCED_CHAIN } from '../actor/turn.js';
import { ClusterUnavailableError, OutcomeUnknownError } from './errors.js';

/** Room a turn must have left on the lease to start, in ms. */
export const MIN_TURN_MS = 20;

/**
 * Fencing at turn boundaries, for lookups whose claims are held under a lease: a turn starts
 * only while `canStart` holds, and its reply is dropped unless `canSettle` holds when it ends.
 * Times are monotonic ms (actor/clock.ts).
 */
export interface TurnGuard {
  canStart(at: number): boolean;
  canSettle(at: number): boolean;
}

/** A lease as the guard sees it: valid for at least `ms` more at `at`? */
export interface LeaseClock {
  validFor(ms: number, at: number): boolean;
}

/** The turn guard of a leased lookup: a turn needs MIN_TURN_MS left to start, and any time left to settle. */
export function leaseTurnGuard(lease: LeaseClock): TurnGuard {
  return {
    canStart: (at) => lease.validFor(MIN_TURN_MS, at),
    canSettle: (at) => lease.validFor(0, at),
  };
}

/** A chain link an activation can mark fenced (its turns then call nothing). */
type MutableLink = { -readonly [K in keyof ChainLink]: ChainLink[K] };

/**
 * Fencing at turn boundaries, in one place. Every check that keeps an activation whose claim
 * may no longer be this member's from acting lives here:
 *
 * - a turn starts only while the lease holds (`canStartTurn`);
 * - a grain-method turn that settles outside the lease drops its reply (`replyAfterLapse`);
 * - an ended activation's turns make no outgoing calls (`fence` marks its links, and
 *   `refuseOutgoing` checks the caller's chain), nor does any turn once the lease lapsed;
 * - a member whose lease is not valid serves no inbound call (`leaseValid`).
 *
 * Without a leased lookup (`guard` undefined: in-memory, hash) only the last two apply, to
 * activations ended by the runtime itself.
 */
export class Fencing {
  constructor(private readonly guard: TurnGuard | undefined) {}

  /** True when activations are fenced by a lease (a leased identity lookup). */
  get leased(): boolean {
    return this.guard !== undefined;
  }

  // NOTE: the clock is read only when there is a lease to compare with: the embedded member's
  // turns pay nothing for fencing.

  /** May a turn start now? */
  canStartTurn(): boolean {
    return this.guard === undefined || this.guard.canStart(now());
  }

  /** May the reply of a turn that settles now be delivered? */
  canSettleTurn(): boolean {
    return this.guard === undefined || this.guard.canSettle(now());
  }

  /** Is this member's lease valid now, so it may serve calls from peers? */
  leaseValid(): boolean {
    return this.canSettleTurn();
  }

  /** Mark an activation's links fenced: calls made from its turns are refused from now on. */
  fence(links: readonly MutableLink[]): void {
    for (const link of links) link.fenced = true;
  }

  /**
   * The error for a call made from a turn (`chain` is what `outgoingChain()` returned) that may
   * not go: the turn's activation was ended (fenced, poisoned, stopped), or the member's lease
   * lapsed quietly while the turn ran. Undefined when the call may go; calls made from outside
   * any turn always may.
   */
  refuseOutgoing(chain: readonly ChainLink[], kind: string, identity: string, method: string): ClusterUnavailableError | undefined {
    if (chain === FENCED_CHAIN) {
      return new ClusterUnavailableError(
        `A fenced activation (it ended, or its member's lease ended) cannot call ${kind}/${identity}.${method}(); the call never ran.`,
      );
    }
    if (chain.length > 0 && !this.leaseValid()) {
      // NOTE: the lease may have lapsed without any fence yet (a stall): another activation of
      // the calling grain may exist by now, so this one must not act as the grain.
      return new ClusterUnavailableError(`A grain whose member's lease has lapsed cannot call ${kind}/${identity}.${method}(); the call never ran.`);
    }
    return undefined;
  }

  /** What the caller of a grain-method turn that settled outside the lease gets instead of its reply. */
  replyAfterLapse(kind: string, identity: string, method: string): OutcomeUnknownError {
    return new OutcomeUnknownError(kind, identity, method, 'the lease of the member hosting it ended before the turn did');
  }
}
