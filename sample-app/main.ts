import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { ClusterUnavailableError, GrainConfigurationError } from 'nestjs-grains';
import { createBankApp } from './bootstrap.js';
import { type BankConfig, BankConfigError, readBankConfig } from './config/cluster-config.js';
import { RedisConnectError } from './redis/bank-redis.js';

/**
 * Starts the bank on `HTTP_PORT` (default 3000), configured from the environment (see
 * `sample-app/config/cluster-config.ts`): the embedded default, or a member of a cluster.
 * A configuration error ends the process at once with exit code 1 and one line on stderr.
 */
async function main(): Promise<void> {
  let config: BankConfig;
  try {
    config = readBankConfig(process.env);
  } catch (error) {
    if (!(error instanceof BankConfigError)) throw error;
    console.error(`Configuration error: ${error.message}`);
    process.exitCode = 1;
    return;
  }
  const app = await createBankApp(config);
  try {
    await app.listen(config.httpPort);
  } catch (error) {
    // NOTE: close what did start (the cluster member's remote), or it would keep the process alive.
    await app.close().catch(() => undefined);
    throw error;
  }
  const address: unknown = app.getHttpServer().address();
  const port = typeof address === 'object' && address !== null && 'port' in address ? address.port : config.httpPort;
  new Logger('Bank').log(`Listening on http://localhost:${String(port)}`);
}

main().catch((error: unknown) => {
  // A startup failure explained in one line (such as a remote port in use, or Redis not
  // reachable): no stack.
  if (error instanceof GrainConfigurationError || error instanceof ClusterUnavailableError || error instanceof RedisConnectError)
    console.error(`Startup error: ${error.message}`);
  else console.error(error);
  process.exitCode = 1;
});
