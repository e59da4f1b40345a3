import { type INestApplication, type NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { type BankConfig, bankOptionsOf, readBankConfig } from './config/cluster-config.js';

/**
 * Creates the bank application for `config` (by default read from the environment; nothing
 * set is the embedded default) without listening: `main.ts` listens, tests build
 * `AppModule.register(options)` and call `app.init()` instead. Shutdown hooks are on, so
 * SIGTERM / SIGINT deactivate the grains gracefully (queued calls finish) and leave the
 * cluster before the process exits.
 * @throws BankConfigError when `config` is read here and the environment is invalid.
 */
export async function createBankApp(config: BankConfig = readBankConfig(process.env), options: NestApplicationOptions = {}): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.register(bankOptionsOf(config)), options);
  app.enableShutdownHooks();
  return app;
}
