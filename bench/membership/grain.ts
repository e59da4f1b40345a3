import type { GrainContext } from 'nestjs-grains';

/** Where an activation lives, as `where()` reports it. */
export interface Whereabouts {
  readonly memberId: string;
  readonly activationId: string;
  readonly epoch: number;
}

/** Deactivation hooks that ran in this process (the drain scenario checks them against the activations). */
export const hooks = { activated: 0, deactivated: 0, lastDeactivatedNs: 0 };

/**
 * The grain of the membership scenarios: async `onGrainActivate` and `onGrainDeactivate`
 * hooks (a drain must run every one of them), `touch` (the load of the rolling restart) and
 * `where` (which member's activation answered: the join probe).
 */
export class MemberGrain {
  private ready = false;
  constructor(readonly ctx: GrainContext) {}

  async onGrainActivate(): Promise<void> {
    this.ready = true;
    hooks.activated++;
  }

  async onGrainDeactivate(): Promise<void> {
    // NOTE: one await, like a hook that flushes state; the drain waits for it.
    await Promise.resolve();
    hooks.deactivated++;
    hooks.lastDeactivatedNs = Number(process.hrtime.bigint());
  }

  async touch(x: number): Promise<number> {
    return this.ready ? x + 1 : -1;
  }

  async where(): Promise<Whereabouts> {
    return { memberId: this.ctx.memberId, activationId: this.ctx.activationId, epoch: this.ctx.epoch };
  }
}

export const MEMBER_KIND = 'member-grain';
