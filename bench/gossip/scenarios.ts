/**
 * The gossip scenarios (group `gossip`), driven from the orchestrator process (bench/run.ts).
 * Every member is a process (dist/bench/gossip/member.js) serving on 127.0.0.1, with a
 * StaticProvider listing every member and HashIdentityLookup; gossip at its defaults (every
 * 300 ms to 3 peers, heartbeat every 1 s), or `gossip: { enabled: false }`:
 *
 * - `gossip-spread`: 5 members; a key set on one (rotating) reaches every other: per
 *   repetition, the time until the LAST member's `gossip.watch` saw the new value (p50, p99,
 *   max). Beside it: the gossip interval, log_fanout(N) rounds, the same protocol in a
 *   zero-latency model (spread-model.ts), and, measured in the same run between repetitions,
 *   the round trip of a plain remote grain call (ratio spread / RTT).
 * - `gossip-idle`: two 5-member clusters at once, gossip on and off, idle (no calls) for 10 s:
 *   each member's CPU (process.cpuUsage) and bytes/s written and read (/proc/<pid>/io), on vs
 *   off.
 * - `gossip-calls`: two 2-member pairs, gossip on and off; member A's 200 callers call grains
 *   on member B without pause, in interleaved rounds: calls/s on / off, with the paired range.
 *
 * Processes: members forked through remote/child-process.ts (SIGKILLed, by pid, if this
 * process exits first); all are stopped at the end and on failure.
 */
import { readFileSync } from 'node:fs';
import { fmtNum, fmtRate, fmtRatio, table } from '../support/format.js';
import { type GroupOutput, GroupResults, type GroupScenarioResult, reportHead } from '../support/group-results.js';
import { freePorts, MemberProcess, problemsOf } from '../support/member-process.js';
import { median, pairedRatios, type Summary, summarize } from '../support/stats.js';
import { hrNow, msBetween, sleep } from '../support/timing.js';
import { builtScript } from '../remote/child-process.js';
import type { GossipMemberConfig, GossipMemberStats, LoadRoundReply, RttReply } from './protocol.js';
import { modelSpread } from './spread-model.js';

export const GOSSIP_SCENARIOS = ['gossip-spread', 'gossip-idle', 'gossip-calls'] as const;
export type GossipScenarioId = (typeof GOSSIP_SCENARIOS)[number];

export interface GossipGroupOptions {
  readonly quick: boolean;
}

// NOTE: the library's defaults (lib/cluster/gossip/gossip-options.ts); the members run without a `gossip` option, so these are
// what they use, and the figures are read against them.
const GOSSIP_INTERVAL_MS = 300;
const GOSSIP_FANOUT = 3;
const HEARTBEAT_INTERVAL_MS = 1_000;

/** StaticProvider's dial interval while a listed member has not answered (all start at once). */
const PROBE_INTERVAL_MS = 50;
const GOSSIP_READY_MS = 15_000;
/** Spread: members, repetitions (the setting member rotates), and the bound on one repetition. */
const SPREAD_MEMBERS = 5;
const SPREAD_REPS = 40;
const SPREAD_REPS_QUICK = 8;
const SPREAD_MAX_MS = 10_000;
/** Pause after every member saw a value, before the next set (plus a random part of an interval, so sets land at any phase of the timers). */
const SPREAD_GAP_MS = 100;
/** The RTT baseline, after each repetition: sequential calls from the setting member to a grain on another member. */
const RTT_CALLS = 50;
const RTT_WARMUP = 5;
const MODEL_TRIALS = 100_000;
/** Idle: members per cluster; settle after gossip converged; the measured window. */
const IDLE_MEMBERS = 5;
const IDLE_SETTLE_MS = 3_000;
const IDLE_WINDOW_MS = 10_000;
const IDLE_WINDOW_MS_QUICK = 3_000;
/** Calls: concurrent callers on member A (one grain on B each), rounds per subject (interleaved), and their length. */
const CALL_CALLERS = 200;
const CALL_ROUNDS = 10;
const CALL_ROUNDS_QUICK = 3;
const CALL_WARMUP_ROUNDS = 2;
const CALL_WARMUP_ROUNDS_QUICK = 1;
const CALL_ROUND_MS = 1_000;
const CALL_ROUND_MS_QUICK = 400;

/** One member process (bench/gossip/member.ts). */
class GossipMember extends MemberProcess<GossipMemberConfig, GossipMemberStats> {
  protected readonly script = () => builtScript('./member.js', import.meta.url);

