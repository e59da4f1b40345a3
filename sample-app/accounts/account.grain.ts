import { Grain, type GrainContext, InjectGrainContext, Interleave, type OnGrainActivate } from 'nestjs-grains';
import { StaleEpochError } from '../common/stale-epoch.error.js';
import { StoreUnavailableError } from '../common/store-unavailable.error.js';
import { addAmounts, amountProblem, MAX_BALANCE, subtractAmounts } from './amount.js';
import { InsufficientFundsError } from './insufficient-funds.error.js';
import { InvalidAmountError } from './invalid-amount.error.js';
import { LedgerService } from './ledger.service.js';

/** What `deposit` and `withdraw` answer: the balance after the operation. */
export interface AccountBalance {
  readonly id: string;
  readonly balance: number;
}

/** What `balance` answers: the balance, and the member and activation holding the account. */
export interface AccountView extends AccountBalance {
  readonly member: string;
  readonly activation: string;
}

/**
 * One bank account, identified by its account id. The runtime runs one call at a time per
 * account (turn-based), so read-modify-write needs no lock even though each operation awaits
 * the ledger between reading the balance and changing it.
 *
 * State is loaded from the ledger when the account activates and written through on every
 * change, before memory changes: a failed write leaves the account as it was. Both carry
 * `ctx.epoch`: loading raises the ledger's epoch to this activation's, so that an older
 * activation still running somewhere can no longer write, and a write is refused once a newer
 * activation has loaded.
 */
@Grain({ kind: 'account' })
export class AccountGrain implements OnGrainActivate {
  private current = 0;

  constructor(
    private readonly ledger: LedgerService,
    @InjectGrainContext() private readonly ctx: GrainContext,
  ) {}

  async onGrainActivate(): Promise<void> {
    // Load and fence in one step. Fencing only at the first write would leave a window: a stale
    // activation's write landing after this load, but before this activation's first write,
    // would be accepted, then silently overwritten by this activation's write.
    // StaleEpochError: this activation is already older than one that loaded; it is not kept.
    this.current = await this.ledger.loadAndFence(this.ctx.identity, this.ctx.epoch);
  }

  /**
   * Add `amount` to the balance.
   * @throws InvalidAmountError (`INVALID_AMOUNT`) for an amount that is not a positive money amount.
   */
  async deposit(amount: number): Promise<AccountBalance> {
    assertAmount(amount);
    const next = addAmounts(this.current, amount);
    if (next > MAX_BALANCE)
      throw new InvalidAmountError(`A deposit of ${amount} would take account "${this.ctx.identity}" over the maximum balance ${MAX_BALANCE}.`);
    return this.#commit(next);
  }

  /**
   * Take `amount` from the balance.
   * @throws InsufficientFundsError (`INSUFFICIENT_FUNDS`) when the balance is smaller than `amount`.
   * @throws InvalidAmountError (`INVALID_AMOUNT`) for an amount that is not a positive money amount.
   */
  async withdraw(amount: number): Promise<AccountBalance> {
    assertAmount(amount);
    if (amount > this.current) throw new InsufficientFundsError(this.ctx.identity, amount, this.current);
    return this.#commit(subtractAmounts(this.current, amount));
  }

  /** The balance, with the member and activation serving the account. Read-only, so it may interleave. */
  @Interleave()
  balance(): AccountView {
    return { id: this.ctx.identity, balance: this.current, member: this.ctx.memberId, activation: this.ctx.activationId };
  }

  // NOTE: an ES private method (#): the runtime exposes every other function on the prototype
  // as a callable grain method, TypeScript `private` ones included.
  async #commit(next: number): Promise<AccountBalance> {
    try {
      await this.ledger.save(this.ctx.identity, next, this.ctx.epoch);
    } catch (error) {
      // Fenced out: a newer activation owns the account. Stop, so the next call activates
      // afresh (with a new epoch) and reloads the balance from the ledger. The same when the
      // write may or may not have been applied (Redis did not confirm it): the ledger, not
      // this activation's memory, knows the balance now.
      if (error instanceof StaleEpochError || (error instanceof StoreUnavailableError && error.outcomeUnknown)) this.ctx.deactivate();
      throw error;
    }
    this.current = next;
    return { id: this.ctx.identity, balance: next };
  }
}

function assertAmount(amount: unknown): asserts amount is number {
  const problem = amountProblem(amount);
  if (problem !== undefined) throw new InvalidAmountError(problem);
}
