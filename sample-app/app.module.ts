import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { ClusterModule, type ClusterModuleOptions } from 'nestjs-grains';
import { AccountGrain } from './accounts/account.grain.js';
import { AccountsController } from './accounts/accounts.controller.js';
import { LedgerService } from './accounts/ledger.service.js';
import { ClusterController } from './cluster/cluster.controller.js';
import { GrainExceptionFilter } from './http/grain-exception.filter.js';
import { TransferJournalService } from './transfers/transfer-journal.service.js';
import { TransferGrain } from './transfers/transfer.grain.js';
import { TransfersController } from './transfers/transfers.controller.js';

/** Options of the bank application. Every field has a default. */
export interface BankOptions {
  /**
   * Options of the cluster member (`ClusterModule.forRoot`), such as `requestTimeout` or
   * `maxQueueLength`. `clusterName` defaults to `CLUSTER_NAME`, else `'bank'`; without a
   * `provider` and `identityLookup` the member runs embedded (one member, in memory).
   */
  readonly cluster?: Partial<ClusterModuleOptions>;
}

/**
 * The bank: accounts and transfers as grains on a cluster member, behind an HTTP API.
 * Import `AppModule.register()` (the embedded default) or `AppModule.register(options)`.
 * The exception filter is registered here (APP_FILTER), not in `main.ts`, so that an
 * application built from this module in tests answers the same.
 */
@Module({})
export class AppModule {
  static register(options: BankOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ClusterModule.forRoot({ clusterName: process.env.CLUSTER_NAME ?? 'bank', ...options.cluster }),
        ClusterModule.forFeature([AccountGrain, TransferGrain]),
      ],
      controllers: [AccountsController, TransfersController, ClusterController],
      providers: [LedgerService, TransferJournalService, { provide: APP_FILTER, useClass: GrainExceptionFilter }],
    };
  }
}
