import { randomUUID } from 'node:crypto';
import { Body, Controller, Get, HttpCode, HttpStatus, NotFoundException, Param, Post, UseGuards } from '@nestjs/common';
import { type GrainClient, InjectGrainClient } from 'nestjs-grains';
import { ClusterReadyGuard } from '../cluster/cluster-ready.guard.js';
import { IdParamPipe } from '../http/id-param.pipe.js';
import { type TransferBody, TransferBodyPipe } from './transfer-body.pipe.js';
import type { TransferResult } from './transfer-journal.service.js';
// Type-only: the controller never loads the grain class; the client is injected by kind name.
import type { TransferGrain } from './transfer.grain.js';

/**
 * Transfers between accounts: each transfer id is one transfer grain. In cluster mode, 503
 * until this member knows every member (`ClusterReadyGuard`).
 */
@Controller('transfers')
@UseGuards(ClusterReadyGuard)
export class TransfersController {
  constructor(@InjectGrainClient('transfer') private readonly transfers: GrainClient<TransferGrain>) {}

  /**
   * `POST /transfers` `{ "id"?, "from", "to", "amount" }` → the transfer's result. Sending the
   * same `id` again answers the recorded result and moves no money.
   */
  @Post()
  @HttpCode(HttpStatus.OK)
  create(@Body(TransferBodyPipe) body: TransferBody): Promise<TransferResult> {
    return this.transfers.get(body.id ?? randomUUID()).execute(body.from, body.to, body.amount);
  }

  /** `GET /transfers/:id` → the recorded result; 404 for a transfer that never completed. */
  @Get(':id')
  async get(@Param('id', new IdParamPipe('transfer id')) id: string): Promise<TransferResult> {
    const status = await this.transfers.get(id).status();
    if (status.status === 'unknown') throw new NotFoundException(`Transfer "${id}" has not completed.`);
    return status;
  }
}
