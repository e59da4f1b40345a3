import type { Member } from '../providers/cluster-provider.js';
import type { PlacementContext, PlacementStrategy } from './placement-strategy.js';

/** What this placer knows of one member's load: its last heartbeat, and what it placed there since. */
interface Placed {
  /** The heartbeat the count is relative to (its object: a new heartbeat is a new object). */
  readonly since: object | undefined;
  count: number;
}

/**
 * The candidate with the fewest activations, by the load members gossip in their heartbeats
 * (`gossip.heartbeatInterval`), plus what this member placed on each since that heartbeat —
 * so members placing between two heartbeats do not all pick the same one (Orleans'
 * activation-count placement tracks its own recent placements the same way). Ties go to a
 * random one among the tied. A member not heard yet counts as empty.
 *
 * It balances activations, not calls: a few busy grains on one member are not seen. Without
 * gossip (or before the first heartbeats) it places like `random`.
 */
export class LeastLoadedPlacement implements PlacementStrategy {
  readonly name = 'least-loaded';
  private readonly placed = new Map<string, Placed>();

  place(_kind: string, _identity: string, candidates: readonly Member[], _self: Member, context?: PlacementContext): Member | undefined {
    let best: Member[] = [];
    let bestScore = Infinity;
    for (const member of candidates) {
      const load = context?.load(member.id);
      const placed = this.placed.get(member.id);
      const extra = placed !== undefined && placed.since === load ? placed.count : 0;
      const score = (load?.activations ?? 0) + extra;
      if (score < bestScore) {
        bestScore = score;
        best = [member];
      } else if (score === bestScore) best.push(member);
    }
    const chosen = best[Math.floor(Math.random() * best.length)];
    if (chosen === undefined) return undefined;
    const since = context?.load(chosen.id);
    const placed = this.placed.get(chosen.id);
    if (placed !== undefined && placed.since === since) placed.count++;
    else this.placed.set(chosen.id, { since, count: 1 });
    if (this.placed.size > 4 * candidates.length + 64) this.prune(candidates);
    return chosen;
  }

  /** Forget members no longer among the candidates (they left). */
  private prune(candidates: readonly Member[]): void {
    const ids = new Set(candidates.map((m) => m.id));
    for (const id of this.placed.keys()) if (!ids.has(id)) this.placed.delete(id);
  }
}
