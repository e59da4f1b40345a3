import type { GrainContext } from 'nestjs-grains';

/**
 * The grain of the gossip scenarios: `where` (which member hosts it: callers pick identities
 * placed on another member) and `ping` (the call of the round-trip baseline and of the load).
 */
export class GossipBenchGrain {
  constructor(readonly ctx: GrainContext) {}

  async where(): Promise<string> {
    return this.ctx.memberId;
  }

  async ping(x: number): Promise<number> {
    return x + 1;
  }
}

export const GOSSIP_BENCH_KIND = 'gossip-bench-grain';
/** The user key the spread scenario sets (one value per repetition: `{ seq }`). */
export const SPREAD_KEY = 'bench:spread';
