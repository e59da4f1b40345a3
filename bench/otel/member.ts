/**
 * A member of the `otel` scenario: a separate process (forked from dist/ by
 * scenarios/otel.ts) with or without an OpenTelemetry SDK registered before its cluster is
 * made, as an application registers one. Each subject of the scenario gets its own processes,
 * so a registered SDK (and the AsyncLocalStorage its context manager enables) never touches
 * the subjects without one.
 *
 *   node dist/bench/otel/member.js <sdk> <role> [server address]
 *
 * sdk:  `off` (no SDK), `on` (every call traced: AlwaysOn sampler), `unsampled` (the SDK
 *       registered, no trace sampled: metrics, and spans that record nothing).
 * role: `local` (an embedded member: `counter` grains, called here), `server` (hosts `echo`
 *       on 127.0.0.1), `client` (a client-only member calling the server's `echo` grains).
 *
 * The SDK is what a production app registers, exporting to nowhere: a BatchSpanProcessor into
 * an exporter that counts spans, a PeriodicExportingMetricReader (every second) into one that
 * counts exports, the AsyncLocalStorage context manager and the W3C propagator.
 */
import { createServer, type AddressInfo } from 'node:net';
import type { Cluster, GrainRef } from 'nestjs-grains';
import { cpuMicros, reportStartFailure, serveParent } from '../remote/child-process.js';
import { ECHO_KIND, EchoGrain } from '../remote/echo-grain.js';
import { CounterGrain } from '../scenarios/local-call.js';
import { loadRuntime, SilentLogger } from '../support/runtime.js';

const CLUSTER_NAME = 'bench-otel';
const [sdkMode, role, serverAddress] = process.argv.slice(2) as ['off' | 'on' | 'unsampled', 'local' | 'server' | 'client', string | undefined];

/** Export counts, for the scenario's checks. */
const exported = { spans: 0, metricExports: 0 };

async function registerSdk(sampled: boolean): Promise<void> {
  const [api, { AsyncLocalStorageContextManager }, core, traceSdk, metricsSdk] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/core'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/sdk-metrics'),
  ]);
  const success = { code: core.ExportResultCode.SUCCESS };
  const tracerProvider = new traceSdk.BasicTracerProvider({
    sampler: new traceSdk.ParentBasedSampler({ root: sampled ? new traceSdk.AlwaysOnSampler() : new traceSdk.AlwaysOffSampler() }),
    spanProcessors: [
      new traceSdk.BatchSpanProcessor({
        export: (spans, done) => {
          exported.spans += spans.length;
          done(success);
        },
        shutdown: async () => {},
      }),
    ],
  });
  const meterProvider = new metricsSdk.MeterProvider({
    readers: [
      new metricsSdk.PeriodicExportingMetricReader({
        exportIntervalMillis: 1_000,
        exporter: {
          export: (_metrics, done) => {
            exported.metricExports++;
            done(success);
          },
          forceFlush: async () => {},
          shutdown: async () => {},
        },
      }),
    ],
  });
  api.trace.setGlobalTracerProvider(tracerProvider);
  api.metrics.setGlobalMeterProvider(meterProvider);
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  api.propagation.setGlobalPropagator(new core.W3CTraceContextPropagator());
}

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

// Caller loops: one per role, so neither call site goes polymorphic (see local-call.ts).
async function counterLoop(ref: GrainRef<CounterGrain>, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await ref.add(1);
}

async function echoLoop(ref: GrainRef<EchoGrain>, data: Uint8Array, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await ref.echo(data);
}

try {
  if (sdkMode !== 'off') await registerSdk(sdkMode === 'on');
  const { Cluster, HashIdentityLookup, StaticProvider } = await loadRuntime();
  const logger = new SilentLogger();
  let cluster: Cluster | undefined;
  let counters: GrainRef<CounterGrain>[] = [];
  let echoes: GrainRef<EchoGrain>[] = [];
  const data = new Uint8Array(64).fill(7);
  if (role === 'local') {
    cluster = new Cluster({ clusterName: CLUSTER_NAME, logger });
    cluster.registerKind({ name: 'counter', grainClass: CounterGrain, create: (ctx) => new CounterGrain(ctx) });
    await cluster.start();
  } else if (role === 'server') {
    // NOTE: another process may take the free port first, hence a few tries.
    for (let attempt = 1; cluster === undefined; attempt++) {
      const port = await freePort();
      const candidate = new Cluster({
        clusterName: CLUSTER_NAME,
        logger,
        provider: new StaticProvider({ members: [`127.0.0.1:${port}`] }),
        identityLookup: new HashIdentityLookup(),
        remote: { host: '127.0.0.1', port },
      });
      candidate.registerKind({ name: ECHO_KIND, grainClass: EchoGrain, create: (ctx) => new EchoGrain(ctx) });
      try {
        await candidate.start();
        cluster = candidate;
      } catch (error) {
        if (attempt >= 5) throw error;
      }
    }
  } else {
    const client = new Cluster({
      clusterName: CLUSTER_NAME,
      logger,
      provider: new StaticProvider({ members: [serverAddress!] }),
      identityLookup: new HashIdentityLookup(),
      remote: {},
    });
    await client.start();
    for (let i = 0; i < 500 && !client.members().some((m) => m.kinds.includes(ECHO_KIND)); i++) await new Promise((r) => setTimeout(r, 10));
    if (!client.members().some((m) => m.kinds.includes(ECHO_KIND))) throw new Error(`the client did not learn the server (${serverAddress}) within 5 s`);
    cluster = client;
  }
  const member = cluster;
  serveParent(
    role === 'server' ? member.remoteAddress : '',
    {
      /** One grain per caller, each called once (activated) before any round. */
      setup: async (arg) => {
        const concurrency = arg as number;
        if (role === 'local') {
          const client = member.client<CounterGrain>('counter');
          counters = Array.from({ length: concurrency }, (_, j) => client.get(`counter-${j}`));
          await Promise.all(counters.map((ref) => ref.add(0)));
        } else if (role === 'client') {
          const client = member.client<EchoGrain>(ECHO_KIND);
          echoes = Array.from({ length: concurrency }, (_, j) => client.get(`echo-${j}`));
          await Promise.all(echoes.map((ref) => ref.echo(data)));
        }
        return null;
      },
      /** About `ops` calls by every caller at once; returns how many ran. */
      round: async (arg) => {
        const refs = role === 'local' ? counters : echoes;
        const per = Math.max(1, Math.ceil((arg as number) / refs.length));
        if (role === 'local') await Promise.all(counters.map((ref) => counterLoop(ref, per)));
        else await Promise.all(echoes.map((ref) => echoLoop(ref, data, per)));
        return per * refs.length;
      },
      stats: () => ({ ...member.stats(), ...exported, loggedProblems: logger.problems, lastProblem: logger.lastProblem ?? null, cpuUs: cpuMicros() }),
    },
    () => member.shutdown(),
  );
} catch (error) {
  reportStartFailure(error);
}
