import { Body, Controller, Get, HttpCode, HttpStatus, Param, Post, UseGuards } from '@nestjs/common';
import { type GrainClient, InjectGrainClient } from 'nestjs-grains';
import { ClusterReadyGuard } from '../cluster/cluster-ready.guard.js';
import { IdParamPipe } from '../http/id-param.pipe.js';
// Type-only: the controller never loads the grain class; the client is injected by kind name.
import type { AccountBalance, AccountGrain, AccountView } from './account.grain.js';
import { type AmountBody, AmountBodyPipe } from './amount-body.pipe.js';

/**
 * Deposits, withdrawals and balances: each request is one call to the account's grain.
 * In cluster mode, 503 until this member knows every member (`ClusterReadyGuard`).
 */
@Controller('accounts')
@UseGuards(ClusterReadyGuard)
export class AccountsController {
  constructor(@InjectGrainClient('account') private readonly accounts: GrainClient<AccountGrain>) {}

  /** `POST /accounts/:id/deposit` `{ "amount": n }` → `{ id, balance }`. */
  @Post(':id/deposit')
  @HttpCode(HttpStatus.OK)
  deposit(@Param('id', new IdParamPipe('account id')) id: string, @Body(AmountBodyPipe) body: AmountBody): Promise<AccountBalance> {
    return this.accounts.get(id).deposit(body.amount);
  }

  /** `POST /accounts/:id/withdraw` `{ "amount": n }` → `{ id, balance }`; 409 `INSUFFICIENT_FUNDS` on overdraft. */
  @Post(':id/withdraw')
  @HttpCode(HttpStatus.OK)
  withdraw(@Param('id', new IdParamPipe('account id')) id: string, @Body(AmountBodyPipe) body: AmountBody): Promise<AccountBalance> {
    return this.accounts.get(id).withdraw(body.amount);
  }

  /** `GET /accounts/:id` → `{ id, balance, member, activation }`. */
  @Get(':id')
  get(@Param('id', new IdParamPipe('account id')) id: string): Promise<AccountView> {
    return this.accounts.get(id).balance();
  }
}
