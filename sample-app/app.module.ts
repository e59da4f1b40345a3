import { type DynamicModule, Module, type Provider } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { ClusterModule, type ClusterModuleOptions } from 'nestjs-grains';
import { AccountGrain } from './accounts/account.grain.js';
import { AccountsController } from './accounts/accounts.controller.js';
import { LedgerService } from './accounts/ledger.service.js';
import { RedisLedgerService } from './accounts/redis-ledger.service.js';
import { ClusterController } from './cluster/cluster.controller.js';
import { HealthController } from './cluster/health.controller.js';
import { bankOptionsOf, DEFAULT_CLUSTER_NAME, readBankConfig } from './config/cluster-config.js';
import { BankExceptionFilter } from './http/grain-exception.filter.js';
import { BANK_REDIS_OPTIONS, BankRedis, type BankRedisOptions, type RedisStoresOptions } from './redis/bank-redis.js';
import { RedisTransferJournal } from './transfers/redis-transfer-journal.service.js';
import { TransferJournalService } from './transfers/transfer-journal.service.js';
import { TransferGrain } from './transfers/transfer.grain.js';
import { TransfersController } from './transfers/transfers.controller.js';

/** Options of the bank application. Every field has a default. */
export interface BankOptions {
  /**
   * Options of the cluster member (`ClusterModule.forRoot`), such as `requestTimeout` or
   * `maxQueueLength`. `clusterName` defaults to `'bank'`; without a `provider` and
   * `identityLookup` the member runs embedded (one member, in memory).
   */
  readonly cluster?: Partial<ClusterModuleOptions>;
  /**
   * Join the cluster as a client-only member: host no kinds (the account and transfer
   * clients are registered by kind name only) and call the grains of the other members.
   * Needs `cluster.provider` and `cluster.identityLookup`. @default false
   */
  readonly clientOnly?: boolean;
  /**
   * Keep the ledger and the transfer journal in Redis (`RedisLedgerService`,
   * `RedisTransferJournal`, provided under the tokens `LedgerService` and
   * `TransferJournalService`) instead of in memory. What `IDENTITY_LOOKUP=redis` sets, with
   * the lookup's URL and key prefix. Ignored by a client-only member, which keeps no stores.
   * @default undefined (in memory)
   */
  readonly redisStores?: RedisStoresOptions;
}

/**
 * The bank: accounts and transfers as grains on a cluster member, behind an HTTP API.
 * `AppModule.register()` is configured from the environment, as `npm start` runs it
 * (`readBankConfig`: nothing set is the embedded default); `AppModule.register(options)`
 * uses `options` only. The exception filter is registered here (APP_FILTER), not in
 * `main.ts`, so that an application built from this module in tests answers the same.
 */
@Module({})
export class AppModule {
  static register(options: BankOptions = bankOptionsOf(readBankConfig(process.env))): DynamicModule {
    const clientOnly = options.clientOnly ?? false;
    if (clientOnly && (options.cluster?.provider === undefined || options.cluster.identityLookup === undefined)) {
      throw new Error(
        'AppModule.register({ clientOnly: true }) needs cluster.provider and cluster.identityLookup: a client-only member calls the grains of other members.',
      );
    }
    const clusterName = options.cluster?.clusterName ?? DEFAULT_CLUSTER_NAME;
    // NOTE: a client-only member registers the kinds by name: it hosts no grain class, and
    // needs no ledger or journal (those live with the grains, on the hosting members).
    const stores: Provider[] = clientOnly
      ? []
      : options.redisStores === undefined
        ? [LedgerService, TransferJournalService]
        : redisStores({ ...options.redisStores, clusterName });
    return {
      module: AppModule,
      imports: [
        ClusterModule.forRoot({ ...options.cluster, clusterName }),
        ClusterModule.forFeature(clientOnly ? ['account', 'transfer'] : [AccountGrain, TransferGrain]),
        TerminusModule.forRoot({ logger: false }),
      ],
      controllers: [AccountsController, TransfersController, ClusterController, HealthController],
      providers: [...stores, { provide: APP_FILTER, useClass: BankExceptionFilter }],
    };
  }
}

/** The Redis-backed ledger and journal under the in-memory ones' tokens, and their connection. */
function redisStores(options: BankRedisOptions): Provider[] {
  return [
    { provide: BANK_REDIS_OPTIONS, useValue: options },
    BankRedis,
    { provide: LedgerService, useClass: RedisLedgerService },
    { provide: TransferJournalService, useClass: RedisTransferJournal },
  ];
}
