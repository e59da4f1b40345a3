/**
 * A member of the gossip scenarios (spread, idle cost, remote calls): a separate process,
 * forked from dist/ by the orchestrator (bench/gossip/scenarios.ts, through
 * bench/remote/child-process.ts), that hosts the `gossip-bench-grain` kind and serves it over
 * gRPC on 127.0.0.1 at the port it is given, with a StaticProvider listing every member and
 * HashIdentityLookup; gossip at its defaults, or `gossip: { enabled: false }`.
 *
 * It reports ready once it knows every listed member. From its start it watches the spread
 * key and notes when (process.hrtime: one monotonic clock for every process of the host) each
 * member's value arrived.
 *
 * Requests (bench/gossip/protocol.ts): stats, cpu, cpuUsage (user and system apart), gossipReady, spreadSet, spreadSeen, rtt,
 * loadPrepare, loadRound; `stop` shuts down and exits. Exits when its parent goes away.
 *
 *   node dist/bench/gossip/member.js '<GossipMemberConfig as JSON>'
 */
import { performance } from 'node:perf_hooks';
import type { Cluster, GrainRef } from 'nestjs-grains';
import { cpuMicros, reportStartFailure, serveParent } from '../remote/child-process.js';
import { memberHealth, type RunningMember } from '../support/member-child.js';
import { loadRuntime, SilentLogger } from '../support/runtime.js';
import { hrNow, pollUntil, sleep } from '../support/timing.js';
import { GOSSIP_BENCH_KIND, GossipBenchGrain, SPREAD_KEY } from './grain.js';
import type {
  GossipMemberConfig,
  GossipMemberStats,
  GossipReadyRequest,
  LoadPrepareRequest,
  LoadRoundReply,
  LoadRoundRequest,
  RttReply,
  RttRequest,
  SpreadSeenRequest,
  SpreadSetRequest,
} from './protocol.js';

const READY_TIMEOUT_MS = 15_000;
const CALL_TIMEOUT_MS = 5_000;
/** Identities tried to find grains placed on another member (hash placement: most land elsewhere with 2+ members). */
const PLACEMENT_TRIES = 20;

type Running = RunningMember<GossipMemberConfig>;

let running: Running | undefined;

/** When each (member, seq) of the spread key arrived here (hrtime ns), and who waits for one. */
const seen = new Map<string, number>();
const seenWaiters = new Map<string, Array<(ns: number) => void>>();
const seenKey = (from: string, seq: number) => `${from}#${seq}`;

function sawSpread(memberId: string, value: unknown): void {
  // NOTE: the clock first: this is the figure.
  const atNs = hrNow();
  const seq = typeof value === 'object' && value !== null ? (value as { seq?: unknown }).seq : undefined;
  if (typeof seq !== 'number') return;
  const key = seenKey(memberId, seq);
  if (seen.has(key)) return;
  seen.set(key, atNs);
  for (const wake of seenWaiters.get(key) ?? []) wake(atNs);
  seenWaiters.delete(key);
}

async function startMember(config: GossipMemberConfig): Promise<Running> {
  const { Cluster, HashIdentityLookup, StaticProvider } = await loadRuntime();
  const logger = new SilentLogger();
  const cluster: Cluster = new Cluster({
    clusterName: config.clusterName,
    logger,
    // NOTE: startupGrace 0, as in the membership group: every listed member starts at once, and readiness is checked below.
    provider: new StaticProvider({ members: config.members, probeInterval: config.probeIntervalMs, startupGrace: 0 }),
    identityLookup: new HashIdentityLookup(),
    remote: { host: '127.0.0.1', port: config.port },
    ...(config.gossip ? {} : { gossip: { enabled: false } }),
  });
  cluster.registerKind({ name: GOSSIP_BENCH_KIND, grainClass: GossipBenchGrain, create: (ctx) => new GossipBenchGrain(ctx) });
  cluster.gossip.watch(SPREAD_KEY, sawSpread);
  await cluster.start();
  if (cluster.remoteAddress !== `127.0.0.1:${config.port}`) throw new Error(`${config.name} listens on ${cluster.remoteAddress}, not 127.0.0.1:${config.port}`);
  await cluster.whenReady(READY_TIMEOUT_MS);
  await pollUntil(
    () => hosting(cluster) >= config.members.length,
    READY_TIMEOUT_MS,
    5,
    () => `${config.name} knows ${hosting(cluster)} of ${config.members.length} members after ${READY_TIMEOUT_MS} ms`,
  );
  return { config, cluster, logger };
}

function member(): Running {
  if (running === undefined) throw new Error('not started');
  return running;
}

/** Hosting members known now (this one included). */
function hosting(cluster: Cluster): number {
  return cluster.members().filter((m) => m.address !== '' && m.kinds.includes(GOSSIP_BENCH_KIND)).length;
}

function stats(): GossipMemberStats {
  const { cluster, config, logger } = member();
  return {
    memberId: cluster.memberId,
    gossipEnabled: config.gossip,
    members: hosting(cluster),
    activations: cluster.stats().activations,
    consensus: cluster.topologyConsensus().consensus,
    suspected: cluster.gossip
      .members()
      .filter((m) => m.status === 'suspected')
      .map((m) => m.id),
    ...memberHealth(logger),
  };
}

async function gossipReady(request: GossipReadyRequest): Promise<number> {
  const { cluster, config } = member();
  if (!config.gossip) return 0;
  const ok = () => {
    const list = cluster.gossip.members();
    return (
      list.length === config.members.length &&
      list.every((m) => m.status === 'alive' && (m.id === cluster.memberId || m.heartbeatAgeMs !== undefined)) &&
      cluster.topologyConsensus().consensus
    );
  };
  return pollUntil(
    ok,
    request.maxMs,
    5,
    () => `gossip not converged after ${request.maxMs} ms: ${JSON.stringify({ members: cluster.gossip.members(), consensus: cluster.topologyConsensus() })}`,
  );
}

