import { Logger } from '@nestjs/common';
import {
  CallCycleError,
  ClusterShuttingDownError,
  Grain,
  GrainActivationError,
  GrainCallAbortedError,
  type GrainClient,
  type GrainContext,
  GrainInvocationError,
  GrainOverloadedError,
  GrainTimeoutError,
  InjectGrainClient,
  InjectGrainContext,
  Interleave,
  type OnGrainActivate,
} from 'nestjs-grains';
import type { AccountGrain } from '../accounts/account.grain.js';
import { amountProblem } from '../accounts/amount.js';
import { InvalidAmountError } from '../accounts/invalid-amount.error.js';
import { identifierProblem } from '../common/identifier.js';
import { StoreUnavailableError } from '../common/store-unavailable.error.js';
import { InvalidTransferError } from './invalid-transfer.error.js';
import { TransferIdReusedError } from './transfer-id-reused.error.js';
import { TransferJournalService, type TransferResult } from './transfer-journal.service.js';

/** What `status` answers. */
export type TransferStatus = { readonly id: string; readonly status: 'unknown' } | TransferResult;

/**
 * One money transfer, identified by its transfer id (an idempotency key): it withdraws from
 * one account and deposits to another by calling the account grains, and records its outcome
 * so that the same transfer id never moves money twice. Repeated and concurrent requests for
 * one id queue on this grain (turn-based) and get the recorded result.
 *
 * NOTE: a sample, not a payment system. If the deposit fails after the withdrawal succeeded,
 * the withdrawal is refunded when the deposit certainly did not happen; when the outcome is
 * unknown (a timeout while running), it is logged for reconciliation instead. A production
 * version would give account operations their own idempotency keys.
 */
@Grain({ kind: 'transfer' })
export class TransferGrain implements OnGrainActivate {
  private static readonly logger = new Logger('TransferGrain');
  private result: TransferResult | undefined;

  constructor(
    private readonly journal: TransferJournalService,
    @InjectGrainClient('account') private readonly accounts: GrainClient<AccountGrain>,
    @InjectGrainContext() private readonly ctx: GrainContext,
  ) {}

  async onGrainActivate(): Promise<void> {
    this.result = await this.journal.load(this.ctx.identity);
  }

  /**
   * Move `amount` from account `from` to account `to`, once per transfer id.
   * @returns the recorded result; the same one when the transfer already completed.
   * @throws InsufficientFundsError (`INSUFFICIENT_FUNDS`, from the account) when `from` lacks the funds: nothing moved, nothing recorded.
   * @throws InvalidTransferError (`INVALID_TRANSFER`) / InvalidAmountError (`INVALID_AMOUNT`) for bad arguments.
   * @throws TransferIdReusedError (`TRANSFER_ID_REUSED`) when this id completed with other arguments.
   */
  async execute(from: string, to: string, amount: number): Promise<TransferResult> {
    assertTransfer(from, to, amount);
    const id = this.ctx.identity;
    if (this.result !== undefined) {
      if (this.result.from === from && this.result.to === to && this.result.amount === amount) return this.result;
      throw new TransferIdReusedError(id);
    }

    // An account's error (InsufficientFundsError...) reaches this grain's caller as it began:
    // the runtime passes on what a grain rethrows from a grain it called, name and code included.
    await this.accounts.get(from).withdraw(amount);
    try {
      await this.accounts.get(to).deposit(amount);
    } catch (error) {
      await this.#refund(from, to, amount, error);
      throw error;
    }

    const result: TransferResult = { id, from, to, amount, status: 'completed', completedAt: new Date().toISOString() };
    try {
      await this.journal.save(result, this.ctx.epoch);
    } catch (error) {
      // The record may or may not be in the journal: the next activation reads what it holds.
      if (error instanceof StoreUnavailableError && error.outcomeUnknown) this.ctx.deactivate();
      throw error;
    }
    this.result = result;
    return result;
  }

  /** The recorded result, or `{ id, status: 'unknown' }` for a transfer that never completed. */
  @Interleave()
  status(): TransferStatus {
    return this.result ?? { id: this.ctx.identity, status: 'unknown' };
  }

  async #refund(from: string, to: string, amount: number, depositError: unknown): Promise<void> {
    const transfer = `Transfer "${this.ctx.identity}"`;
    if (!certainlyNotApplied(depositError)) {
      TransferGrain.logger.error(
        `${transfer}: ${amount} was withdrawn from "${from}" but the deposit to "${to}" has an unknown outcome (${describe(depositError)}); reconcile by hand.`,
      );
      return;
    }
    try {
      await this.accounts.get(from).deposit(amount);
    } catch (refundError) {
      TransferGrain.logger.error(
        `${transfer}: the deposit to "${to}" failed and refunding ${amount} to "${from}" failed too (${describe(refundError)}); reconcile by hand.`,
      );
    }
  }
}

function assertTransfer(from: unknown, to: unknown, amount: unknown): void {
  const problem = identifierProblem(from, 'from') ?? identifierProblem(to, 'to') ?? (from === to ? 'from and to must be different accounts' : undefined);
  if (problem !== undefined) throw new InvalidTransferError(problem);
  const amountIssue = amountProblem(amount);
  if (amountIssue !== undefined) throw new InvalidAmountError(amountIssue);
}

/** True when a failed account call certainly changed nothing. */
function certainlyNotApplied(error: unknown): boolean {
  // The account method threw: it changes its balance only as its last step, after the write —
  // unless the write itself has an unknown outcome (Redis did not confirm it).
  if (error instanceof GrainInvocationError) return error.remoteCode !== 'STORE_OUTCOME_UNKNOWN';
  if (error instanceof GrainTimeoutError || error instanceof GrainCallAbortedError) return error.neverRan;
  return (
    error instanceof GrainOverloadedError ||
    error instanceof ClusterShuttingDownError ||
    error instanceof GrainActivationError ||
    error instanceof CallCycleError
  );
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
