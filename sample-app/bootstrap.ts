import { type INestApplication, type NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';

/**
 * Creates the bank application (the embedded default) without listening: `main.ts` listens,
 * tests build `AppModule.register(options)` and call `app.init()` instead. Shutdown hooks are
 * on, so SIGTERM / SIGINT deactivate the grains gracefully (queued calls finish) before the
 * process exits.
 */
export async function createBankApp(options: NestApplicationOptions = {}): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.register(), options);
  app.enableShutdownHooks();
  return app;
}
