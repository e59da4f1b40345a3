import { Injectable, type PipeTransform } from '@nestjs/common';
import { amountProblem } from '../accounts/amount.js';
import { identifierProblem } from '../common/identifier.js';
import { invalidRequest, jsonObjectBody } from '../http/json-body.js';

/** The body of `POST /transfers`. */
export interface TransferBody {
  /** The transfer id (idempotency key); a new one is generated when absent. */
  readonly id?: string;
  readonly from: string;
  readonly to: string;
  readonly amount: number;
}

/**
 * Validates a `TransferBody`: optional `id`, `from` and `to` account ids that differ, a
 * `amount` of whole cents (`amountProblem`), nothing else; else 400.
 */
@Injectable()
export class TransferBodyPipe implements PipeTransform<unknown, TransferBody> {
  transform(value: unknown): TransferBody {
    const body = jsonObjectBody(value, ['id', 'from', 'to', 'amount']);
    const { id, from, to, amount } = body;
    const problem =
      (id === undefined ? undefined : identifierProblem(id, 'id')) ??
      identifierProblem(from, 'from') ??
      identifierProblem(to, 'to') ??
      (from === to ? 'from and to must be different accounts' : undefined) ??
      amountProblem(amount);
    if (problem !== undefined) throw invalidRequest(problem);
    return { ...(id !== undefined && { id: id as string }), from: from as string, to: to as string, amount: amount as number };
  }
}
