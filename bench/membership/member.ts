/**
 * A member of the membership scenarios (join, drain, rolling): a separate process, forked from
 * dist/ by the orchestrator (bench/membership/scenarios.ts, through
 * bench/remote/child-process.ts), that hosts the `member-grain` kind and serves it over gRPC on
 * 127.0.0.1 at the port it is given, with RedisIdentityLookup (fast lease) and either
 * ConsulProvider (against the orchestrator's Consul test agent, provider defaults) or
 * StaticProvider (the join scenario's baseline). Without a port it is a client-only member
 * (hosts nothing): the rolling restart's load generator.
 *
 * It reports ready once `cluster.whenReady()` resolved and it knows `expectMembers` hosting
 * members; `timeline` then says when (process.hrtime) it reached each point of its start.
 *
 * Requests (bench/membership/protocol.ts): timeline, stats, cpu, touchAll, probeJoin,
 * waitMembers, leave (graceful `cluster.shutdown()`, timed here), loadStart, loadStop,
 * loadReport; `stop` shuts down (if `leave` did not) and exits. Exits when its parent goes away.
 *
 *   node dist/bench/membership/member.js '<MembershipMemberConfig as JSON>'
 */
import { performance } from 'node:perf_hooks';
import type { Cluster, GrainRef } from 'nestjs-grains';
import { cpuMicros, reportStartFailure, serveParent } from '../remote/child-process.js';
import { describeError, memberHealth, type RunningMember } from '../support/member-child.js';
import { loadRuntime, SilentLogger } from '../support/runtime.js';
import { hrNow, pollUntil, sleep } from '../support/timing.js';
import { hooks, MEMBER_KIND, MemberGrain, type Whereabouts } from './grain.js';
import type {
  LeaveReply,
  LoadReport,
  LoadStartRequest,
  MemberStats,
  MemberView,
  MembershipMemberConfig,
  Phase,
  PhaseFigures,
  ProbeJoinReply,
  ProbeJoinRequest,
  Timeline,
  TouchAllReply,
  TouchAllRequest,
  WaitMembersRequest,
} from './protocol.js';

// NOTE: static imports are evaluated before this line; they are light (nestjs-grains is loaded later, by loadRuntime).
const mainNs = hrNow();

const READY_TIMEOUT_MS = 15_000;
/** Calls of the probe and of the load: longer than any pause a graceful leave may cause. */
const CALL_TIMEOUT_MS = 5_000;

interface Running extends RunningMember<MembershipMemberConfig> {
  readonly timeline: Timeline;
}

let running: Running | undefined;

async function startMember(config: MembershipMemberConfig): Promise<Running> {
  const { Cluster, ConsulProvider, RedisIdentityLookup, StaticProvider } = await loadRuntime();
  const runtimeNs = hrNow();
  const logger = new SilentLogger();
  const provider =
    config.provider.type === 'consul'
      ? new ConsulProvider({ url: config.provider.url })
      : // NOTE: startupGrace 0: the list names joiners not started yet, so it is never all confirmed; and a grace timer that fires a
        // millisecond early by Date.now() leaves the membership incomplete for good (seen: 2 of 20 members never ready).
        new StaticProvider({ members: config.provider.members, probeInterval: config.provider.probeIntervalMs, startupGrace: 0 });
  const cluster: Cluster = new Cluster({
    clusterName: config.clusterName,
    logger,
    provider,
    identityLookup: new RedisIdentityLookup({ url: config.redisUrl, lease: 'fast', placement: config.placement }),
    ...(config.port === undefined ? {} : { remote: { host: '127.0.0.1', port: config.port } }),
  });
  if (config.port !== undefined) cluster.registerKind({ name: MEMBER_KIND, grainClass: MemberGrain, create: (ctx) => new MemberGrain(ctx) });
  await cluster.start();
  const startedNs = hrNow();
  if (config.port !== undefined && cluster.remoteAddress !== `127.0.0.1:${config.port}`)
    throw new Error(`${config.name} listens on ${cluster.remoteAddress}, not 127.0.0.1:${config.port}`);
  await cluster.whenReady(READY_TIMEOUT_MS);
  // Bounded: the other hosting members (their handshakes, or their Consul registrations).
  await pollUntil(
    () => hosting(cluster).length >= config.expectMembers,
    READY_TIMEOUT_MS,
    5,
    () => `${config.name} knows ${hosting(cluster).length} of ${config.expectMembers} hosting members after ${READY_TIMEOUT_MS} ms`,
  );
  return { config, cluster, logger, timeline: { mainNs, runtimeNs, startedNs, readyNs: hrNow() } };
}

function member(): Running {
  if (running === undefined) throw new Error('not started');
  return running;
}

