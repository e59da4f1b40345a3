/**
 * Member B of the remote-call scenario: a separate process (forked from dist/ by
 * child-process.ts) that hosts the `echo` kind and serves it over gRPC on 127.0.0.1 (a free
 * port). Its StaticProvider lists its own address, the only hosting member; A (client-only)
 * lists the same address and learns B from B's handshake. Exits on `stop` (after a graceful shutdown, so `--cpu-prof` writes its
 * profile) or when its parent goes away.
 *
 *   node [--cpu-prof …] dist/bench/remote/member.js [CA_FILE CERT_FILE KEY_FILE]
 *
 * With the three PEM files (remote-call-tls), B serves over mutual TLS (`remote.tls`).
 */
import { createServer, type AddressInfo } from 'node:net';
import type { Cluster } from 'nestjs-grains';
import { loadRuntime, SilentLogger } from '../support/runtime.js';
import { cpuMicros, reportStartFailure, serveParent } from './child-process.js';
import { ECHO_KIND, EchoGrain, REMOTE_CLUSTER_NAME } from './echo-grain.js';

/** A port free on 127.0.0.1 right now (the OS picks it); the cluster binds it just after. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const [caFile, certFile, keyFile] = process.argv.slice(2);
const tls = caFile !== undefined && certFile !== undefined && keyFile !== undefined ? { caFile, certFile, keyFile } : undefined;

try {
  const { Cluster, GrainConfigurationError, HashIdentityLookup, StaticProvider } = await loadRuntime();
  const logger = new SilentLogger();
  let cluster: Cluster | undefined;
  // NOTE: B lists its own address (as every hosting member should), so it needs its port
  // before it starts; another process may take a free port first, hence a few tries.
  for (let attempt = 1; cluster === undefined; attempt++) {
    const port = await freePort();
    const candidate = new Cluster({
      clusterName: REMOTE_CLUSTER_NAME,
      logger,
      provider: new StaticProvider({ members: [`127.0.0.1:${port}`] }),
      identityLookup: new HashIdentityLookup(),
      remote: { host: '127.0.0.1', port, ...(tls !== undefined && { tls }) },
    });
    candidate.registerKind({ name: ECHO_KIND, grainClass: EchoGrain, create: (ctx) => new EchoGrain(ctx) });
    try {
      await candidate.start();
      cluster = candidate;
    } catch (error) {
      if (!(error instanceof GrainConfigurationError) || attempt >= 5) throw error;
    }
  }
  if (!cluster.remoteAddress.startsWith('127.0.0.1:')) throw new Error(`member B listens on ${cluster.remoteAddress}, not loopback`);
  serveParent(
    cluster.remoteAddress,
    {
      cpu: () => cpuMicros(),
      stats: () => ({
        ...cluster.stats(),
        loggedProblems: logger.problems,
        lastProblem: logger.lastProblem ?? null,
        heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20,
      }),
    },
    () => cluster.shutdown(),
  );
} catch (error) {
  reportStartFailure(error);
}
