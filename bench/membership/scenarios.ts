/**
 * The membership scenarios (group `membership`), driven from the orchestrator process
 * (bench/run.ts). Every member is a process (dist/bench/membership/member.js) with
 * RedisIdentityLookup (fast lease) on a redis-server started here, and ConsulProvider (its
 * defaults) against a Consul test agent (test/support/consul-agent.ts) run in this process:
 *
 * - `join`: a member process spawned next to an existing 2-member cluster; the time from the
 *   spawn until a call made on an existing member is served by a grain activated on the new
 *   one. Beside, in the same run and interleaved: a bare `node -e` start to its first line
 *   (the process start cost), and the same join with StaticProvider (the provider's lower
 *   bound: the members list the new address in advance and dial it every 50 ms).
 * - `drain`: graceful leave (`cluster.shutdown()` over the control channel) of a member
 *   hosting N = 0, 100, 1000, 5000 grains, until shutdown resolved and the process exited.
 *   Baseline: the same member's leave with 0 grains; per-grain cost, and the same grains'
 *   activation cost in the same run.
 * - `rolling`: 3 members restarted one after the other (leave, start on the same port, wait
 *   until the load generator sees the new incarnation) under continuous load from a
 *   client-only member: failed calls (must be 0: FAIL is printed otherwise, never thrown) and
 *   calls/s during the restart beside calls/s before it.
 *
 * Processes: one redis-server (support/redis-server.ts), members forked through
 * remote/child-process.ts (SIGKILLed, by pid, if this process exits first). All are stopped at
 * the end and on failure.
 */
import { spawn } from 'node:child_process';
import { fmtNum, fmtRate, fmtRatio, table } from '../support/format.js';
import { type GroupOutput, GroupResults, type GroupScenarioResult, reportHead } from '../support/group-results.js';
import { freePorts, MemberProcess, problemsOf } from '../support/member-process.js';
import { type BenchRedisServer, startRedisServer } from '../support/redis-server.js';
import { median, pairedRatios, type Summary, summarize } from '../support/stats.js';
import { hrNow, msBetween, sleep } from '../support/timing.js';
import { builtScript } from '../remote/child-process.js';
import type {
  LeaveReply,
  LoadReport,
  MemberStats,
  MembershipMemberConfig,
  Phase,
  ProbeJoinReply,
  Timeline,
  TouchAllReply,
  WaitMembersRequest,
} from './protocol.js';

export const MEMBERSHIP_SCENARIOS = ['join', 'drain', 'rolling'] as const;
export type MembershipScenarioId = (typeof MEMBERSHIP_SCENARIOS)[number];

export interface MembershipGroupOptions {
  readonly quick: boolean;
}

/** Join: repetitions (each: a bare node start, a static join, a Consul join, in rotating order). */
const JOIN_REPS = 8;
const JOIN_REPS_QUICK = 2;
/** Join probe: every tick, once the new member is listed, this many calls to new identities (rendezvous: ~1/3 land on it). */
const PROBE_TICK_MS = 2;
const PROBE_BATCH = 4;
const PROBE_MAX_MS = 15_000;
/** The static baseline's probe interval (StaticProvider's default is 500 ms). */
const STATIC_PROBE_INTERVAL_MS = 50;
/** Drain: grains on the leaving member, and repetitions of each (rotating order). */
const DRAIN_GRAINS = [0, 100, 1_000, 5_000];
const DRAIN_GRAINS_QUICK = [0, 100, 1_000];
const DRAIN_REPS = 4;
const DRAIN_REPS_QUICK = 1;
/** Of the leaving member's grains, how many an existing member calls first (so a caller holds streams and cache entries). */
const DRAIN_CALLED_BY_OTHERS = 100;
/** Rolling: load callers, grains per caller, and the windows around the restart. */
const LOAD_CALLERS = 100;
const LOAD_GRAINS_PER_CALLER = 10;
const ROLLING_WARMUP_MS = 3_000;
const ROLLING_BEFORE_MS = 4_000;
const ROLLING_AFTER_MS = 3_000;
const ROLLING_QUICK_FACTOR = 0.5;
const WAIT_MEMBERS_MS = 15_000;
const LEAVE_TIMEOUT_MS = 60_000;

/** One member process (bench/membership/member.ts). */
class MembershipMember extends MemberProcess<MembershipMemberConfig, MemberStats> {
  protected readonly script = () => builtScript('./member.js', import.meta.url);

  /** Forks the process; resolves, once it reported ready, with the hrtime just before the fork and the member's timeline. */
  async start(): Promise<{ spawnNs: number; timeline: Timeline }> {
    const spawnNs = hrNow();
    await this.fork();
    return { spawnNs, timeline: await this.request<Timeline>('timeline') };
  }

