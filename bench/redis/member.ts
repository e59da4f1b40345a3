/**
 * A member of the Redis scenarios: a separate process (forked from dist/ by the orchestrator,
 * bench/redis/scenarios.ts, through bench/remote/child-process.ts) that hosts the `session`
 * kind and serves it over gRPC on 127.0.0.1 at the port it is given, with either
 * RedisIdentityLookup (fast lease, prefer-local placement) or HashIdentityLookup. Its
 * StaticProvider lists every member's address; it reports ready once it knows all of them.
 *
 * Requests (bench/redis/protocol.ts): activate, touchAll, cachedRefs, cached, where, poll,
 * cpu, stats, stop. Exits on `stop` (graceful shutdown) or when its parent goes away.
 *
 * Started with `spare` instead of a configuration, it only loads the runtime (most of a
 * start's time) and waits for `start` (a MemberConfig): the failover scenario forks one when
 * it kills a member, and turns it into that member once the failover has been measured.
 *
 *   node dist/bench/redis/member.js '<MemberConfig as JSON>' | spare
 */
import { performance } from 'node:perf_hooks';
import type { Cluster, GrainClient, GrainRef } from 'nestjs-grains';
import { cpuMicros, reportStartFailure, serveParent } from '../remote/child-process.js';
import { describeError, memberHealth, type RunningMember } from '../support/member-child.js';
import { loadRuntime, SilentLogger } from '../support/runtime.js';
import { hrNow, pollUntil, sleep } from '../support/timing.js';
import type {
  ActivateRequest,
  CachedRefsRequest,
  CachedRequest,
  MemberConfig,
  MemberStats,
  PollReply,
  PollRequest,
  TimedReply,
  TouchAllRequest,
  WhereRequest,
} from './protocol.js';
import { SESSION_KIND, SessionGrain, type Whereabouts } from './session-grain.js';

const READY_TIMEOUT_MS = 10_000;

// NOTE: one loop function per kind of round, so each call site stays monomorphic.

async function activateLoop(client: GrainClient<SessionGrain>, ids: readonly string[], from: number, count: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < count; i++) ok += await client.get(ids[from + i]!).touch(0);
  return ok;
}

async function cachedLoop(ref: GrainRef<SessionGrain>, count: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < count; i++) ok += await ref.touch(0);
  return ok;
}

async function timed(callers: number, ops: number, start: (j: number) => Promise<number>): Promise<TimedReply> {
  const loops = new Array<Promise<number>>(callers);
  const startNs = hrNow();
  for (let j = 0; j < callers; j++) loops[j] = start(j);
  const done = await Promise.all(loops);
  const endNs = hrNow();
  let ok = 0;
  for (const n of done) ok += n;
  if (ok !== ops) throw new Error(`${ok} of ${ops} calls answered x + 1`);
  return { startNs, endNs, ops };
}

interface Running extends RunningMember<MemberConfig> {
  readonly client: GrainClient<SessionGrain>;
  cachedRefs: GrainRef<SessionGrain>[];
}

/** Start the member's cluster and wait (bounded) until it knows every listed member. */
async function startMember(config: MemberConfig): Promise<Running> {
  const { Cluster, HashIdentityLookup, RedisIdentityLookup, StaticProvider } = await loadRuntime();
  const logger = new SilentLogger();
  const address = `127.0.0.1:${config.port}`;
  const cluster: Cluster = new Cluster({
    clusterName: config.clusterName,
    logger,
    provider: new StaticProvider({ members: config.members, probeInterval: 50 }),
    identityLookup: config.lookup === 'redis' ? new RedisIdentityLookup({ url: config.redisUrl!, lease: 'fast' }) : new HashIdentityLookup(),
    remote: { host: '127.0.0.1', port: config.port },
  });
  cluster.registerKind({ name: SESSION_KIND, grainClass: SessionGrain, create: (ctx) => new SessionGrain(ctx) });
  await cluster.start();
  if (cluster.remoteAddress !== address) throw new Error(`${config.name} listens on ${cluster.remoteAddress}, not ${address}`);
  // Bounded: every listed member's handshake (a few ms on loopback).
  await pollUntil(
    () => cluster.members().length >= config.members.length,
    READY_TIMEOUT_MS,
    10,
    () => `${config.name} knows ${cluster.members().length} of ${config.members.length} members after ${READY_TIMEOUT_MS} ms`,
  );
  return { config, cluster, client: cluster.client<SessionGrain>(SESSION_KIND), logger, cachedRefs: [] };
}