function spreadSet(request: SpreadSetRequest): number {
  const { cluster } = member();
  const atNs = hrNow();
  cluster.gossip.set(SPREAD_KEY, { seq: request.seq });
  return atNs;
}

function spreadSeen(request: SpreadSeenRequest): Promise<number | null> {
  const key = seenKey(request.from, request.seq);
  const at = seen.get(key);
  if (at !== undefined) return Promise.resolve(at);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      const list = seenWaiters.get(key);
      list?.splice(list.indexOf(wake), 1);
      resolve(null);
    }, request.maxMs);
    const wake = (ns: number) => {
      clearTimeout(timer);
      resolve(ns);
    };
    const list = seenWaiters.get(key);
    if (list === undefined) seenWaiters.set(key, [wake]);
    else list.push(wake);
  });
}

/** Identities `${prefix}${n}` placed on a member other than this one (or on `on`), up to `count`; their refs (they are active after this). */
async function grainsElsewhere(prefix: string, count: number, on: string | undefined): Promise<{ refs: GrainRef<GossipBenchGrain>[]; hosts: string[] }> {
  const { cluster } = member();
  const client = cluster.client<GossipBenchGrain>(GOSSIP_BENCH_KIND);
  const refs: GrainRef<GossipBenchGrain>[] = [];
  const hosts: string[] = [];
  for (let n = 0; refs.length < count && n < count * PLACEMENT_TRIES;) {
    const batch = Array.from({ length: Math.min(500, count * PLACEMENT_TRIES - n) }, () => `${prefix}${n++}`);
    const where = await Promise.all(batch.map((id) => client.get(id, { timeout: CALL_TIMEOUT_MS }).where()));
    batch.forEach((id, i) => {
      const host = where[i]!;
      if (refs.length < count && host !== cluster.memberId && (on === undefined || host === on)) {
        refs.push(client.get(id, { timeout: CALL_TIMEOUT_MS }));
        hosts.push(host);
      }
    });
  }
  if (refs.length < count) throw new Error(`found ${refs.length} of ${count} grains placed ${on === undefined ? 'elsewhere' : `on ${on}`}`);
  return { refs, hosts };
}

let rttTarget: { ref: GrainRef<GossipBenchGrain>; host: string } | undefined;

async function rtt(request: RttRequest): Promise<RttReply> {
  if (rttTarget === undefined) {
    const { refs, hosts } = await grainsElsewhere(`rtt.${member().cluster.memberId}.`, 1, undefined);
    rttTarget = { ref: refs[0]!, host: hosts[0]! };
  }
  const { ref, host } = rttTarget;
  const latenciesUs: number[] = [];
  for (let i = 0; i < request.warmup + request.calls; i++) {
    const t0 = hrNow();
    const answer = await ref.ping(i);
    const t1 = hrNow();
    if (answer !== i + 1) throw new Error(`ping(${i}) answered ${answer}`);
    if (i >= request.warmup) latenciesUs.push((t1 - t0) / 1e3);
  }
  return { target: host, latenciesUs };
}

// Load (the remote-call scenario) ------------------------------------------------------------

let loadRefs: GrainRef<GossipBenchGrain>[] = [];

async function loadPrepare(request: LoadPrepareRequest): Promise<number> {
  loadRefs = (await grainsElsewhere(request.prefix, request.callers, request.on)).refs;
  return loadRefs.length;
}

interface RoundState {
  readonly untilMs: number;
  calls: number;
  failed: number;
  lastError: string | null;
}

// NOTE: one loop function, so the call site stays monomorphic.
async function loadLoop(state: RoundState, ref: GrainRef<GossipBenchGrain>): Promise<void> {
  let i = 0;
  while (performance.now() < state.untilMs) {
    try {
      const answer = await ref.ping(i);
      if (answer !== i + 1) throw new Error(`ping(${i}) answered ${answer}`);
      state.calls++;
    } catch (error) {
      state.failed++;
      state.lastError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      // A failure: do not spin.
      await sleep(5);
    }
    i++;
  }
}

async function loadRound(request: LoadRoundRequest): Promise<LoadRoundReply> {
  if (loadRefs.length === 0) throw new Error('loadPrepare first');
  const state: RoundState = { untilMs: performance.now() + request.ms, calls: 0, failed: 0, lastError: null };
  const startNs = hrNow();
  await Promise.all(loadRefs.map((ref) => loadLoop(state, ref)));
  return { startNs, endNs: hrNow(), calls: state.calls, failed: state.failed, lastError: state.lastError };
}

const handlers = {
  stats,
  cpu: () => cpuMicros(),
  cpuUsage: () => process.cpuUsage(),
  gossipReady: (arg: unknown) => gossipReady(arg as GossipReadyRequest),
  spreadSet: (arg: unknown) => spreadSet(arg as SpreadSetRequest),
  spreadSeen: (arg: unknown) => spreadSeen(arg as SpreadSeenRequest),
  rtt: (arg: unknown) => rtt(arg as RttRequest),
  loadPrepare: (arg: unknown) => loadPrepare(arg as LoadPrepareRequest),
  loadRound: (arg: unknown) => loadRound(arg as LoadRoundRequest),
};

try {
  running = await startMember(JSON.parse(process.argv[2] ?? '') as GossipMemberConfig);
  serveParent(running.cluster.remoteAddress, handlers, () => running!.cluster.shutdown());
} catch (error) {
  reportStartFailure(error);
}
