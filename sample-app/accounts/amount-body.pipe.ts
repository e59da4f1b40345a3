import { Injectable, type PipeTransform } from '@nestjs/common';
import { invalidRequest, jsonObjectBody } from '../http/json-body.js';
import { amountProblem } from './amount.js';

/** The body of `POST /accounts/:id/deposit` and `/withdraw`. */
export interface AmountBody {
  readonly amount: number;
}

/** Validates an `AmountBody`: a JSON object with an `amount` of whole cents (`amountProblem`) and nothing else; else 400. */
@Injectable()
export class AmountBodyPipe implements PipeTransform<unknown, AmountBody> {
  transform(value: unknown): AmountBody {
    const body = jsonObjectBody(value, ['amount']);
    const problem = amountProblem(body['amount']);
    if (problem !== undefined) throw invalidRequest(problem);
    return { amount: body['amount'] as number };
  }
}