let running: Running | undefined;
function member(): Running {
  if (running === undefined) throw new Error('this member has not started its cluster (a spare: send `start` first)');
  return running;
}

function stats(): MemberStats {
  const { cluster, logger } = member();
  const s = cluster.stats();
  return {
    memberId: cluster.memberId,
    incarnation: cluster.incarnation,
    address: cluster.remoteAddress,
    members: cluster.members().length,
    activations: s.activations,
    activated: s.activated,
    deactivated: s.deactivated,
    fenced: s.fenced,
    pidCache: s.pidCache,
    ...memberHealth(logger),
  };
}

async function poll(request: PollRequest): Promise<PollReply> {
  const { cluster } = member();
  const { identity, notActivation, perCallTimeoutMs, maxMs } = request;
  const until = performance.now() + maxMs;
  const errors: Record<string, number> = {};
  const t0 = performance.now();
  const trace: Array<[number, number, string]> = [];
  let attempts = 0;
  let lastError: string | null = null;
  while (performance.now() < until) {
    attempts++;
    const started = performance.now();
    try {
      const answer = (await cluster.request(SESSION_KIND, identity, 'where', [], {
        timeout: Math.max(1, Math.min(perCallTimeoutMs, until - started)),
      })) as Whereabouts;
      const okAtNs = hrNow();
      if (trace.length < 60) trace.push([Math.round(started - t0), Math.round(performance.now() - started), 'ok']);
      if (answer.activationId !== notActivation) return { okAtNs, attempts, errors, lastError, answer, trace };
      errors['answered by the old activation'] = (errors['answered by the old activation'] ?? 0) + 1;
    } catch (error) {
      const { name, message } = describeError(error);
      errors[name] = (errors[name] ?? 0) + 1;
      lastError = `${name}: ${message}`;
      if (trace.length < 60) trace.push([Math.round(started - t0), Math.round(performance.now() - started), name]);
    }
    // A failure that came back at once: do not spin on Redis; 5 ms is well under the resolution asked for.
    if (performance.now() - started < 5) await sleep(5);
  }
  return { okAtNs: null, attempts, errors, lastError, answer: null, trace };
}

const handlers = {
  stats,
  cpu: () => cpuMicros(),
  activate: (arg: unknown) => {
    const { client } = member();
    const { prefix, callers, per } = arg as ActivateRequest;
    const ids = new Array<string>(callers * per);
    for (let j = 0; j < callers; j++) for (let i = 0; i < per; i++) ids[j * per + i] = `${prefix}${j}.${i}`;
    return timed(callers, callers * per, (j) => activateLoop(client, ids, j * per, per));
  },
  touchAll: async (arg: unknown) => {
    const { client } = member();
    const { ids } = arg as TouchAllRequest;
    const answers = await Promise.all(ids.map((id) => client.get(id).touch(0)));
    const ok = answers.reduce((a, b) => a + b, 0);
    if (ok !== ids.length) throw new Error(`${ok} of ${ids.length} calls answered x + 1`);
    return ids.length;
  },
  cachedRefs: (arg: unknown) => {
    const m = member();
    m.cachedRefs = (arg as CachedRefsRequest).ids.map((id) => m.client.get(id));
    return m.cachedRefs.length;
  },
  cached: (arg: unknown) => {
    const { per } = arg as CachedRequest;
    const refs = member().cachedRefs;
    return timed(refs.length, refs.length * per, (j) => cachedLoop(refs[j]!, per));
  },
  where: (arg: unknown) => {
    const { identity, timeoutMs } = arg as WhereRequest;
    return member().client.get(identity, { timeout: timeoutMs }).where();
  },
  poll: (arg: unknown) => poll(arg as PollRequest),
};

const stop = async () => {
  await running?.cluster.shutdown();
};

try {
  const mode = process.argv[2] ?? '';
  if (mode === 'spare') {
    // A spare: the runtime is loaded (the slow part of a start); `start` makes it a member.
    await loadRuntime();
    serveParent(
      'spare',
      {
        ...handlers,
        start: async (arg) => {
          if (running !== undefined) throw new Error('already started');
          running = await startMember(arg as MemberConfig);
          return running.cluster.remoteAddress;
        },
      },
      stop,
    );
  } else {
    running = await startMember(JSON.parse(mode) as MemberConfig);
    serveParent(running.cluster.remoteAddress, handlers, stop);
  }
} catch (error) {
  reportStartFailure(error);
}
