import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createBankApp } from './bootstrap.js';

/** Starts the bank on `HTTP_PORT` (default 3000). */
async function main(): Promise<void> {
  const port = Number(process.env.HTTP_PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`HTTP_PORT must be a port number, got "${process.env.HTTP_PORT}".`);
  const app = await createBankApp();
  await app.listen(port);
  new Logger('Bank').log(`Listening on http://localhost:${port}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
