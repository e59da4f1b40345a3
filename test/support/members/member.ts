/**
 * A cluster member as a real process, for the multi-process tests (test/e2e) and
 * `test/support/member-harness.ts`. It runs from the tsc build
 * (`dist/test/support/members/member.js`) and imports the library as `nestjs-grains`
 * (the package's self-reference: `dist/lib/index.js`).
 *
 * Configuration (environment):
 *   CLUSTER_NAME       the cluster's name (default `e2e`)
 *   HOST               interface to serve on (default 127.0.0.1)
 *   PORT               remote port; required unless CLIENT_ONLY=1
 *   CLIENT_ONLY=1      serve nothing, host no kinds, only call
 *   STATIC_MEMBERS     comma-separated `host:port` of the hosting members (StaticProvider)
 *   EXPECT_MEMBERS     hosting members to know before "ready" (default: STATIC_MEMBERS count)
 *   KINDS              comma-separated kinds to host, of counter, slow, relay (unset: all; empty: none)
 *   PROTOCOL_MIN/MAX   the protocol range spoken (default: this build's)
 *   REQUEST_TIMEOUT_MS default call deadline
 *   MAX_MESSAGE_SIZE   remote.maxMessageSize
 *   PROBE_INTERVAL_MS  StaticProvider probe interval (default 100)
 *   STARTUP_GRACE_MS   StaticProvider startupGraceMs (default: the provider's)
 *
 * Output: stdout carries JSON lines only —
 *   {"event":"ready","memberId","incarnation","address","members":[...]}  once every
 *       expected hosting member is known;
 *   {"event":"exec","callId","kind","identity","method","member","incarnation","activation","count"}
 *       per grain execution (see grains.ts);
 *   {"event":"result","id",...}  per command.
 * stderr carries the runtime's log lines, `[nestjs-grains] <level>: <message>`.
 *
 * Control (stdin, one JSON object per line, each with a numeric `id` echoed in its result):
 *   {"cmd":"call","kind","identity","method","args":[...],"timeoutMs"?}
 *       → {"event":"result","id","ok":true,"value","elapsedMs"} or {"ok":false,"error":{name,code,message,...},"elapsedMs"}
 *   {"cmd":"batch","calls":[{kind,identity,method,args,timeoutMs?}, ...]}   all at once
 *       → {"event":"result","id","ok":true,"value":[<outcome as above, without id/event>, ...]}
 *   {"cmd":"stats"}  → {"event":"result","id","ok":true,"value":{memberId,incarnation,address,members,stats}}
 *   {"cmd":"shutdown"} → graceful shutdown, then exit 0 (SIGTERM does the same).
 * When stdin ends (the parent is gone) the member exits, so it never outlives its test.
 */
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { Cluster, type ClusterLogger, type GrainClass, type GrainContext, HashIdentityLookup, type RemoteOptions, StaticProvider } from 'nestjs-grains';
import { CounterGrain, RelayGrain, setGrainHost, SlowGrain } from './grains.js';

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function env(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}