  waitMembers(request: WaitMembersRequest): Promise<number> {
    return this.request<number>('waitMembers', request, request.maxMs + 5_000);
  }

  /** Graceful leave (timed in the member), then the process exits; `exitNs`: when this process saw it exit. */
  async leave(): Promise<{ requestNs: number; reply: LeaveReply; exitNs: number }> {
    const requestNs = hrNow();
    const reply = await this.request<LeaveReply>('leave', undefined, LEAVE_TIMEOUT_MS);
    await this.stop();
    return { requestNs, reply, exitNs: hrNow() };
  }
}

/** Bare `node -e`: from the spawn until its first line arrives here. */
function nodeStart(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = hrNow();
    const child = spawn(process.execPath, ['-e', 'process.stdout.write("up\\n")'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let firstNs = 0;
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.stdout.once('data', () => (firstNs = hrNow()));
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0 && firstNs > 0) resolve(msBetween(t0, firstNs));
      else reject(new Error(`node -e exited with code ${code} before its first line`));
    });
  });
}

// Results -----------------------------------------------------------------------------------

export interface MembershipScenarioResult extends GroupScenarioResult<MembershipScenarioId, MembershipGroupOptions> {
  readonly data: unknown;
}

// join ----------------------------------------------------------------------------------------

interface JoinSample {
  readonly rep: number;
  readonly provider: 'consul' | 'static';
  /** spawn → first call served on the new member (ms). */
  readonly joinMs: number;
  /** spawn → each point of the new member's start (ms). */
  readonly mainMs: number;
  readonly runtimeMs: number;
  readonly startedMs: number;
  readonly readyMs: number;
  /** spawn → the existing member lists the new one (ms). */
  readonly knownMs: number;
  readonly probeCalls: number;
  readonly probeErrors: Readonly<Record<string, number>>;
  /** The new member's graceful leave afterwards (ms, in the member). */
  readonly leaveMs: number;
}

class JoinCluster {
  constructor(
    readonly provider: 'consul' | 'static',
    readonly existing: readonly MembershipMember[],
    /** The joining member of each repetition (each on its own port: a new member id every time). */
    private readonly joinerOf: (rep: number) => MembershipMember,
  ) {}

  async once(rep: number): Promise<JoinSample> {
    const [a] = this.existing;
    const joiner = this.joinerOf(rep);
    const probe = a!.request<ProbeJoinReply>(
      'probeJoin',
      {
        target: joiner.id,
        notIncarnation: null,
        prefix: `join-${this.provider}-${rep}.`,
        tickMs: PROBE_TICK_MS,
        batch: PROBE_BATCH,
        maxMs: PROBE_MAX_MS,
      },
      PROBE_MAX_MS + 10_000,
    );
    let started: { spawnNs: number; timeline: Timeline };
    let reply: ProbeJoinReply;
    try {
      [started, reply] = await Promise.all([joiner.start(), probe]);
    } catch (error) {
      joiner.kill();
      throw error;
    }
    if (reply.servedAtNs === null || reply.knownAtNs === null)
      throw new Error(`join (${this.provider}) rep ${rep}: no call was served on ${joiner.id} within ${PROBE_MAX_MS} ms (last error: ${reply.lastError})`);
    const { spawnNs, timeline } = started;
    const left = await joiner.leave();
    if (this.provider === 'consul') {
      // The next repetition starts from a 2-member cluster. (StaticProvider never removes a listed member; one that left is out of placement.)
      await Promise.all(this.existing.map((m) => m.waitMembers({ absent: joiner.id, maxMs: WAIT_MEMBERS_MS })));
    }
    return {
      rep,
      provider: this.provider,
      joinMs: msBetween(spawnNs, reply.servedAtNs),
      mainMs: msBetween(spawnNs, timeline.mainNs),
      runtimeMs: msBetween(spawnNs, timeline.runtimeNs),
      startedMs: msBetween(spawnNs, timeline.startedNs),
      readyMs: msBetween(spawnNs, timeline.readyNs),
      knownMs: msBetween(spawnNs, reply.knownAtNs),
      probeCalls: reply.calls,
      probeErrors: reply.errors,
      leaveMs: msBetween(left.reply.startNs, left.reply.endNs),
    };
  }
}

interface JoinData {
  readonly reps: number;
  readonly nodeStartMs: Summary;
  readonly consul: Record<string, Summary>;
  readonly static: Record<string, Summary>;
  readonly ratios: ReadonlyArray<{ readonly label: string; readonly value: number; readonly paired: Summary }>;
  readonly samples: readonly JoinSample[];
  readonly loggedProblems: number;
}

