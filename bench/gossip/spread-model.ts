/**
 * The spread scenario's computed baseline: how long a value takes to reach every member in a
 * model of the Gossiper's protocol (lib/cluster/gossip/gossiper.ts) with no latency and no
 * CPU cost, so that the measured spread can be read against what the protocol itself allows.
 *
 * The model: every member runs its rounds every `intervalMs` at its own phase (uniformly
 * random, as independent `setInterval` timers are); the value is set at a uniformly random
 * moment. At each of its rounds a member pushes to `fanout` peers picked at random: a push
 * from a member that holds the value gives it to the peer (push), and a peer that holds it
 * gives it back in its reply to a member that does not (pull). Nothing else moves a value
 * (`set` does not push at once).
 */

/** A small deterministic PRNG (mulberry32), so the baseline is the same every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SpreadModel {
  readonly trials: number;
  /** Per trial: ms from the set until the last member holds the value, sorted ascending. */
  readonly lastMs: Float64Array;
  /** Per trial: ms until the first other member holds it, sorted ascending. */
  readonly firstMs: Float64Array;
}

/** Monte Carlo of the model above with `members` members (the setter included). */
export function modelSpread(members: number, fanout: number, intervalMs: number, trials: number, seed = 1): SpreadModel {
  const random = prng(seed);
  const lastMs = new Float64Array(trials);
  const firstMs = new Float64Array(trials);
  const next = new Float64Array(members);
  const has = new Uint8Array(members);
  const peers: number[] = [];
  for (let t = 0; t < trials; t++) {
    // The set happens at time 0; each member's next round is at a random phase of the interval after it.
    for (let i = 0; i < members; i++) next[i] = random() * intervalMs;
    has.fill(0);
    has[0] = 1;
    let holders = 1;
    let first = Number.NaN;
    let now = 0;
    // Bounded: far more rounds than any spread needs.
    for (let step = 0; holders < members && step < members * 1_000; step++) {
      let i = 0;
      for (let j = 1; j < members; j++) if (next[j]! < next[i]!) i = j;
      now = next[i]!;
      next[i] = now + intervalMs;
      peers.length = 0;
      for (let j = 0; j < members; j++) if (j !== i) peers.push(j);
      // Fisher–Yates prefix: `fanout` distinct peers at random.
      const n = Math.min(fanout, peers.length);
      for (let k = 0; k < n; k++) {
        const r = k + Math.floor(random() * (peers.length - k));
        [peers[k], peers[r]] = [peers[r]!, peers[k]!];
      }
      const pusherHad = has[i] === 1;
      for (let k = 0; k < n; k++) {
        const peer = peers[k]!;
        if (pusherHad && has[peer] === 0) {
          has[peer] = 1;
          holders++;
        } else if (!pusherHad && has[peer] === 1 && has[i] === 0) {
          has[i] = 1;
          holders++;
        } else continue;
        if (Number.isNaN(first)) first = now;
      }
    }
    lastMs[t] = now;
    firstMs[t] = first;
  }
  return { trials, lastMs: lastMs.sort(), firstMs: firstMs.sort() };
}