  /** Forks the process; resolves once it knows every listed member. */
  start(): Promise<void> {
    return this.fork();
  }

  cpu(): Promise<number> {
    return this.request<number>('cpu');
  }

  /** process.cpuUsage() of the member: user and system CPU apart, µs. */
  cpuUsage(): Promise<NodeJS.CpuUsage> {
    return this.request<NodeJS.CpuUsage>('cpuUsage');
  }
}

/** `count` members of one cluster, each listing all of them; started at once, and (with gossip) until gossip converged on each. */
async function startCluster(label: string, clusterName: string, count: number, gossip: boolean, cleanup: GossipMember[]): Promise<GossipMember[]> {
  const ports = await freePorts(count);
  const members = ports.map((port) => `127.0.0.1:${port}`);
  const list = ports.map(
    (port, k) => new GossipMember({ name: `${label} ${String.fromCharCode(65 + k)}`, clusterName, port, members, probeIntervalMs: PROBE_INTERVAL_MS, gossip }),
  );
  cleanup.push(...list);
  await Promise.all(list.map((m) => m.start()));
  await Promise.all(list.map((m) => m.request<number>('gossipReady', { maxMs: GOSSIP_READY_MS }, GOSSIP_READY_MS + 5_000)));
  return list;
}

function suspectedOf(stats: readonly GossipMemberStats[]): number {
  return stats.reduce((n, s) => n + s.suspected.length, 0);
}

/** Nearest-rank percentiles of a sample (with fewer than 100 values, p99 is the largest). */
export interface Percentiles {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

function percentiles(values: ArrayLike<number>): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  const at = (q: number) => (n === 0 ? Number.NaN : sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!);
  let sum = 0;
  for (const v of sorted) sum += v;
  return { n, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: n === 0 ? Number.NaN : sorted[n - 1]!, mean: n === 0 ? Number.NaN : sum / n };
}

// Results -----------------------------------------------------------------------------------

export interface GossipScenarioResult extends GroupScenarioResult<GossipScenarioId, GossipGroupOptions> {
  readonly data: unknown;
}

interface Ratio {
  readonly label: string;
  readonly value: number;
  readonly paired?: Summary;
}

function ratioTable(ratios: readonly Ratio[]): string {
  return table(
    [
      ['ratio', 'median', 'paired min … max'],
      ...ratios.map((r) => [r.label, fmtRatio(r.value), r.paired === undefined ? '' : `${fmtRatio(r.paired.min)} … ${fmtRatio(r.paired.max)}`]),
    ],
    ['left', 'right', 'right'],
  );
}

// gossip-spread -------------------------------------------------------------------------------

interface SpreadRep {
  readonly rep: number;
  readonly setter: string;
  /** ms from the set until each other member's watch saw the value (null: not within SPREAD_MAX_MS), by member id. */
  readonly arrivalsMs: Readonly<Record<string, number | null>>;
  /** The spread: until the last other member saw it (null if one never did). */
  readonly lastMs: number | null;
  readonly firstMs: number | null;
  /** The RTT baseline right after: p50 of RTT_CALLS sequential calls, µs, and the member called. */
  readonly rttP50Us: number;
  readonly rttTarget: string;
}

interface SpreadData {
  readonly members: number;
  readonly reps: number;
  readonly intervalMs: number;
  readonly fanout: number;
  readonly lastMs: Percentiles;
  readonly firstMs: Percentiles;
  readonly everyArrivalMs: Percentiles;
  /** Arrivals never seen within SPREAD_MAX_MS. */
  readonly missing: number;
  readonly rttUs: Percentiles;
  readonly logRounds: number;
  readonly model: { readonly trials: number; readonly lastMs: Percentiles; readonly firstMs: Percentiles };
  readonly ratios: readonly Ratio[];
  readonly samples: readonly SpreadRep[];
  readonly loggedProblems: number;
  readonly suspected: number;
}