async function runJoin(
  consulUrl: string,
  redisUrl: string,
  options: MembershipGroupOptions,
  cleanup: MembershipMember[],
): Promise<JoinData & { consulPair: MembershipMember[] }> {
  const reps = options.quick ? JOIN_REPS_QUICK : JOIN_REPS;
  // NOTE: every joiner gets its own port. A member that left gracefully and comes back at the same address is not placed on again by
  // StaticProvider members that do not call its existing grains: they stop dialling once every listed address was confirmed, and
  // the leaving member is out of their placement (measured: no call served on it within 15 s). Consul lists the new incarnation.
  const [pa, pb, sa, sb, ...joinPorts] = await freePorts(4 + 2 * reps);
  const consulJoinPorts = joinPorts.slice(0, reps);
  const staticJoinPorts = joinPorts.slice(reps);
  const member = (name: string, clusterName: string, port: number, provider: MembershipMemberConfig['provider'], expectMembers: number) =>
    new MembershipMember({ name, clusterName, provider, redisUrl, placement: 'rendezvous', port, expectMembers });
  const consul = { type: 'consul' as const, url: consulUrl };
  const staticList = { type: 'static' as const, members: [sa, sb, ...staticJoinPorts].map((p) => `127.0.0.1:${p}`), probeIntervalMs: STATIC_PROBE_INTERVAL_MS };
  const consulPair = [member('consul member A', 'bench-membership', pa!, consul, 2), member('consul member B', 'bench-membership', pb!, consul, 2)];
  const staticPair = [member('static member A', 'bench-join-static', sa!, staticList, 2), member('static member B', 'bench-join-static', sb!, staticList, 2)];
  cleanup.push(...consulPair, ...staticPair);
  await Promise.all([...consulPair, ...staticPair].map((m) => m.start()));
  const joinerOf = (provider: 'consul' | 'static') => (rep: number) => {
    const joiner =
      provider === 'consul'
        ? member(`consul member C${rep + 1} (joining)`, 'bench-membership', consulJoinPorts[rep]!, consul, 3)
        : member(`static member C${rep + 1} (joining)`, 'bench-join-static', staticJoinPorts[rep]!, staticList, 3);
    cleanup.push(joiner);
    return joiner;
  };
  const joiners = [new JoinCluster('consul', consulPair, joinerOf('consul')), new JoinCluster('static', staticPair, joinerOf('static'))];
  const samples: JoinSample[] = [];
  const nodeMs: number[] = [];
  const subjects = ['node', 'static', 'consul'] as const;
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < subjects.length; k++) {
      const subject = subjects[(k + r) % subjects.length]!;
      if (subject === 'node') nodeMs.push(await nodeStart());
      else samples.push(await joiners.find((j) => j.provider === subject)!.once(r));
    }
    const last = samples.slice(-2);
    process.stdout.write(
      `[join] rep ${r + 1}/${reps}: node -e ${fmtNum(nodeMs.at(-1)!, 0)} ms, ${last.map((s) => `${s.provider} ${fmtNum(s.joinMs, 0)} ms`).join(', ')}\n`,
    );
  }
  const stats = await Promise.all([...consulPair, ...staticPair].map((m) => m.stats()));
  await Promise.allSettled(staticPair.map((m) => m.stop()));
  const figures = (provider: 'consul' | 'static') => {
    const s = samples.filter((x) => x.provider === provider);
    const keys = ['mainMs', 'runtimeMs', 'startedMs', 'readyMs', 'knownMs', 'joinMs', 'leaveMs', 'probeCalls'] as const;
    return Object.fromEntries(keys.map((k) => [k, summarize(s.map((x) => x[k]))]));
  };
  const consulJoin = samples.filter((s) => s.provider === 'consul').map((s) => s.joinMs);
  const staticJoin = samples.filter((s) => s.provider === 'static').map((s) => s.joinMs);
  const ratio = (label: string, num: number[], den: number[]) => ({ label, value: median(num) / median(den), paired: summarize(pairedRatios(num, den)) });
  return {
    reps,
    nodeStartMs: summarize(nodeMs),
    consul: figures('consul'),
    static: figures('static'),
    ratios: [
      ratio('join, Consul / join, StaticProvider', consulJoin, staticJoin),
      ratio('join, Consul / bare node start', consulJoin, nodeMs),
      ratio('join, StaticProvider / bare node start', staticJoin, nodeMs),
    ],
    samples,
    loggedProblems: problemsOf(stats),
    consulPair,
  };
}

