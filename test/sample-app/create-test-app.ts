import 'reflect-metadata';
import type { INestApplication, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { AppModule, type BankOptions } from '../../sample-app/app.module.js';
import { LedgerService } from '../../sample-app/accounts/ledger.service.js';

/** How a test builds the bank. Everything left out is the embedded default `npm start` runs. */
export interface TestAppOptions {
  /** The bank's options, as `AppModule.register(options)` takes them (cluster `requestTimeout`, `maxQueueLength`...). */
  readonly bank?: BankOptions;
  /** The ledger instance to use: a real `LedgerService` (or subclass) configured by the test. */
  readonly ledger?: LedgerService;
  /** Extra controllers, for routes that exist in tests only. */
  readonly controllers?: Type[];
}

/** The bank application, initialised but not listening (supertest listens on its own). */
export async function createTestApp(options: TestAppOptions = {}): Promise<INestApplication> {
  let builder = Test.createTestingModule({ imports: [AppModule.register(options.bank)], controllers: options.controllers ?? [] });
  if (options.ledger !== undefined) builder = builder.overrideProvider(LedgerService).useValue(options.ledger);
  const moduleRef = await builder.compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}