async function runSpread(options: GossipGroupOptions, cleanup: GossipMember[]): Promise<SpreadData> {
  const reps = options.quick ? SPREAD_REPS_QUICK : SPREAD_REPS;
  const members = await startCluster('spread member', 'bench-gossip-spread', SPREAD_MEMBERS, true, cleanup);
  process.stdout.write(`[gossip-spread] ${SPREAD_MEMBERS} members up, gossip converged; ${reps} repetitions\n`);
  const samples: SpreadRep[] = [];
  const rttAll: number[] = [];
  let missing = 0;
  for (let r = 0; r < reps; r++) {
    await sleep(SPREAD_GAP_MS + Math.random() * GOSSIP_INTERVAL_MS);
    const setter = members[r % members.length]!;
    const others = members.filter((m) => m !== setter);
    const seq = r + 1;
    // NOTE: asked before the set; each member answers with the time its watch saw the value, whenever it asks.
    const seen = others.map((m) => m.request<number | null>('spreadSeen', { from: setter.id, seq, maxMs: SPREAD_MAX_MS }, SPREAD_MAX_MS + 5_000));
    const setNs = await setter.request<number>('spreadSet', { seq });
    const arrivals = await Promise.all(seen);
    const arrivalsMs = Object.fromEntries(others.map((m, i) => [m.id, arrivals[i] === null ? null : msBetween(setNs, arrivals[i]!)]));
    const got = Object.values(arrivalsMs).filter((x): x is number => x !== null);
    missing += others.length - got.length;
    const rtt = await setter.request<RttReply>('rtt', { calls: RTT_CALLS, warmup: RTT_WARMUP });
    rttAll.push(...rtt.latenciesUs);
    samples.push({
      rep: r,
      setter: setter.id,
      arrivalsMs,
      lastMs: got.length === others.length ? Math.max(...got) : null,
      firstMs: got.length === 0 ? null : Math.min(...got),
      rttP50Us: median(rtt.latenciesUs),
      rttTarget: rtt.target,
    });
    if ((r + 1) % 10 === 0 || r + 1 === reps) {
      const last = samples.slice(-10).map((s) => (s.lastMs === null ? 'never' : fmtNum(s.lastMs, 0)));
      process.stdout.write(`[gossip-spread] reps ${r + 2 - last.length}–${r + 1}: last member saw it after ${last.join(', ')} ms\n`);
    }
  }
  const stats = await Promise.all(members.map((m) => m.stats()));
  await Promise.allSettled(members.map((m) => m.stop()));
  const complete = samples.filter((s) => s.lastMs !== null);
  const lastMs = percentiles(complete.map((s) => s.lastMs!));
  const rttUs = percentiles(rttAll);
  const logRounds = Math.log(SPREAD_MEMBERS) / Math.log(GOSSIP_FANOUT);
  const modelRun = modelSpread(SPREAD_MEMBERS, GOSSIP_FANOUT, GOSSIP_INTERVAL_MS, MODEL_TRIALS);
  const model = { trials: modelRun.trials, lastMs: percentiles(modelRun.lastMs), firstMs: percentiles(modelRun.firstMs) };
  return {
    members: SPREAD_MEMBERS,
    reps,
    intervalMs: GOSSIP_INTERVAL_MS,
    fanout: GOSSIP_FANOUT,
    lastMs,
    firstMs: percentiles(samples.flatMap((s) => (s.firstMs === null ? [] : [s.firstMs]))),
    everyArrivalMs: percentiles(samples.flatMap((s) => Object.values(s.arrivalsMs).filter((x): x is number => x !== null))),
    missing,
    rttUs,
    logRounds,
    model,
    ratios: [
      { label: 'spread p50 / gossip interval', value: lastMs.p50 / GOSSIP_INTERVAL_MS },
      { label: `spread p50 / (log_${GOSSIP_FANOUT}(${SPREAD_MEMBERS}) rounds × interval)`, value: lastMs.p50 / (logRounds * GOSSIP_INTERVAL_MS) },
      { label: 'spread p50 / model p50 (zero-latency protocol)', value: lastMs.p50 / model.lastMs.p50 },
      { label: 'spread p99 / model p99', value: lastMs.p99 / model.lastMs.p99 },
      {
        label: 'spread / grain-call RTT (p50 / p50; paired: per rep)',
        value: lastMs.p50 / (rttUs.p50 / 1e3),
        paired: summarize(
          pairedRatios(
            complete.map((s) => s.lastMs!),
            complete.map((s) => s.rttP50Us / 1e3),
          ),
        ),
      },
    ],
    samples,
    loggedProblems: problemsOf(stats),
    suspected: suspectedOf(stats),
  };
}

