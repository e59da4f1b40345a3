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

/** Where the turns of one activation can be found (its references ask it which turn calls). */
export interface TurnSource {
  /** The turn code of this activation runs in now, as far as it can tell; undefined outside any. */
  currentTurn(): TurnState | undefined;
}

export const EMPTY_CHAIN: readonly ChainLink[] = Object.freeze([]);
/** What `chainOf` returns inside a turn of a fenced activation. */
export const FENCED_CHAIN: readonly ChainLink[] = Object.freeze([]);

/**
 * NOTE: one AsyncLocalStorage for the whole process, used only by members that track call
 * chains with it (`callChains: 'async-local-storage'`, asked for). Every
 * turn of such a member runs inside `run()`, so a grain call made from a turn (directly, after
 * awaits, or from a callback) sees the turn it was made from. On Node 20 and 22 (without async
 * context frames) its first `run()` turns promise hooks on for the whole process; bench/
 * measures that.
 */
export const turnStorage = new AsyncLocalStorage<TurnState>();

/** The turn whose synchronous part runs now (members that track chains by reference). */
let syncTurn: TurnState | undefined;

/**
 * Run a turn's synchronous part with `turn` as the current synchronous turn: what a call made
 * before the turn's first `await` is attributed to, when the reference it goes through does not
 * know its activation. No async context, no promise hooks.
 */
export function runInTurn<A, B, R>(turn: TurnState, fn: (a: A, b: B) => R, a: A, b: B): R {
  const previous = syncTurn;
  syncTurn = turn;
  try {
    return fn(a, b);
  } finally {
    syncTurn = previous;
  }
}

/** The turn whose synchronous part runs now, if any (see `runInTurn`). */
export function synchronousTurn(): TurnState | undefined {
  return syncTurn;
}

/** The chain an outgoing call made from `turn` carries: the turn's chain plus the turn itself. */
export function chainOf(turn: TurnState | undefined): readonly ChainLink[] {
  if (turn === undefined || turn.ended) {
    // NOTE: a call made after its turn settled (a timer callback, a fire-and-forget promise)
    // is not part of that turn any more; treating it as such would report false cycles.
    return EMPTY_CHAIN;
  }
  if (turn.link.fenced === true) return FENCED_CHAIN;
  return turn.chain.length === 0 ? [turn.link] : [...turn.chain, turn.link];
}

/** How a member finds the turn a grain call is made from; see `ClusterOptions.callChains`. */
export type CallChainTracking = 'references' | 'async-local-storage';

/**
 * Whether AsyncLocalStorage costs no promise hooks in this process (what `callChains:
 * 'async-local-storage'` costs the host app): Node 24 and later use async context frames unless
 * started with `--no-async-context-frame`; Node 22 and 23 only with
 * `--experimental-async-context-frame`; Node 20 never.
 */
export function asyncContextIsCheap(version: string = process.versions.node, flags: readonly string[] = nodeFlags()): boolean {
  const major = Number(version.split('.')[0]);
  if (major >= 24) return !flags.includes('--no-async-context-frame');
  if (major >= 22) return flags.includes('--experimental-async-context-frame');
  return false;
}

function nodeFlags(): string[] {
  const fromEnv = (process.env['NODE_OPTIONS'] ?? '').split(/\s+/).filter((flag) => flag.length > 0);
  return [...process.execArgv, ...fromEnv];
}
