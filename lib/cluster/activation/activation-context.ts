import type { GrainClient } from '../grain-client.interface.js';
import type { GrainContext, GrainTimer, GrainTimerOptions } from '../grain-context.js';
import type { DeactivationReason } from '../kind.js';

/** What a context reads from (and asks of) its activation. */
export interface ContextOwner {
  readonly kind: { readonly name: string };
  readonly identity: string;
  readonly memberId: string;
  readonly id: string;
  readonly epoch: number;
  /** The current call's signal, or one that never aborts outside a call. */
  currentSignal(): AbortSignal;
  client<T>(kind: string): GrainClient<T>;
  deactivate(reason: DeactivationReason): Promise<void>;
  startTimer(callback: () => unknown, options: GrainTimerOptions): GrainTimer;
}

/** The `GrainContext` of one activation: what the runtime tells (and lets) a grain do. */
export class ActivationContext implements GrainContext {
  constructor(private readonly activation: ContextOwner) {}

  get kind(): string {
    return this.activation.kind.name;
  }

  get identity(): string {
    return this.activation.identity;
  }

  get memberId(): string {
    return this.activation.memberId;
  }

  get activationId(): string {
    return this.activation.id;
  }

  get epoch(): number {
    return this.activation.epoch;
  }

  get signal(): AbortSignal {
    return this.activation.currentSignal();
  }

  client<T>(kind: string): GrainClient<T> {
    return this.activation.client<T>(kind);
  }

  deactivate(): void {
    void this.activation.deactivate('requested');
  }

  startTimer(callback: () => unknown, options: GrainTimerOptions): GrainTimer {
    return this.activation.startTimer(callback, options);
  }
}