function reportSpread(result: GossipScenarioResult): string[] {
  const d = result.data as SpreadData;
  const out = reportHead(result);
  const row = (label: string, p: Percentiles, digits = 0) => [
    label,
    String(p.n),
    fmtNum(p.p50, digits),
    fmtNum(p.p90, digits),
    fmtNum(p.p99, digits),
    fmtNum(p.max, digits),
    fmtNum(p.mean, digits),
  ];
  out.push(
    table(
      [
        ['ms from the set (measured)', 'n', 'p50', 'p90', 'p99', 'max', 'mean'],
        row('SPREAD: last member saw it', d.lastMs),
        row('first member saw it', d.firstMs),
        row('every arrival (each member, each rep)', d.everyArrivalMs),
        ['baselines', '', '', '', '', '', ''],
        ['gossip interval (default)', '', fmtNum(d.intervalMs, 0), '', '', '', ''],
        [`log_${d.fanout}(${d.members}) = ${fmtNum(d.logRounds, 2)} rounds × interval`, '', fmtNum(d.logRounds * d.intervalMs, 0), '', '', '', ''],
        row(`model, last member (${d.model.trials / 1000} k trials)`, d.model.lastMs),
        row('model, first member', d.model.firstMs),
        row('grain call RTT, 1 caller, µs (measured)', d.rttUs),
      ],
      ['left', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  out.push('');
  out.push(ratioTable(d.ratios));
  out.push('');
  out.push(
    `   check: every member saw every value within ${SPREAD_MAX_MS / 1000} s: ${d.missing === 0 ? 'passed' : `FAILED (${d.missing} arrivals missing)`}; ` +
      `members suspected at the end: ${d.suspected}; warnings logged by the members: ${d.loggedProblems}`,
  );
  return out;
}

// gossip-idle ---------------------------------------------------------------------------------

/** Bytes this process passed to read()/write() syscalls (/proc/<pid>/io rchar, wchar). */
function procIo(pid: number | undefined): { readonly read: number; readonly written: number } {
  if (pid === undefined) throw new Error('no pid');
  const text = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string) => {
    const match = new RegExp(`^${name}: (\\d+)$`, 'm').exec(text);
    if (match === null) throw new Error(`/proc/${pid}/io has no ${name}`);
    return Number(match[1]);
  };
  return { read: field('rchar'), written: field('wchar') };
}

interface IdleFigures {
  readonly memberId: string;
  /** CPU (user + system, all threads) / wall, in % of one core. */
  readonly cpuPct: number;
  /** The same, user and system apart. */
  readonly userPct: number;
  readonly systemPct: number;
  readonly cpuUs: number;
  readonly sentBps: number;
  readonly recvBps: number;
  readonly wallMs: number;
}

interface IdleData {
  readonly windowMs: number;
  readonly on: readonly IdleFigures[];
  readonly off: readonly IdleFigures[];
  /** Medians over members, and the per-member differences (on − off, member k of each cluster) and ratios. */
  readonly median: {
    readonly on: Omit<IdleFigures, 'memberId' | 'wallMs' | 'cpuUs'>;
    readonly off: Omit<IdleFigures, 'memberId' | 'wallMs' | 'cpuUs'>;
    /** Medians of the per-member differences on − off, % of one core. */
    readonly userPctDiff: number;
    readonly systemPctDiff: number;
    readonly cpuPctDiff: number;
    readonly cpuRatio: number;
    readonly sentBpsDiff: number;
    readonly recvBpsDiff: number;
  };
  /** Estimated bytes per gossip message (push or reply, HTTP/2 and gRPC framing included): median sent B/s difference × interval / (2 × fanout). */
  readonly bytesPerMessage: number;
  readonly loggedProblems: number;
  readonly suspected: number;
}

async function runIdle(options: GossipGroupOptions, cleanup: GossipMember[]): Promise<IdleData> {
  const windowMs = options.quick ? IDLE_WINDOW_MS_QUICK : IDLE_WINDOW_MS;
  const [on, off] = await Promise.all([
    startCluster('idle member (gossip on)', 'bench-gossip-idle-on', IDLE_MEMBERS, true, cleanup),
    startCluster('idle member (gossip off)', 'bench-gossip-idle-off', IDLE_MEMBERS, false, cleanup),
  ]);
  const all = [...on, ...off];
  process.stdout.write(
    `[gossip-idle] 2 clusters of ${IDLE_MEMBERS} members up (gossip on: converged); settling ${IDLE_SETTLE_MS} ms, then ${windowMs} ms idle\n`,
  );
  await sleep(IDLE_SETTLE_MS);
  // NOTE: the IPC of the CPU requests stays outside the byte window: CPU asked first, bytes read last (at the end: the other way round).
  const cpu0 = await Promise.all(all.map(async (m) => ({ usage: await m.cpuUsage(), ns: hrNow() })));
  const io0 = all.map((m) => ({ ...procIo(m.pid), ns: hrNow() }));
  await sleep(windowMs);
  const io1 = all.map((m) => ({ ...procIo(m.pid), ns: hrNow() }));
  const cpu1 = await Promise.all(all.map(async (m) => ({ usage: await m.cpuUsage(), ns: hrNow() })));
  const figures = all.map((m, i): IdleFigures => {
    const ioS = msBetween(io0[i]!.ns, io1[i]!.ns) / 1e3;
    const userUs = cpu1[i]!.usage.user - cpu0[i]!.usage.user;
    const systemUs = cpu1[i]!.usage.system - cpu0[i]!.usage.system;
    const pct = (us: number) => (us / 1e3 / msBetween(cpu0[i]!.ns, cpu1[i]!.ns)) * 100;
    return {
      memberId: m.id,
      cpuPct: pct(userUs + systemUs),
      userPct: pct(userUs),
      systemPct: pct(systemUs),
      cpuUs: userUs + systemUs,
      sentBps: (io1[i]!.written - io0[i]!.written) / ioS,
      recvBps: (io1[i]!.read - io0[i]!.read) / ioS,
      wallMs: ioS * 1e3,
    };
  });
  const stats = await Promise.all(all.map((m) => m.stats()));
  await Promise.allSettled(all.map((m) => m.stop()));
  const onF = figures.slice(0, on.length);
  const offF = figures.slice(on.length);
  const med = (list: readonly IdleFigures[]) => ({
    cpuPct: median(list.map((f) => f.cpuPct)),
    userPct: median(list.map((f) => f.userPct)),
    systemPct: median(list.map((f) => f.systemPct)),
    sentBps: median(list.map((f) => f.sentBps)),
    recvBps: median(list.map((f) => f.recvBps)),
  });
  const sentBpsDiff = median(onF.map((f, k) => f.sentBps - offF[k]!.sentBps));
  return {
    windowMs,
    on: onF,
    off: offF,
    median: {
      on: med(onF),
      off: med(offF),
      cpuPctDiff: median(onF.map((f, k) => f.cpuPct - offF[k]!.cpuPct)),
      userPctDiff: median(onF.map((f, k) => f.userPct - offF[k]!.userPct)),
      systemPctDiff: median(onF.map((f, k) => f.systemPct - offF[k]!.systemPct)),
      cpuRatio: med(onF).cpuPct / med(offF).cpuPct,
      sentBpsDiff,
      recvBpsDiff: median(onF.map((f, k) => f.recvBps - offF[k]!.recvBps)),
    },
    bytesPerMessage: (sentBpsDiff * (GOSSIP_INTERVAL_MS / 1e3)) / (2 * Math.min(GOSSIP_FANOUT, IDLE_MEMBERS - 1)),
    loggedProblems: problemsOf(stats),
    suspected: suspectedOf(stats),
  };
}

function reportIdle(result: GossipScenarioResult): string[] {
  const d = result.data as IdleData;
  const out = reportHead(result);
  const rows = d.on.map((f, k) => {
    const g = d.off[k]!;
    return [
      `${String.fromCharCode(65 + k)}`,
      fmtNum(f.cpuPct, 2),
      fmtNum(g.cpuPct, 2),
      fmtNum(f.cpuPct - g.cpuPct, 2),
      fmtRatio(f.cpuPct / g.cpuPct),
      fmtNum(f.sentBps, 0),
      fmtNum(g.sentBps, 0),
      fmtNum(f.sentBps - g.sentBps, 0),
      fmtNum(f.recvBps, 0),
      fmtNum(g.recvBps, 0),
      fmtNum(f.recvBps - g.recvBps, 0),
    ];
  });
  const m = d.median;
  out.push(
    table(
      [
        ['member', 'CPU % on', 'off', 'on − off', 'on / off', 'sent B/s on', 'off', 'on − off', 'recv B/s on', 'off', 'on − off'],
        ...rows,
        [
          'median',
          fmtNum(m.on.cpuPct, 2),
          fmtNum(m.off.cpuPct, 2),
          fmtNum(m.cpuPctDiff, 2),
          fmtRatio(m.cpuRatio),
          fmtNum(m.on.sentBps, 0),
          fmtNum(m.off.sentBps, 0),
          fmtNum(m.sentBpsDiff, 0),
          fmtNum(m.on.recvBps, 0),
          fmtNum(m.off.recvBps, 0),
          fmtNum(m.recvBpsDiff, 0),
        ],
      ],
      ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  const total = (list: readonly IdleFigures[], key: 'sentBps' | 'recvBps') => list.reduce((n, f) => n + f[key], 0);
  out.push('');
  out.push(
    `   cluster totals, B/s: gossip on sent ${fmtNum(total(d.on, 'sentBps'), 0)}, received ${fmtNum(total(d.on, 'recvBps'), 0)}; ` +
      `gossip off sent ${fmtNum(total(d.off, 'sentBps'), 0)}, received ${fmtNum(total(d.off, 'recvBps'), 0)} (on loopback, sent ≈ received)`,
  );
  out.push(
    `   CPU % split (medians): gossip on user ${fmtNum(m.on.userPct, 2)}, system ${fmtNum(m.on.systemPct, 2)}; off user ${fmtNum(m.off.userPct, 2)}, ` +
      `system ${fmtNum(m.off.systemPct, 2)}; on − off user ${fmtNum(m.userPctDiff, 2)}, system ${fmtNum(m.systemPctDiff, 2)} ` +
      '(system: the syscalls, and the loopback TCP work the kernel charges to them)',
  );
  out.push(
    `   gossip's CPU per member: ${fmtNum((m.cpuPctDiff / 100) * 1e3, 2)} ms per second (${fmtNum((m.cpuPctDiff / 100) * GOSSIP_INTERVAL_MS * 1e3, 0)} µs per ${GOSSIP_INTERVAL_MS} ms round); ` +
      `≈ ${fmtNum(d.bytesPerMessage, 0)} bytes per gossip message (estimate: sent on − off × interval / (2 × fanout): ${GOSSIP_FANOUT} pushes and ~${GOSSIP_FANOUT} replies per member per round)`,
  );
  out.push(`   members suspected at the end: ${d.suspected}; warnings logged by the members: ${d.loggedProblems}`);
  return out;
}

// gossip-calls ------------------------------------------------------------------------------

interface CallRound {
  readonly subject: 'on' | 'off';
  readonly round: number;
  readonly callsPerS: number;
  readonly calls: number;
  readonly failed: number;
  /** CPU µs per call, caller (A) and callee (B). */
  readonly cpuAUs: number;
  readonly cpuBUs: number;
}

interface CallsData {
  readonly callers: number;
  readonly rounds: number;
  readonly roundMs: number;
  readonly on: { readonly rate: Summary; readonly cpuAUs: Summary; readonly cpuBUs: Summary };
  readonly off: { readonly rate: Summary; readonly cpuAUs: Summary; readonly cpuBUs: Summary };
  readonly ratios: readonly Ratio[];
  readonly failed: number;
  readonly lastError: string | null;
  readonly samples: readonly CallRound[];
  readonly loggedProblems: number;
  readonly suspected: number;
}

async function runCalls(options: GossipGroupOptions, cleanup: GossipMember[]): Promise<CallsData> {
  const rounds = options.quick ? CALL_ROUNDS_QUICK : CALL_ROUNDS;
  const warmup = options.quick ? CALL_WARMUP_ROUNDS_QUICK : CALL_WARMUP_ROUNDS;
  const roundMs = options.quick ? CALL_ROUND_MS_QUICK : CALL_ROUND_MS;
  const [onPair, offPair] = await Promise.all([
    startCluster('calls member (gossip on)', 'bench-gossip-calls-on', 2, true, cleanup),
    startCluster('calls member (gossip off)', 'bench-gossip-calls-off', 2, false, cleanup),
  ]);
  const pairs = { on: onPair, off: offPair };
  for (const [subject, [a, b]] of Object.entries(pairs)) {
    const found = await a!.request<number>('loadPrepare', { prefix: `calls-${subject}.`, callers: CALL_CALLERS, on: b!.id }, 60_000);
    if (found !== CALL_CALLERS) throw new Error(`gossip ${subject}: ${found} of ${CALL_CALLERS} grains on B`);
  }
  process.stdout.write(
    `[gossip-calls] 2 pairs up (gossip on, off); ${CALL_CALLERS} callers on A, one grain each on B; ${warmup} warm-up + ${rounds} rounds of ${roundMs} ms per subject, interleaved\n`,
  );
  const samples: CallRound[] = [];
  let lastError: string | null = null;
  const subjects = ['on', 'off'] as const;
  for (let r = -warmup; r < rounds; r++) {
    for (let k = 0; k < subjects.length; k++) {
      const subject = subjects[(k + r + warmup) % subjects.length]!;
      const [a, b] = pairs[subject];
      const [a0, b0] = await Promise.all([a!.cpu(), b!.cpu()]);
      const reply = await a!.request<LoadRoundReply>('loadRound', { ms: roundMs }, roundMs + 30_000);
      const [a1, b1] = await Promise.all([a!.cpu(), b!.cpu()]);
      if (reply.lastError !== null) lastError = reply.lastError;
      if (r < 0) continue;
      samples.push({
        subject,
        round: r,
        callsPerS: reply.calls / (msBetween(reply.startNs, reply.endNs) / 1e3),
        calls: reply.calls,
        failed: reply.failed,
        cpuAUs: (a1 - a0) / reply.calls,
        cpuBUs: (b1 - b0) / reply.calls,
      });
    }
    if (r >= 0) {
      const [x, y] = [samples.at(-2)!, samples.at(-1)!];
      process.stdout.write(`[gossip-calls] round ${r + 1}/${rounds}: ${x.subject} ${fmtRate(x.callsPerS)}, ${y.subject} ${fmtRate(y.callsPerS)} calls/s\n`);
    }
  }
  const stats = await Promise.all([...onPair, ...offPair].map((m) => m.stats()));
  await Promise.allSettled([...onPair, ...offPair].map((m) => m.stop()));
  const of = (subject: 'on' | 'off') => samples.filter((s) => s.subject === subject).sort((x, y) => x.round - y.round);
  const figures = (subject: 'on' | 'off') => {
    const s = of(subject);
    return { rate: summarize(s.map((x) => x.callsPerS)), cpuAUs: summarize(s.map((x) => x.cpuAUs)), cpuBUs: summarize(s.map((x) => x.cpuBUs)) };
  };
  const on = figures('on');
  const off = figures('off');
  const paired = (key: 'callsPerS' | 'cpuAUs' | 'cpuBUs') =>
    summarize(
      pairedRatios(
        of('on').map((x) => x[key]),
        of('off').map((x) => x[key]),
      ),
    );
  return {
    callers: CALL_CALLERS,
    rounds,
    roundMs,
    on,
    off,
    ratios: [
      { label: 'calls/s, gossip on / off', value: on.rate.median / off.rate.median, paired: paired('callsPerS') },
      { label: 'caller (A) CPU per call, on / off', value: on.cpuAUs.median / off.cpuAUs.median, paired: paired('cpuAUs') },
      { label: 'callee (B) CPU per call, on / off', value: on.cpuBUs.median / off.cpuBUs.median, paired: paired('cpuBUs') },
    ],
    failed: samples.reduce((n, s) => n + s.failed, 0),
    lastError,
    samples,
    loggedProblems: problemsOf(stats),
    suspected: suspectedOf(stats),
  };
}

function reportCalls(result: GossipScenarioResult): string[] {
  const d = result.data as CallsData;
  const out = reportHead(result);
  const row = (label: string, f: CallsData['on']) => [
    label,
    fmtRate(f.rate.median),
    fmtRate(f.rate.min),
    fmtRate(f.rate.max),
    fmtNum(1e6 / f.rate.median, 2),
    fmtNum(f.cpuAUs.median, 2),
    fmtNum(f.cpuBUs.median, 2),
  ];
  out.push(
    table(
      [
        ['subject', 'calls/s median', 'min', 'max', 'µs/call (wall)', 'CPU µs/call A', 'CPU µs/call B'],
        row('gossip on (defaults)', d.on),
        row('gossip off (enabled: false)', d.off),
      ],
      ['left', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  out.push('');
  out.push(ratioTable(d.ratios));
  out.push('');
  out.push(
    `   check: failed calls ${d.failed}${d.failed === 0 ? ' (passed)' : ` — FAILED (last: ${d.lastError})`}; members suspected at the end: ${d.suspected}; ` +
      `warnings logged by the members: ${d.loggedProblems}`,
  );
  return out;
}

// The group -----------------------------------------------------------------------------------

export type GossipGroupOutput = GroupOutput<GossipScenarioResult>;

/** Runs the selected gossip scenarios (in GOSSIP_SCENARIOS order) and writes their JSON. */
export async function runGossipGroup(selected: readonly GossipScenarioId[], options: GossipGroupOptions, stamp: string): Promise<GossipGroupOutput> {
  const want = (id: GossipScenarioId) => selected.includes(id);
  const cleanup: GossipMember[] = [];
  const results = new GroupResults<GossipScenarioResult>(stamp, options);
  const common =
    'Members: processes from dist/bench/gossip/member.js on 127.0.0.1, StaticProvider listing every member, HashIdentityLookup; ' +
    `gossip at the defaults (no option: every ${GOSSIP_INTERVAL_MS} ms to ${GOSSIP_FANOUT} random peers, heartbeat every ${HEARTBEAT_INTERVAL_MS} ms) ` +
    "or `gossip: { enabled: false }`. Gossip rides on the members' gRPC streams.";
  try {
    if (want('gossip-spread')) {
      const started = new Date();
      process.stdout.write(`\n[gossip-spread] a key set on one of ${SPREAD_MEMBERS} members, until every member saw it\n`);
      const data = await runSpread(options, cleanup);
      results.add(
        {
          scenario: 'gossip-spread',
          title: 'gossip spread',
          description: `time for a key set on one of ${SPREAD_MEMBERS} members (cluster.gossip.set) to reach every other member (their gossip.watch), default settings.`,
          notes: [
            common,
            `Per repetition (${data.reps}; the setting member rotates; a new value each time; a pause of ${SPREAD_GAP_MS} ms plus a random part of an interval before each set): ` +
              'the setter notes process.hrtime just before set(), each other member in its watch listener when the value arrived (one monotonic clock for ' +
              'every process of the host). SPREAD = until the LAST member saw it. Percentiles are nearest-rank (p99 of fewer than 100 values is the largest).',
            `Baselines: the interval; log_fanout(N) rounds of it; a model of the same protocol without latency or CPU (spread-model.ts: each member's timer at a ` +
              'random phase, pushes to 3 random peers, a push or a reply carries the value; computed, not measured); and, measured after every repetition, ' +
              `${RTT_CALLS} sequential ping() calls (1 caller, after ${RTT_WARMUP} untimed) from the setter to a grain active on another member.`,
            "The model averages over timer phases; a run keeps one layout (each member's timer keeps its phase for the whole run), so spread / model moves " +
              'between runs more than the spread of its reps suggests: compare it over runs.',
          ],
          startedAt: started.toISOString(),
          data,
        },
        started,
        reportSpread,
      );
    }
    if (want('gossip-idle')) {
      const started = new Date();
      process.stdout.write(`\n[gossip-idle] two idle ${IDLE_MEMBERS}-member clusters at once, gossip on and off\n`);
      const data = await runIdle(options, cleanup);
      results.add(
        {
          scenario: 'gossip-idle',
          title: 'gossip idle cost',
          description: `what gossip costs an idle member: two ${IDLE_MEMBERS}-member clusters side by side, gossip on and off, no calls, ${data.windowMs / 1000} s.`,
          notes: [
            common,
            `Both clusters run at the same time (same machine noise), started together, measured ${IDLE_SETTLE_MS / 1000} s after gossip converged on the "on" cluster. ` +
              'Member k of one is compared with member k of the other.',
            'CPU: process.cpuUsage() (user + system, every thread) asked over IPC at the start and end of the window, over the wall time between the replies: % of one core. ' +
              'Bytes: /proc/<pid>/io rchar and wchar of each member, read by the orchestrator: every byte the process passed to read()/write() syscalls, ' +
              "which here is its gRPC sockets (HTTP/2 and gRPC framing included, TCP/IP headers not), plus libuv's 8-byte eventfd wake-ups; the IPC requests " +
              'for CPU are kept outside this window. The difference on − off is what gossip adds.',
          ],
          startedAt: started.toISOString(),
          data,
        },
        started,
        reportIdle,
      );
    }
    if (want('gossip-calls')) {
      const started = new Date();
      process.stdout.write(`\n[gossip-calls] remote grain calls, gossip on beside off\n`);
      const data = await runCalls(options, cleanup);
      results.add(
        {
          scenario: 'gossip-calls',
          title: 'remote calls, gossip on vs off',
          description: `throughput of remote grain calls between two members with gossip on (defaults) beside off: ${data.callers} concurrent callers.`,
          notes: [
            common,
            `Two 2-member pairs running side by side (on, off). On member A, ${data.callers} async loops, each calling ping() on its own grain active on member B ` +
              `(HashIdentityLookup; identities picked by where()), without pause, for ${data.roundMs} ms per round; rounds interleaved, order rotated each round ` +
              '(warm-up rounds first, not counted). calls/s = calls / (first start → last call back). CPU per call: process.cpuUsage of A and B over IPC around ' +
              'each round. Median [min … max] of rounds; ratios median / median, with the range of round-by-round (paired) ratios.',
          ],
          startedAt: started.toISOString(),
          data,
        },
        started,
        reportCalls,
      );
    }
  } finally {
    await Promise.allSettled(cleanup.map((m) => m.stop().catch(() => m.kill())));
  }
  return results;
}
