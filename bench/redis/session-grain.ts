import type { GrainContext } from 'nestjs-grains';

/** Where an activation lives, as `where()` reports it. */
export interface Whereabouts {
  readonly memberId: string;
  readonly activationId: string;
  readonly epoch: number;
}

/**
 * The grain of the Redis scenarios: an async `onGrainActivate` (like the `activation`
 * scenario's SessionGrain), `touch` (the call every scenario makes) and `where` (the failover
 * scenario's probe: which activation answered).
 */
export class SessionGrain {
  private ready = false;
  constructor(readonly ctx: GrainContext) {}

  async onGrainActivate(): Promise<void> {
    this.ready = true;
  }

  async touch(x: number): Promise<number> {
    return this.ready ? x + 1 : -1;
  }

  async where(): Promise<Whereabouts> {
    return { memberId: this.ctx.memberId, activationId: this.ctx.activationId, epoch: this.ctx.epoch };
  }
}

export const SESSION_KIND = 'session';