function reportJoin(result: MembershipScenarioResult): string[] {
  const d = result.data as JoinData;
  const out = reportHead(result);
  const row = (label: string, key: string) => {
    const c = d.consul[key]!;
    const s = d.static[key]!;
    return [label, fmtNum(c.median, 0), `${fmtNum(c.min, 0)} … ${fmtNum(c.max, 0)}`, fmtNum(s.median, 0), `${fmtNum(s.min, 0)} … ${fmtNum(s.max, 0)}`];
  };
  out.push(
    table(
      [
        ['ms after the spawn (medians over reps)', 'Consul', 'min … max', 'StaticProvider', 'min … max'],
        row('new member runs its script (node started)', 'mainMs'),
        row('nestjs-grains loaded', 'runtimeMs'),
        row('cluster.start() resolved', 'startedMs'),
        row('ready (whenReady + knows 3 members)', 'readyMs'),
        row('existing member A lists it', 'knownMs'),
        row('JOIN: first call from A served on it', 'joinMs'),
        ['bare `node -e` start → first line', fmtNum(d.nodeStartMs.median, 0), `${fmtNum(d.nodeStartMs.min, 0)} … ${fmtNum(d.nodeStartMs.max, 0)}`, '', ''],
        row('(its graceful leave afterwards, ms)', 'leaveMs'),
        row('(probe calls from A, count)', 'probeCalls'),
      ],
      ['left', 'right', 'right', 'right', 'right'],
    ),
  );
  out.push('');
  out.push(
    table(
      [['ratio', 'median', 'paired min … max'], ...d.ratios.map((r) => [r.label, fmtRatio(r.value), `${fmtRatio(r.paired.min)} … ${fmtRatio(r.paired.max)}`])],
      ['left', 'right', 'right'],
    ),
  );
  const errors = d.samples.reduce((n, s) => n + Object.values(s.probeErrors).reduce((a, b) => a + b, 0), 0);
  out.push('');
  out.push(`   probe calls that failed: ${errors}; warnings logged by the existing members: ${d.loggedProblems}`);
  return out;
}

// drain ---------------------------------------------------------------------------------------

interface DrainSample {
  readonly rep: number;
  readonly grains: number;
  /** D activating its N grains (all at once), ms. */
  readonly activateMs: number;
  /** cluster.shutdown(), in the member (ms). */
  readonly shutdownMs: number;
  /** shutdown start → the last onGrainDeactivate hook (ms; 0 without grains). */
  readonly hooksDoneMs: number;
  /** leave request sent → process exit seen here (ms). */
  readonly toExitMs: number;
  /** leave request → member A no longer lists it (ms). */
  readonly goneAtAMs: number;
  /** After the exit: member A calling 5 of its former grains (new activations elsewhere), ms. */
  readonly reactivateMs: number | null;
  readonly hooksDeactivated: number;
}

interface DrainData {
  readonly reps: number;
  readonly byGrains: ReadonlyArray<{
    readonly grains: number;
    readonly shutdownMs: Summary;
    readonly toExitMs: Summary;
    readonly hooksDoneMs: Summary;
    readonly goneAtAMs: Summary;
    readonly activateMs: Summary;
    readonly reactivateMs: Summary;
    /** median shutdown(N) / median shutdown(0). */
    readonly vsEmpty: number;
    /** (median shutdown(N) − median shutdown(0)) / N, µs. */
    readonly perGrainUs: number | null;
    /** median activation of the N grains / N, µs. */
    readonly activatePerGrainUs: number | null;
  }>;
  readonly samples: readonly DrainSample[];
  readonly checks: readonly string[];
  readonly loggedProblems: number;
}