function intEnv(name: string): number | undefined {
  const value = env(name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got "${value}"`);
  return n;
}

const logger: ClusterLogger = {
  log: (message) => process.stderr.write(`[nestjs-grains] log: ${message}\n`),
  warn: (message) => process.stderr.write(`[nestjs-grains] warn: ${message}\n`),
  error: (message, stack) => process.stderr.write(`[nestjs-grains] error: ${message}${stack ? `\n${stack}` : ''}\n`),
};

const clientOnly = env('CLIENT_ONLY') === '1';
const host = env('HOST') ?? '127.0.0.1';
const port = intEnv('PORT');
if (!clientOnly && port === undefined) throw new Error('PORT is required (or CLIENT_ONLY=1)');
const staticMembers = (env('STATIC_MEMBERS') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
const expectMembers = intEnv('EXPECT_MEMBERS') ?? staticMembers.length;
const protocolMin = intEnv('PROTOCOL_MIN');
const protocolMax = intEnv('PROTOCOL_MAX');
const maxMessageSize = intEnv('MAX_MESSAGE_SIZE');
const requestTimeout = intEnv('REQUEST_TIMEOUT_MS');
const startupGraceMs = intEnv('STARTUP_GRACE_MS');

const remote: RemoteOptions = {
  ...(!clientOnly && { host, port: port! }),
  ...(protocolMin !== undefined && protocolMax !== undefined && { protocol: { min: protocolMin, max: protocolMax } }),
  ...(maxMessageSize !== undefined && { maxMessageSize }),
};

const cluster = new Cluster({
  clusterName: env('CLUSTER_NAME') ?? 'e2e',
  logger,
  provider: new StaticProvider({ members: staticMembers, probeIntervalMs: intEnv('PROBE_INTERVAL_MS') ?? 100, ...(startupGraceMs !== undefined && { startupGraceMs }) }),
  identityLookup: new HashIdentityLookup(),
  remote,
  ...(requestTimeout !== undefined && { requestTimeout }),
});

setGrainHost({
  incarnation: cluster.incarnation,
  emit,
  counters: () => cluster.client<CounterGrain>('counter'),
  relays: () => cluster.client<RelayGrain>('relay'),
});

type GrainCtor = new (ctx: GrainContext) => object;
const available: Record<string, { grainClass: GrainCtor; idempotentMethods?: string[] }> = {
  counter: { grainClass: CounterGrain },
  slow: { grainClass: SlowGrain, idempotentMethods: ['idem'] },
  relay: { grainClass: RelayGrain },
};
const kindsEnv = process.env['KINDS'];
const kinds = clientOnly ? [] : kindsEnv === undefined ? Object.keys(available) : kindsEnv.split(',').map((s) => s.trim()).filter((s) => s !== '');
for (const name of kinds) {
  const spec = available[name];
  if (spec === undefined) throw new Error(`KINDS: unknown kind "${name}"; known: ${Object.keys(available).join(', ')}`);
  const Ctor = spec.grainClass;
  cluster.registerKind({
    name,
    grainClass: Ctor as unknown as GrainClass,
    create: (ctx) => new Ctor(ctx),
    ...(spec.idempotentMethods && { idempotentMethods: spec.idempotentMethods }),
  });
}

// Control channel ---------------------------------------------------------------------------

interface CallSpec {
  kind: string;
  identity: string;
  method: string;
  args?: unknown[];
  timeoutMs?: number;
}

/** An error as plain data: its name, code, message and the typed fields callers act on. */
function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { name: 'NonError', message: String(error) };
  const out: Record<string, unknown> = { name: error.name, message: error.message };
  for (const [key, value] of Object.entries(error)) {
    if (value === undefined || typeof value === 'function') continue;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) continue;
    out[key] = value;
  }
  return out;
}

async function runCall(spec: CallSpec): Promise<Record<string, unknown>> {
  const started = performance.now();
  try {
    const value = await cluster.request(spec.kind, spec.identity, spec.method, spec.args ?? [], spec.timeoutMs === undefined ? undefined : { timeout: spec.timeoutMs });
    return { ok: true, value: value ?? null, elapsedMs: Math.round(performance.now() - started) };
  } catch (error) {
    return { ok: false, error: describeError(error), elapsedMs: Math.round(performance.now() - started) };
  }
}

let stopping: Promise<void> | undefined;
function stop(code: number): Promise<void> {
  stopping ??= (async () => {
    const force = setTimeout(() => process.exit(code), 5_000);
    force.unref();
    try {
      await cluster.shutdown();
    } catch (error) {
      logger.error(`shutdown failed: ${(error as Error).message}`);
    }
    process.exit(code);
  })();
  return stopping;
}

async function handle(line: string): Promise<void> {
  if (line.trim() === '') return;
  let command: { id?: unknown; cmd?: unknown } & Record<string, unknown>;
  try {
    command = JSON.parse(line) as typeof command;
  } catch {
    emit({ event: 'result', id: null, ok: false, error: { name: 'CommandError', message: `not JSON: ${line.slice(0, 200)}` } });
    return;
  }
  const id = command.id;
  switch (command.cmd) {
    case 'call':
      emit({ event: 'result', id, ...(await runCall(command as unknown as CallSpec)) });
      return;
    case 'batch': {
      const calls = (command['calls'] ?? []) as CallSpec[];
      const value = await Promise.all(calls.map((c) => runCall(c)));
      emit({ event: 'result', id, ok: true, value });
      return;
    }
    case 'stats':
      emit({ event: 'result', id, ok: true, value: { memberId: cluster.memberId, incarnation: cluster.incarnation, address: cluster.remoteAddress, members: cluster.members(), stats: cluster.stats() } });
      return;
    case 'shutdown':
      emit({ event: 'result', id, ok: true, value: null });
      await stop(0);
      return;
    default:
      emit({ event: 'result', id, ok: false, error: { name: 'CommandError', message: `unknown command ${String(command.cmd)}` } });
  }
}

let markStarted!: () => void;
const started = new Promise<void>((resolve) => (markStarted = resolve));
const input = createInterface({ input: process.stdin });
// NOTE: commands wait for the member to start (they may arrive before it has).
input.on('line', (line) => void started.then(() => handle(line)));
// NOTE: stdin ends when the parent goes away (even if it was killed): never outlive it.
input.on('close', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));

await cluster.start();
markStarted();
const hosting = () => cluster.members().filter((m) => m.address !== '').length;
while (hosting() < expectMembers) await new Promise((resolve) => setTimeout(resolve, 20));
emit({ event: 'ready', memberId: cluster.memberId, incarnation: cluster.incarnation, address: cluster.remoteAddress, kinds: cluster.kindNames, members: cluster.members() });