/** The members hosting the grain kind, as this member knows them now. */
function hosting(cluster: Cluster): MemberView[] {
  return cluster
    .members()
    .filter((m) => m.address !== '' && m.kinds.includes(MEMBER_KIND))
    .map((m) => ({ id: m.id, incarnation: m.incarnation, address: m.address }));
}

function stats(): MemberStats {
  const { cluster, logger } = member();
  const s = cluster.stats();
  return {
    memberId: cluster.memberId,
    incarnation: cluster.incarnation,
    members: hosting(cluster),
    activations: s.activations,
    activated: s.activated,
    deactivated: s.deactivated,
    hooksActivated: hooks.activated,
    hooksDeactivated: hooks.deactivated,
    ...memberHealth(logger),
  };
}

async function touchAll(request: TouchAllRequest): Promise<TouchAllReply> {
  const { cluster } = member();
  const startNs = hrNow();
  const answers = await Promise.all(request.ids.map((id) => cluster.request(MEMBER_KIND, id, 'where', [], { timeout: 30_000 }) as Promise<Whereabouts>));
  const endNs = hrNow();
  const byMember: Record<string, number> = {};
  for (const a of answers) byMember[a.memberId] = (byMember[a.memberId] ?? 0) + 1;
  return { startNs, endNs, byMember };
}

async function probeJoin(request: ProbeJoinRequest): Promise<ProbeJoinReply> {
  const { cluster } = member();
  const { target, notIncarnation, prefix, tickMs, batch, maxMs } = request;
  const until = performance.now() + maxMs;
  const errors: Record<string, number> = {};
  let lastError: string | null = null;
  let knownAtNs: number | null = null;
  let calls = 0;
  let n = 0;
  while (performance.now() < until) {
    const tick = performance.now();
    if (knownAtNs === null && cluster.members().some((m) => m.id === target && m.incarnation !== notIncarnation && m.kinds.includes(MEMBER_KIND))) {
      knownAtNs = hrNow();
    }
    if (knownAtNs !== null) {
      const attempts = Array.from({ length: batch }, () => {
        calls++;
        return (cluster.request(MEMBER_KIND, `${prefix}${n++}`, 'where', [], { timeout: CALL_TIMEOUT_MS }) as Promise<Whereabouts>).then(
          (answer) => ({ answer, atNs: hrNow() }),
          (error: unknown) => {
            const { name, message } = describeError(error);
            errors[name] = (errors[name] ?? 0) + 1;
            lastError = `${name}: ${message}`;
            return undefined;
          },
        );
      });
      const hits = (await Promise.all(attempts)).filter((r) => r !== undefined && r.answer.memberId === target);
      if (hits.length > 0) {
        const first = hits.reduce((a, b) => (a!.atNs <= b!.atNs ? a : b))!;
        return { knownAtNs, servedAtNs: first.atNs, calls, errors, lastError, answer: first.answer };
      }
    }
    const left = tickMs - (performance.now() - tick);
    if (left > 0) await sleep(left);
  }
  return { knownAtNs, servedAtNs: null, calls, errors, lastError, answer: null };
}

async function waitMembers(request: WaitMembersRequest): Promise<number> {
  const { cluster } = member();
  const ok = () => {
    const list = hosting(cluster);
    const p = request.present;
    if (
      p !== undefined &&
      !list.some((m) => m.id === p.id && (p.incarnation === undefined || m.incarnation === p.incarnation) && m.incarnation !== p.notIncarnation)
    )
      return false;
    if (request.absent !== undefined && list.some((m) => m.id === request.absent)) return false;
    return request.count === undefined || list.length === request.count;
  };
  return pollUntil(
    ok,
    request.maxMs,
    2,
    () => `members not as wanted after ${request.maxMs} ms: ${JSON.stringify(request)}; known: ${JSON.stringify(hosting(cluster))}`,
  );
}

async function leave(): Promise<LeaveReply> {
  const { cluster } = member();
  const activationsBefore = cluster.stats().activations;
  const hooksBefore = hooks.deactivated;
  const startNs = hrNow();
  await cluster.shutdown();
  const endNs = hrNow();
  return {
    startNs,
    lastHookNs: hooks.lastDeactivatedNs > startNs ? hooks.lastDeactivatedNs : 0,
    endNs,
    activationsBefore,
    hooksDeactivated: hooks.deactivated - hooksBefore,
    activationsAfter: cluster.stats().activations,
  };
}

// Load (the client-only member of the rolling restart) ----------------------------------------

/** A growable column of numbers. */
class Column {
  private data = new Float64Array(1 << 16);
  length = 0;
  push(value: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = value;
  }
  at(i: number): number {
    return this.data[i]!;
  }
}

interface Load {
  readonly startNs: number;
  endNs: number;
  stopping: boolean;
  loops: Promise<void>[];
  /** Per successful call: when it ended (ms after startNs) and how long it took (ms). */
  readonly endMs: Column;
  readonly latencyMs: Column;
  /** Per failed call: when it ended (ms after startNs). */
  readonly failedAtMs: number[];
  readonly errors: Record<string, number>;
  readonly firstFailures: Array<[number, string]>;
}