async function runDrain(
  pair: readonly MembershipMember[],
  consulUrl: string,
  redisUrl: string,
  options: MembershipGroupOptions,
  cleanup: MembershipMember[],
): Promise<DrainData> {
  const reps = options.quick ? DRAIN_REPS_QUICK : DRAIN_REPS;
  const sizes = options.quick ? DRAIN_GRAINS_QUICK : DRAIN_GRAINS;
  const [a] = pair;
  const [port] = await freePorts(1);
  const samples: DrainSample[] = [];
  let hookMismatches = 0;
  let misplaced = 0;
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < sizes.length; k++) {
      const grains = sizes[(k + r) % sizes.length]!;
      const d = new MembershipMember({
        name: `member D (leaving, ${grains} grains)`,
        clusterName: 'bench-membership',
        provider: { type: 'consul', url: consulUrl },
        redisUrl,
        placement: 'prefer-local',
        port: port!,
        expectMembers: 3,
      });
      cleanup.push(d);
      await d.start();
      const dStats = await d.stats();
      await a!.waitMembers({ present: { id: d.id, incarnation: dStats.incarnation }, maxMs: WAIT_MEMBERS_MS });
      const ids = Array.from({ length: grains }, (_, i) => `drain-${r}-${grains}.${i}`);
      const activated = await d.request<TouchAllReply>('touchAll', { ids }, 60_000);
      if (grains > 0 && activated.byMember[d.id] !== grains) misplaced++;
      // Callers elsewhere: A calls some of them (its actor cache points at D, it has a stream to D).
      await a!.request<TouchAllReply>('touchAll', { ids: ids.slice(0, DRAIN_CALLED_BY_OTHERS) }, 60_000);
      const left = await d.leave();
      if (left.reply.hooksDeactivated !== grains || left.reply.activationsBefore !== grains || left.reply.activationsAfter !== 0) hookMismatches++;
      await a!.waitMembers({ absent: d.id, maxMs: WAIT_MEMBERS_MS });
      const goneNs = hrNow();
      let reactivateMs: number | null = null;
      if (grains > 0) {
        const sample = ids.slice(0, 5);
        const again = await a!.request<TouchAllReply>('touchAll', { ids: sample }, 30_000);
        if ((again.byMember[d.id] ?? 0) > 0) misplaced++;
        reactivateMs = msBetween(again.startNs, again.endNs);
      }
      samples.push({
        rep: r,
        grains,
        activateMs: msBetween(activated.startNs, activated.endNs),
        shutdownMs: msBetween(left.reply.startNs, left.reply.endNs),
        hooksDoneMs: left.reply.lastHookNs === 0 ? 0 : msBetween(left.reply.startNs, left.reply.lastHookNs),
        toExitMs: msBetween(left.requestNs, left.exitNs),
        goneAtAMs: msBetween(left.requestNs, goneNs),
        reactivateMs,
        hooksDeactivated: left.reply.hooksDeactivated,
      });
      const s = samples.at(-1)!;
      process.stdout.write(
        `[drain] rep ${r + 1}/${reps}, ${grains} grains: activate ${fmtNum(s.activateMs, 0)} ms, shutdown ${fmtNum(s.shutdownMs, 0)} ms, exit after ${fmtNum(s.toExitMs, 0)} ms\n`,
      );
    }
  }
  const stats = await Promise.all(pair.map((m) => m.stats()));
  const of = (grains: number) => samples.filter((s) => s.grains === grains);
  const empty = median(of(0).map((s) => s.shutdownMs));
  const byGrains = sizes.map((grains) => {
    const s = of(grains);
    const shutdownMs = summarize(s.map((x) => x.shutdownMs));
    const activateMs = summarize(s.map((x) => x.activateMs));
    return {
      grains,
      shutdownMs,
      toExitMs: summarize(s.map((x) => x.toExitMs)),
      hooksDoneMs: summarize(s.map((x) => x.hooksDoneMs)),
      goneAtAMs: summarize(s.map((x) => x.goneAtAMs)),
      activateMs,
      reactivateMs: summarize(s.flatMap((x) => (x.reactivateMs === null ? [] : [x.reactivateMs]))),
      vsEmpty: shutdownMs.median / empty,
      perGrainUs: grains === 0 ? null : ((shutdownMs.median - empty) * 1000) / grains,
      activatePerGrainUs: grains === 0 ? null : (activateMs.median * 1000) / grains,
    };
  });
  return {
    reps,
    byGrains,
    samples,
    checks: [
      `every leave ran exactly one onGrainDeactivate hook per grain and left no activation: ${hookMismatches === 0 ? 'passed' : `FAILED (${hookMismatches} leaves)`}`,
      `every grain was activated on the leaving member, and after it left its former grains were activated elsewhere at once: ${misplaced === 0 ? 'passed' : `FAILED (${misplaced})`}`,
    ],
    loggedProblems: problemsOf(stats),
  };
}

