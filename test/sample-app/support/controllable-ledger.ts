import { LedgerService } from '../../../sample-app/accounts/ledger.service.js';

/**
 * The real in-memory ledger (same Map, same epoch fencing), with two knobs a real database
 * also has: writes to an account can be held (a lock held elsewhere, a stalled disk) until the
 * test releases them, and the next load or save of an account can fail. Everything above it
 * (grains, runtime, clients, HTTP) is the real thing.
 */
export class ControllableLedger extends LedgerService {
  private readonly holds = new Map<string, Hold>();
  private readonly failures = new Map<string, unknown>();

  /**
   * Hold every `save` of `accountId` from now until `release()`: the account's turn stays
   * running inside the write, so calls behind it stay queued.
   */
  hold(accountId: string): Hold {
    if (this.holds.has(accountId)) throw new Error(`account "${accountId}" is already held`);
    const hold = new Hold(() => this.holds.delete(accountId));
    this.holds.set(accountId, hold);
    return hold;
  }

  /** Release every hold (for afterEach: no turn stays blocked past its test). */
  releaseAll(): void {
    for (const hold of [...this.holds.values()]) hold.release();
  }

  /**
   * The next activation load (`loadAndFence`) or `save` of `accountId` rejects with `error`
   * (and changes nothing).
   */
  failNext(operation: 'load' | 'save', accountId: string, error: unknown): void {
    this.failures.set(`${operation}:${accountId}`, error);
  }

  override async loadAndFence(accountId: string, epoch: number): Promise<number> {
    this.#failIfAsked('load', accountId);
    return super.loadAndFence(accountId, epoch);
  }

  override async save(accountId: string, balance: number, epoch: number): Promise<void> {
    const hold = this.holds.get(accountId);
    if (hold !== undefined) await hold.wait();
    this.#failIfAsked('save', accountId);
    return super.save(accountId, balance, epoch);
  }

  #failIfAsked(operation: 'load' | 'save', accountId: string): void {
    const key = `${operation}:${accountId}`;
    if (!this.failures.has(key)) return;
    const error = this.failures.get(key);
    this.failures.delete(key);
    throw error;
  }
}

/** Writes held at the ledger until `release()`. */
export class Hold {
  /** Resolves once a write has reached the hold (its turn is running, blocked in `save`). */
  readonly reached: Promise<void>;
  private readonly released: Promise<void>;
  private arrive!: () => void;
  private open!: () => void;

  constructor(private readonly forget: () => void) {
    this.reached = new Promise((resolve) => (this.arrive = resolve));
    this.released = new Promise((resolve) => (this.open = resolve));
  }

  wait(): Promise<void> {
    this.arrive();
    return this.released;
  }

  /** Let the held writes (and later ones) through. */
  release(): void {
    this.forget();
    this.open();
  }
}