let load: Load | undefined;

// NOTE: one loop function, so the call site stays monomorphic.
async function loadLoop(state: Load, refs: readonly GrainRef<MemberGrain>[]): Promise<void> {
  let i = 0;
  while (!state.stopping) {
    const ref = refs[i++ % refs.length]!;
    const t0 = hrNow();
    let problem: string | undefined;
    let name = '';
    try {
      const answer = await ref.touch(0);
      if (answer !== 1) {
        name = 'WrongAnswer';
        problem = `touch(0) answered ${answer}`;
      }
    } catch (error) {
      const d = describeError(error);
      name = d.name;
      problem = d.message;
    }
    const t1 = hrNow();
    const atMs = (t1 - state.startNs) / 1e6;
    if (problem === undefined) {
      state.endMs.push(atMs);
      state.latencyMs.push((t1 - t0) / 1e6);
    } else {
      state.failedAtMs.push(atMs);
      state.errors[name] = (state.errors[name] ?? 0) + 1;
      if (state.firstFailures.length < 10) state.firstFailures.push([Math.round(atMs), `${name}: ${problem}`]);
      // A failure: do not spin.
      await sleep(5);
    }
  }
}

function loadStart(request: LoadStartRequest): number {
  const { cluster } = member();
  if (load !== undefined) throw new Error('load already started');
  const client = cluster.client<MemberGrain>(MEMBER_KIND);
  const state: Load = {
    startNs: hrNow(),
    endNs: 0,
    stopping: false,
    loops: [],
    endMs: new Column(),
    latencyMs: new Column(),
    failedAtMs: [],
    errors: {},
    firstFailures: [],
  };
  for (let j = 0; j < request.callers; j++) {
    const refs = Array.from({ length: request.perCaller }, (_, i) => client.get(`${request.prefix}${j}.${i}`, { timeout: CALL_TIMEOUT_MS }));
    state.loops.push(loadLoop(state, refs));
  }
  load = state;
  return state.startNs;
}

async function loadStop(): Promise<number> {
  const state = load;
  if (state === undefined) throw new Error('no load');
  state.stopping = true;
  await Promise.all(state.loops);
  state.endNs = hrNow();
  return state.endNs;
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function loadReport(phases: readonly Phase[]): LoadReport {
  const state = load;
  if (state === undefined) throw new Error('no load');
  const figures: PhaseFigures[] = phases.map((phase) => {
    const from = (phase.fromNs - state.startNs) / 1e6;
    const to = (phase.toNs - state.startNs) / 1e6;
    const latencies: number[] = [];
    for (let i = 0; i < state.endMs.length; i++) {
      const at = state.endMs.at(i);
      if (at >= from && at < to) latencies.push(state.latencyMs.at(i));
    }
    const sorted = Float64Array.from(latencies).sort();
    const failed = state.failedAtMs.filter((at) => at >= from && at < to).length;
    const seconds = (to - from) / 1000;
    return {
      name: phase.name,
      seconds,
      ok: sorted.length,
      failed,
      callsPerS: sorted.length / seconds,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      maxMs: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
    };
  });
  const endMs = ((state.endNs === 0 ? hrNow() : state.endNs) - state.startNs) / 1e6;
  const okPer100Ms = new Array<number>(Math.ceil(endMs / 100) + 1).fill(0);
  for (let i = 0; i < state.endMs.length; i++) okPer100Ms[Math.floor(state.endMs.at(i) / 100)]!++;
  return {
    startNs: state.startNs,
    endNs: state.endNs,
    ok: state.endMs.length,
    failed: state.failedAtMs.length,
    phases: figures,
    errors: state.errors,
    firstFailures: state.firstFailures,
    okPer100Ms,
  };
}

const handlers = {
  timeline: () => member().timeline,
  stats,
  cpu: () => cpuMicros(),
  touchAll: (arg: unknown) => touchAll(arg as TouchAllRequest),
  probeJoin: (arg: unknown) => probeJoin(arg as ProbeJoinRequest),
  waitMembers: (arg: unknown) => waitMembers(arg as WaitMembersRequest),
  leave,
  loadStart: (arg: unknown) => loadStart(arg as LoadStartRequest),
  loadStop,
  loadReport: (arg: unknown) => loadReport(arg as Phase[]),
};

const stop = async () => {
  if (load !== undefined && !load.stopping) await loadStop();
  await running?.cluster.shutdown();
};

try {
  running = await startMember(JSON.parse(process.argv[2] ?? '') as MembershipMemberConfig);
  serveParent(running.cluster.remoteAddress || 'client-only', handlers, stop);
} catch (error) {
  reportStartFailure(error);
}