function reportDrain(result: MembershipScenarioResult): string[] {
  const d = result.data as DrainData;
  const out = reportHead(result);
  const range = (s: Summary) => `${fmtNum(s.min, 0)} … ${fmtNum(s.max, 0)}`;
  out.push(
    table(
      [
        [
          'grains on the leaving member',
          'shutdown() ms',
          'min … max',
          'hooks done ms',
          'to exit ms',
          'gone at A ms',
          'vs 0 grains',
          'µs/grain drained',
          'µs/grain activated',
          'drain/activation',
        ],
        ...d.byGrains.map((g) => [
          String(g.grains),
          fmtNum(g.shutdownMs.median, 0),
          range(g.shutdownMs),
          g.grains === 0 ? '' : fmtNum(g.hooksDoneMs.median, 0),
          fmtNum(g.toExitMs.median, 0),
          fmtNum(g.goneAtAMs.median, 0),
          fmtRatio(g.vsEmpty),
          g.perGrainUs === null ? '(baseline)' : fmtNum(g.perGrainUs, 1),
          g.activatePerGrainUs === null ? '' : fmtNum(g.activatePerGrainUs, 1),
          g.perGrainUs === null || g.activatePerGrainUs === null ? '' : fmtRatio(g.perGrainUs / g.activatePerGrainUs),
        ]),
      ],
      ['right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  out.push('');
  for (const check of d.checks) out.push(`   check: ${check}`);
  out.push(`   warnings logged by the staying members: ${d.loggedProblems}`);
  return out;
}

// rolling -------------------------------------------------------------------------------------

interface RestartStep {
  readonly member: string;
  /** leave request → process exit (ms). */
  readonly leaveMs: number;
  /** spawn of the replacement → it reported ready (ms). */
  readonly startMs: number;
  /** ready → the load generator lists the new incarnation (ms). */
  readonly seenMs: number;
}

interface RollingData {
  readonly load: LoadReport;
  readonly steps: readonly RestartStep[];
  readonly failed: number;
  readonly verdict: 'PASS' | 'FAIL';
  readonly duringVsBefore: number;
  readonly afterVsBefore: number;
  readonly loggedProblems: number;
}

async function runRolling(consulUrl: string, redisUrl: string, options: MembershipGroupOptions, cleanup: MembershipMember[]): Promise<RollingData> {
  const scale = options.quick ? ROLLING_QUICK_FACTOR : 1;
  const ports = await freePorts(3);
  const consul = { type: 'consul' as const, url: consulUrl };
  const configOf = (k: number): MembershipMemberConfig => ({
    name: `rolling member R${k + 1}`,
    clusterName: 'bench-rolling',
    provider: consul,
    redisUrl,
    placement: 'prefer-local',
    port: ports[k]!,
    expectMembers: 3,
  });
  const members = [0, 1, 2].map((k) => new MembershipMember(configOf(k)));
  cleanup.push(...members);
  await Promise.all(members.map((m) => m.start()));
  const loader = new MembershipMember({
    name: 'rolling load (client-only member)',
    clusterName: 'bench-rolling',
    provider: consul,
    redisUrl,
    placement: 'prefer-local',
    expectMembers: 3,
  });
  cleanup.push(loader);
  await loader.start();
  process.stdout.write(
    `[rolling] 3 members and a client-only load member up; load: ${LOAD_CALLERS} callers over ${LOAD_CALLERS * LOAD_GRAINS_PER_CALLER} grains\n`,
  );
  const loadStartNs = await loader.request<number>('loadStart', { prefix: 'rolling.', callers: LOAD_CALLERS, perCaller: LOAD_GRAINS_PER_CALLER });
  await sleep(ROLLING_WARMUP_MS * scale);
  const beforeFromNs = hrNow();
  await sleep(ROLLING_BEFORE_MS * scale);
  const restartFromNs = hrNow();
  const steps: RestartStep[] = [];
  const phases: Phase[] = [];
  for (let k = 0; k < members.length; k++) {
    const old = members[k]!;
    const oldIncarnation = (await old.stats()).incarnation;
    const left = await old.leave();
    const next = new MembershipMember(configOf(k));
    cleanup.push(next);
    members[k] = next;
    const { spawnNs } = await next.start();
    const readyNs = hrNow();
    await loader.waitMembers({ present: { id: next.id, notIncarnation: oldIncarnation }, count: 3, maxMs: WAIT_MEMBERS_MS });
    const seenNs = hrNow();
    // NOTE: split, because the two halves load the machine differently: the leave is the library's work; the start is mostly a
    // node process loading (about a core for a second, on 2 cores shared with the load, 3 members and Redis).
    phases.push({ name: `R${k + 1} leaving (leave request → exit)`, fromNs: left.requestNs, toNs: left.exitNs });
    phases.push({ name: `R${k + 1} starting (exit → seen by the load)`, fromNs: left.exitNs, toNs: seenNs });
    steps.push({ member: old.name, leaveMs: msBetween(left.requestNs, left.exitNs), startMs: msBetween(spawnNs, readyNs), seenMs: msBetween(readyNs, seenNs) });
    const s = steps.at(-1)!;
    process.stdout.write(
      `[rolling] R${k + 1}: leave ${fmtNum(s.leaveMs, 0)} ms, start ${fmtNum(s.startMs, 0)} ms, seen by the load ${fmtNum(s.seenMs, 0)} ms later\n`,
    );
  }
  const restartToNs = hrNow();
  await sleep(ROLLING_AFTER_MS * scale);
  const afterToNs = hrNow();
  await loader.request<number>('loadStop', undefined, 30_000);
  const load = await loader.request<LoadReport>(
    'loadReport',
    [
      { name: 'before the restart', fromNs: beforeFromNs, toNs: restartFromNs },
      { name: 'during the rolling restart', fromNs: restartFromNs, toNs: restartToNs },
      { name: 'after it', fromNs: restartToNs, toNs: afterToNs },
      ...phases,
      { name: 'whole load (warm-up included)', fromNs: loadStartNs, toNs: afterToNs },
    ] satisfies Phase[],
    60_000,
  );
  const stats = await Promise.all([...members, loader].map((m) => m.stats()));
  const [before, during, after] = load.phases;
  return {
    load,
    steps,
    failed: load.failed,
    verdict: load.failed === 0 ? 'PASS' : 'FAIL',
    duringVsBefore: during!.callsPerS / before!.callsPerS,
    afterVsBefore: after!.callsPerS / before!.callsPerS,
    loggedProblems: problemsOf(stats),
  };
}

function reportRolling(result: MembershipScenarioResult): string[] {
  const d = result.data as RollingData;
  const out = reportHead(result);
  out.push(
    `   >>> FAILED CALLS DURING THE ROLLING RESTART: ${d.load.phases[1]!.failed} (whole load: ${d.failed}) — ${d.verdict}${d.failed === 0 ? '' : ' (must be 0)'} <<<`,
  );
  out.push('');
  out.push(
    table(
      [
        ['window', 's', 'calls ok', 'failed', 'calls/s', 'vs before', 'p50 ms', 'p99 ms', 'max ms'],
        ...d.load.phases.map((p) => [
          p.name,
          fmtNum(p.seconds, 1),
          String(p.ok),
          String(p.failed),
          fmtRate(p.callsPerS),
          fmtRatio(p.callsPerS / d.load.phases[0]!.callsPerS),
          fmtNum(p.p50Ms, 2),
          fmtNum(p.p99Ms, 1),
          fmtNum(p.maxMs, 0),
        ]),
      ],
      ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  out.push('');
  out.push(
    table(
      [
        ['restart step', 'leave → exit ms', 'spawn → ready ms', 'ready → seen by load ms'],
        ...d.steps.map((s) => [s.member, fmtNum(s.leaveMs, 0), fmtNum(s.startMs, 0), fmtNum(s.seenMs, 0)]),
      ],
      ['left', 'right', 'right', 'right'],
    ),
  );
  out.push('');
  out.push(`   ratio calls/s during the restart / before it: ${fmtRatio(d.duringVsBefore)} (after / before: ${fmtRatio(d.afterVsBefore)})`);
  if (d.failed > 0) {
    out.push(`   failed calls by error: ${JSON.stringify(d.load.errors)}`);
    for (const [at, text] of d.load.firstFailures) out.push(`     at ${at} ms: ${text}`);
  }
  out.push(`   warnings logged by the members and the load member: ${d.loggedProblems}`);
  return out;
}

// The group -----------------------------------------------------------------------------------

export type MembershipGroupOutput = GroupOutput<MembershipScenarioResult>;

/** Runs the selected membership scenarios (in MEMBERSHIP_SCENARIOS order) and writes their JSON. */
export async function runMembershipGroup(
  selected: readonly MembershipScenarioId[],
  options: MembershipGroupOptions,
  stamp: string,
): Promise<MembershipGroupOutput> {
  const want = (id: MembershipScenarioId) => selected.includes(id);
  // NOTE: loaded here, not at the top: the other groups never need it. It is part of the build (tsconfig.build.json).
  const { ConsulTestAgent } = await import('../../test/support/consul-agent.js');
  process.stdout.write(`\n[membership] starting redis-server and the Consul test agent\n`);
  const server: BenchRedisServer = await startRedisServer();
  const agent = await ConsulTestAgent.start({ port: 0 }).catch(async (error: unknown) => {
    await server.stop();
    throw error;
  });
  process.stdout.write(`[membership] redis-server pid ${server.pid} on 127.0.0.1:${server.port}; Consul test agent (in this process) at ${agent.url}\n`);
  const cleanup: MembershipMember[] = [];
  const results = new GroupResults<MembershipScenarioResult>(stamp, options);
  const common = [
    `Members: processes from dist/bench/membership/member.js; RedisIdentityLookup (fast lease: 1.5 s, renewed every 250 ms) on a redis-server started here; ` +
      `ConsulProvider (defaults: TTL 10s, watch wait 20s) against the Consul test agent (test/support/consul-agent.ts) in the orchestrator process.`,
  ];
  try {
    let pair: MembershipMember[] = [];
    if (want('join') || want('drain')) {
      if (want('join')) {
        const started = new Date();
        process.stdout.write(
          `\n[join] 2-member clusters (Consul, and StaticProvider for the baseline); a third member joins each, ${options.quick ? JOIN_REPS_QUICK : JOIN_REPS} times\n`,
        );
        const { consulPair, ...data } = await runJoin(agent.url, `${server.url}/0`, options, cleanup);
        pair = consulPair;
        results.add(
          {
            scenario: 'join',
            title: 'join',
            description:
              'a member process spawned next to a running 2-member cluster: time from the spawn until a call made on an existing member (A) is served by a grain activated on the new one.',
            notes: [
              ...common,
              `A probes from before the spawn: every ${PROBE_TICK_MS} ms, once the new member (new incarnation) is in its member list, ${PROBE_BATCH} where() calls to new identities ` +
                '(rendezvous placement: about 1/3 land on the new member); the join ends when one is answered from an activation on it. The new member leaves gracefully after each rep.',
              `Baselines, same run, interleaved (rotating order per rep): a bare \`node -e\` spawn → its first line on stdout (process start: what no member can beat); ` +
                `the same join in a StaticProvider cluster whose members list the new address in advance and dial it every ${STATIC_PROBE_INTERVAL_MS} ms ` +
                "(no registration, no watch: the provider's lower bound; StaticProvider's default interval is 500 ms). Consul / static = what Consul membership adds to a join.",
            ],
            startedAt: started.toISOString(),
            data,
          },
          started,
          reportJoin,
        );
      } else {
        const [pa, pb] = await freePorts(2);
        const consul = { type: 'consul' as const, url: agent.url };
        pair = [pa!, pb!].map(
          (port, k) =>
            new MembershipMember({
              name: `consul member ${k === 0 ? 'A' : 'B'}`,
              clusterName: 'bench-membership',
              provider: consul,
              redisUrl: `${server.url}/0`,
              placement: 'rendezvous',
              port,
              expectMembers: 2,
            }),
        );
        cleanup.push(...pair);
        await Promise.all(pair.map((m) => m.start()));
      }
      agent.requests.length = 0;
      if (want('drain')) {
        const started = new Date();
        process.stdout.write(`\n[drain] member D joins the Consul cluster, activates N grains, leaves gracefully\n`);
        const data = await runDrain(pair, agent.url, `${server.url}/0`, options, cleanup);
        results.add(
          {
            scenario: 'drain',
            title: 'drain (graceful leave)',
            description:
              'cluster.shutdown() of a member hosting N active grains (sent over its control channel), until it resolved and the process exited; 2 other members stay.',
            notes: [
              ...common,
              `Per leave: a fresh member D (prefer-local) activates N new grains at once (async onGrainActivate; "µs/grain activated" = that time / N), member A calls ` +
                `min(N, ${DRAIN_CALLED_BY_OTHERS}) of them (a caller with a stream and cache entries), then D leaves: deregistration from Consul, every grain ` +
                'deactivated (onGrainDeactivate hook, Redis entry released), callers told to hang up, lease released, process exit.',
              '"shutdown() ms": in the member (process.hrtime); "hooks done": shutdown start → last onGrainDeactivate; "to exit": leave request → exit seen by the orchestrator; ' +
                '"gone at A": leave request → A no longer lists D (Consul watch). Baseline: the same leave with 0 grains; "vs 0 grains" = median / median, ' +
                '"µs/grain drained" = (median(N) − median(0)) / N; "drain/activation" compares it with the same grains\' activation.',
              `Repetitions: ${data.reps} per N, N in rotating order.`,
            ],
            startedAt: started.toISOString(),
            data,
          },
          started,
          reportDrain,
        );
      }
      await Promise.allSettled(pair.map((m) => m.stop()));
    }
    if (want('rolling')) {
      agent.requests.length = 0;
      const started = new Date();
      process.stdout.write(`\n[rolling] rolling restart of 3 members under load\n`);
      const data = await runRolling(agent.url, `${server.url}/1`, options, cleanup);
      results.add(
        {
          scenario: 'rolling',
          title: 'rolling restart',
          description:
            'failed calls during a rolling restart of 3 members under continuous load (must be 0), and calls/s during the restart beside calls/s before it (same run).',
          notes: [
            ...common,
            `Load: a client-only member (ConsulProvider watch, RedisIdentityLookup), ${LOAD_CALLERS} callers, each calling touch() on its ${LOAD_GRAINS_PER_CALLER} grains in turn ` +
              '(5 s call timeout), without pause. Windows: warm-up, "before", the restart, "after".',
            'Restart of each member in turn: graceful leave (cluster.shutdown(), then exit), a new process on the same port (same member id, new incarnation), ' +
              'ready, and listed by the load member; then the next. Failures are never thrown: the run goes on and prints FAIL.',
          ],
          startedAt: started.toISOString(),
          data,
        },
        started,
        reportRolling,
      );
    }
  } finally {
    await Promise.allSettled(cleanup.map((m) => m.stop().catch(() => m.kill())));
    await agent.stop();
    await server.stop();
  }
  return results;
}
