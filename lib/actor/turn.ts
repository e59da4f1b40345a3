import { AsyncLocalStorage } from 'node:async_hooks';

/** One hop of a call chain: the activation a turn runs on, and whether that turn interleaves. */
export interface ChainLink {
  /** Unique per activation. */
  readonly activationId: string;
  /** `kind/identity`, for messages. */
  readonly label: string;
  readonly interleaved: boolean;
  /** Set on a local activation's links when it is fenced: its turns may call nothing. */
  readonly fenced?: boolean;
}

/** What a turn exposes to code that runs inside it (and to calls it makes). */
export interface TurnState {
  /** The chain of turns that led here, not including this one. */
  readonly chain: readonly ChainLink[];
  /** This turn's own link. */
  readonly link: ChainLink;
  /** Set when the turn has settled; code that runs later is detached from the chain. */
  ended: boolean;
}

export const EMPTY_CHAIN: readonly ChainLink[] = Object.freeze([]);
/** What `outgoingChain` returns inside a turn of a fenced activation. */
export const FENCED_CHAIN: readonly ChainLink[] = Object.freeze([]);

/**
 * NOTE: one AsyncLocalStorage for the whole process. Every turn runs inside `run()`, so a
 * grain call made from a turn (directly, after awaits, or from a callback) sees the turn it
 * was made from. On Node 20 this enables promise hooks for the process; bench/ measures it.
 */
export const turnStorage = new AsyncLocalStorage<TurnState>();

/** The chain an outgoing call carries: the current turn's chain plus the turn itself. */
export function outgoingChain(): readonly ChainLink[] {
  const turn = turnStorage.getStore();
  if (turn === undefined || turn.ended) {
    // NOTE: a call made after its turn settled (a timer callback, a fire-and-forget promise)
    // is not part of that turn any more; treating it as such would report false cycles.
    return EMPTY_CHAIN;
  }
  if (turn.link.fenced === true) return FENCED_CHAIN;
  return turn.chain.length === 0 ? [turn.link] : [...turn.chain, turn.link];
}
