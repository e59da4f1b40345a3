/**
 * When a call that provably never ran is sent on (its activation was gone, the member
 * answered "not here", it was never written to the wire), and how often.
 */

/** A call that never ran is sent on at most this often (each time its activation was gone). */
export const MAX_REDIRECTS = 32;
/** The first redirects go at once (on a microtask); later ones wait a little. */
const REDIRECTS_BEFORE_DELAY = 3;
/** The longest wait between two redirects of one call. */
const MAX_REDIRECT_DELAY_MS = 50;

/**
 * How long to wait before sending a call on for the `redirects`-th time: 0 for at once.
 *
 * NOTE: a grain still moving (a lease lapsing, a member restarting) answers "not here" for a
 * moment; later redirects wait a little (doubling, up to MAX_REDIRECT_DELAY_MS) so a call
 * rides that out within its deadline instead of spending its redirects in a burst.
 */
export function redirectDelayMs(redirects: number): number {
  if (redirects <= REDIRECTS_BEFORE_DELAY) return 0;
  return Math.min(MAX_REDIRECT_DELAY_MS, 2 ** (redirects - REDIRECTS_BEFORE_DELAY));
}
