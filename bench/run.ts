/**
 * `npm run bench`: runs every scenario (or those named on the command line), prints a table
 * per scenario and writes JSON to bench/results/.
 *
 *   node dist/bench/run.js [scenario...] [--only group,...] [--rounds 11] [--round-ms 250] [--warmup 3]
 *                          [--warmup-ms 2000] [--concurrency 1000] [--kills 20] [--quick] [--profile] [--gc]
 *
 * Scenarios: local-call, activation, remote-call, remote-call-tls (worker scenarios, below), the Redis group
 * (bench/redis/scenarios.ts): activation-redis, cached-call-redis, failover, the membership
 * group (bench/membership/scenarios.ts): join, drain, rolling, and the gossip group
 * (bench/gossip/scenarios.ts): gossip-spread, gossip-idle, gossip-calls. `redis`, `membership`
 * and `gossip` (as a positional or `--only`) name a whole group; `--only` takes scenario or
 * group names.
 *
 * --quick: 3 rounds of ~100 ms (smoke test, figures are rough); --profile: also CPU-profile the
 * local-call scenario (bench/profile-local-call.ts) and print its top self-time functions
 * (remote-call always profiles both of its members: support/remote-profile.ts);
 * --gc: force a full GC before every round (see support/child.ts for why it is off).
 *
 * Method: each scenario forks two workers, `pristine` (never loads the runtime, so no
 * AsyncLocalStorage promise hooks) and `runtime`. Every subject is warmed up until its rate
 * stops climbing (at least --warmup-ms) and its round size calibrated to about --round-ms;
 * then timed rounds are interleaved (round r of every subject, in rotating order, before
 * round r+1), so drift on this shared machine hits all subjects alike. Figures are the median
 * [min … max] over rounds; ratios are taken within the same run: median-based, plus the range
 * of round-by-round (paired) ratios. Scenarios with latency specs then run latency rounds
 * (every operation timed; p50/p99 per round), interleaved the same way.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from './support/child.js';
import { type ProfileSummary, summarizeProfile } from './support/cpuprofile.js';
import { fmtNum, fmtPct, fmtRate, fmtRatio, table } from './support/format.js';
import type { StatusReply } from './support/protocol.js';
import { environment, type Environment, REPO_ROOT, RESULTS_DIR, timestamp, writeJson } from './support/results.js';
import { profileRemoteCall, reportRemoteProfile, type RemoteProfile } from './support/remote-profile.js';
import { asyncContextIsCheap } from '../lib/actor/turn.js';
import { type BreakdownLine, type LatencySample, type Role, ROLES, type ScenarioSpec } from './support/scenario.js';
import { findScenario, SCENARIOS } from './support/scenarios.js';
import { REDIS_SCENARIOS, type RedisScenarioId, runRedisGroup } from './redis/scenarios.js';
import { MEMBERSHIP_SCENARIOS, type MembershipScenarioId, runMembershipGroup } from './membership/scenarios.js';
import { GOSSIP_SCENARIOS, type GossipScenarioId, runGossipGroup } from './gossip/scenarios.js';
import { median, pairedRatios, type Summary, summarize } from './support/stats.js';

interface Options {
  readonly rounds: number;
  readonly roundMs: number;
  /** Full-size warm-up rounds, at least. */
  readonly warmup: number;
  /** Warm-up time, at least, with the rate no longer climbing; 0: exactly `warmup` rounds. */
  readonly warmupMs: number;
  readonly concurrency: number;
  readonly profile: boolean;
  /** --quick: short rounds (smoke test). */
  readonly quick: boolean;
  /** Force a full GC before each round (workers run with --expose-gc). */
  readonly gc: boolean;
  /** Kills of the Redis failover scenario. */
  readonly kills: number;
}

const ROLE_DESCRIPTION: Record<Role, string> = {
  pristine: 'pristine child (runtime never loaded, no ALS)',
  runtime: 'runtime child (grain turns ran; default callChains)',
  'runtime-als': "runtime child (callChains: 'async-local-storage')",
  'runtime-stgc': 'runtime child, --single-threaded-gc',
};

interface SubjectResult {
  readonly id: string;
  readonly label: string;
  readonly role: Role;
  readonly process: string;
  readonly opsPerRound: number;
  /** Operations per second, per timed round. */
  readonly rate: Summary;
  readonly warmupRates: readonly number[];
  /** Time in full-size warm-up rounds, and whether the rate had stopped climbing by the end (calibrate). */
  readonly warmupMs: number;
  readonly warmupSteady: boolean;
  /** ns per operation of the untimed cleanup, when the subject has one. */
  readonly cleanupNsPerOp?: Summary;
  /** Per-round figures the subject reported (e.g. CPU per operation of each process), by name. */
  readonly figures?: Readonly<Record<string, Summary>>;
  /** Absolute target (ops/s) and whether the median meets it. */
  readonly target?: number;
  readonly meetsTarget?: boolean;
}

interface LatencyResult {
  readonly id: string;
  readonly label: string;
  readonly subject: string;
  readonly callers: number;
  readonly callsPerRound: number;
  /** Per round: p50 and p99 of every call's latency, in µs. */
  readonly p50Us: Summary;
  readonly p99Us: Summary;
  readonly meanUs: Summary;
  readonly maxUs: Summary;
  /** Calls per second of the latency rounds (every call timed). */
  readonly rate: Summary;
}

interface RatioResult {
  readonly id: string;
  readonly label: string;
  readonly numerator: string;
  readonly denominator: string;
  /** median(numerator) / median(denominator). */
  readonly value: number;
  /** Round-by-round ratios. */
  readonly paired: Summary;
  readonly target?: number;
  readonly meetsTarget?: boolean;
}

interface ProbeResult {
  readonly id: string;
  readonly label: string;
  readonly role: Role;
  readonly unit: string;
  readonly summary: Summary;
}

interface ScenarioResult {
  readonly scenario: string;
  readonly title: string;
  readonly description: string;
  readonly notes?: readonly string[];
  readonly unit: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationS: number;
  readonly environment: Environment;
  readonly options: Options;
  readonly subjects: readonly SubjectResult[];
  readonly ratios: readonly RatioResult[];
  readonly probes: readonly ProbeResult[];
  readonly latency: readonly LatencyResult[];
  readonly breakdown: readonly BreakdownLine[];
  readonly workers: readonly StatusReply[];
}

/** Scenario groups `--only` (or a positional) may name. */
const GROUPS: Readonly<Record<string, readonly string[]>> = { redis: REDIS_SCENARIOS, membership: MEMBERSHIP_SCENARIOS, gossip: GOSSIP_SCENARIOS };

function parseOptions(): {
  scenarios: ScenarioSpec[];
  redis: RedisScenarioId[];
  membership: MembershipScenarioId[];
  gossip: GossipScenarioId[];
  options: Options;
} {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      rounds: { type: 'string' },
      'round-ms': { type: 'string' },
      warmup: { type: 'string' },
      'warmup-ms': { type: 'string' },
      concurrency: { type: 'string' },
      kills: { type: 'string' },
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      gc: { type: 'boolean', default: false },
    },
  });
  const int = (value: string | undefined, fallback: number, name: string, min: number, max: number) => {
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
  const quick = values.quick === true;
  const options: Options = {
    rounds: int(values.rounds, quick ? 3 : 11, 'rounds', 1, 50),
    roundMs: int(values['round-ms'], quick ? 100 : 250, 'round-ms', 10, 5000),
    warmup: int(values.warmup, quick ? 1 : 3, 'warmup', 0, 20),
    warmupMs: int(values['warmup-ms'], quick ? 0 : 2000, 'warmup-ms', 0, 60_000),
    concurrency: int(values.concurrency, 1000, 'concurrency', 1, 100_000),
    profile: values.profile === true,
    quick,
    gc: values.gc === true,
    kills: int(values.kills, quick ? 3 : 20, 'kills', 1, 100),
  };
  const names = [...positionals, ...(values.only ?? '').split(',').filter((n) => n !== '')].flatMap((n) => GROUPS[n] ?? [n]);
  if (names.length === 0)
    return { scenarios: [...SCENARIOS], redis: [...REDIS_SCENARIOS], membership: [...MEMBERSHIP_SCENARIOS], gossip: [...GOSSIP_SCENARIOS], options };
  const known = [...SCENARIOS.map((s) => s.id), ...REDIS_SCENARIOS, ...MEMBERSHIP_SCENARIOS, ...GOSSIP_SCENARIOS];
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(', ')} (known: ${known.join(', ')}; groups: ${Object.keys(GROUPS).join(', ')})`);
  const redis = REDIS_SCENARIOS.filter((id) => names.includes(id));
  const membership = MEMBERSHIP_SCENARIOS.filter((id) => names.includes(id));
  const gossip = GOSSIP_SCENARIOS.filter((id) => names.includes(id));
  const grouped: readonly string[] = [...REDIS_SCENARIOS, ...MEMBERSHIP_SCENARIOS, ...GOSSIP_SCENARIOS];
  const scenarios = names.filter((n) => !grouped.includes(n)).map(findScenario);
  return { scenarios: [...new Set(scenarios)], redis, membership, gossip, options };
}

/** The fewest operations each caller performs in a timed round. */
const MIN_OPS_PER_CALLER = 2;

/** Warm-up rounds at full size, at most (beyond the growing ones): 6 s at the default --round-ms. */
const MAX_WARMUP_ROUNDS = 24;
/** Rates compared to call a warm-up steady: the median of the last this many rounds against the same many before. */
const STEADY_WINDOW = 3;
/** Steady: the last window's median rate is at most this much above the window's before (it stopped climbing). */
const STEADY_GAIN = 1.15;

interface Calibration {
  /** Operations per timed round. */
  readonly ops: number;
  /** Rate (ops/s) of every full-size warm-up round, in order. */
  readonly warmupRates: number[];
  /** Time spent in full-size warm-up rounds. */
  readonly warmupMs: number;
  /** False when the warm-up hit MAX_WARMUP_ROUNDS while the rate still climbed. */
  readonly steady: boolean;
}

function steadyRates(rates: readonly number[]): boolean {
  if (rates.length < 2 * STEADY_WINDOW) return false;
  return median(rates.slice(-STEADY_WINDOW)) <= STEADY_GAIN * median(rates.slice(-2 * STEADY_WINDOW, -STEADY_WINDOW));
}

/**
 * Grow the round until it takes a measurable time, then run rounds at about --round-ms until
 * the subject is warm: at least `warmup` rounds, and (unless --warmup-ms is 0) at least
 * --warmup-ms of them with the rate no longer climbing (steadyRates). Returns the ops per
 * round that fits --round-ms at the rate of the last rounds (bounded loops).
 *
 * NOTE: grain subjects speed up over their first few hundred thousand calls (V8 tiers their
 * code up; the young generation grows): remote grain calls on Node 24 ran 38 k, 46 k, 73 k
 * calls/s in three warm-up rounds and ~450 k/s once warm, while the grpc-js stream was warm
 * in two. Three fixed rounds sized the timed rounds from a cold rate (~11 calls per caller,
 * so each round was mostly its own start and drain) and measured the grain subjects warming up.
 */
async function calibrate(worker: Worker, subject: string, options: Options): Promise<Calibration> {
  const c = options.concurrency;
  // NOTE: at least MIN_OPS_PER_CALLER per caller, so a slow subject (grpc-js unary: a few
  // thousand calls/s) is measured in steady state, not as one burst of `c` calls draining.
  const fit = (ops: number) => Math.max(c * MIN_OPS_PER_CALLER, Math.ceil(ops / c) * c);
  let ops = fit(c * 2);
  const floorNs = Math.min(25, options.roundMs / 4) * 1e6;
  for (let i = 0; i < 12; i++) {
    const { ns } = await worker.round(subject, ops);
    if (ns >= floorNs) break;
    ops = fit(ops * Math.min(10, Math.max(2, (floorNs / Math.max(ns, 1)) * 1.2)));
  }
  const warmupRates: number[] = [];
  const minRounds = Math.max(1, options.warmup);
  let warmNs = 0;
  let steady = false;
  for (let i = 0; i < Math.max(minRounds, MAX_WARMUP_ROUNDS); i++) {
    const { ns, ops: done } = await worker.round(subject, ops);
    const rate = (done / ns) * 1e9;
    warmupRates.push(rate);
    warmNs += ns;
    ops = fit(rate * (options.roundMs / 1000));
    steady = options.warmupMs === 0 || steadyRates(warmupRates);
    if (warmupRates.length >= minRounds && warmNs >= options.warmupMs * 1e6 && steady) break;
  }
  const last = warmupRates.slice(-STEADY_WINDOW);
  return { ops: fit(median(last) * (options.roundMs / 1000)), warmupRates, warmupMs: warmNs / 1e6, steady };
}

/** Latency rounds per measurement: at most this many (after one sizing round). */
const MAX_LATENCY_ROUNDS = 4;
/** Latency rounds hold at least this many calls (p99 needs samples), at most this many. */
const MIN_LATENCY_CALLS = 1_000;
const MAX_LATENCY_CALLS = 200_000;

/**
 * One untimed latency round (the subject is already warm from its throughput rounds); returns
 * the calls per round that fit --round-ms at the rate it showed, within the bounds.
 */
async function sizeLatency(worker: Worker, subject: string, callers: number, fromTask: boolean, options: Options): Promise<number> {
  const fit = (calls: number) => Math.max(callers, Math.ceil(calls / callers) * callers);
  const sample = await worker.latency(subject, callers, fit(Math.max(callers * 2, 100)), fromTask);
  const rate = (sample.calls / sample.ns) * 1e9;
  return fit(Math.min(MAX_LATENCY_CALLS, Math.max(MIN_LATENCY_CALLS, callers * 2, rate * (options.roundMs / 1000))));
}

async function runScenario(spec: ScenarioSpec, options: Options): Promise<ScenarioResult> {
  const started = new Date();
  const env = environment();
  const roles = new Set<Role>([...spec.subjects.map((s) => s.role), ...spec.probes.map((p) => p.role)]);
  const workers = new Map<Role, Worker>();
  // NOTE: the pristine worker starts first and is set up first; nothing it runs loads the runtime.
  for (const role of ROLES.filter((r) => roles.has(r))) workers.set(role, Worker.start(role, options.gc));
  const worker = (role: Role) => workers.get(role)!;
  try {
    process.stdout.write(`\n[${spec.id}] setting up ${spec.subjects.length} subjects, ${options.concurrency} callers each\n`);
    for (const subject of spec.subjects) await worker(subject.role).setup(spec.id, subject.id, options.concurrency);

    const plan = new Map<string, Calibration>();
    for (const subject of spec.subjects) {
      const calibrated = await calibrate(worker(subject.role), subject.id, options);
      plan.set(subject.id, calibrated);
      process.stdout.write(
        `[${spec.id}] ${subject.id}: warmed up in ${calibrated.warmupRates.length} round${calibrated.warmupRates.length === 1 ? '' : 's'} (${(calibrated.warmupMs / 1000).toFixed(1)} s${calibrated.steady ? '' : ', still climbing at the cap'}), ${calibrated.ops} ops per round\n`,
      );
    }

    const rates = new Map<string, number[]>(spec.subjects.map((s) => [s.id, []]));
    const cleanups = new Map<string, number[]>(spec.subjects.map((s) => [s.id, []]));
    const figures = new Map<string, Map<string, number[]>>(spec.subjects.map((s) => [s.id, new Map()]));
    for (let r = 0; r < options.rounds; r++) {
      // Rotate the order every round so no subject always runs first (or right after another).
      const order = spec.subjects.map((_, i) => spec.subjects[(i + r) % spec.subjects.length]!);
      for (const subject of order) {
        const reply = await worker(subject.role).round(subject.id, plan.get(subject.id)!.ops);
        rates.get(subject.id)!.push((reply.ops / reply.ns) * 1e9);
        if (reply.cleanupNs > 0) cleanups.get(subject.id)!.push(reply.cleanupNs / reply.ops);
        for (const [name, value] of Object.entries(reply.figures ?? {})) {
          const series = figures.get(subject.id)!;
          series.set(name, [...(series.get(name) ?? []), value]);
        }
      }
      process.stdout.write(`[${spec.id}] round ${r + 1}/${options.rounds} done\n`);
    }

    const latency: LatencyResult[] = [];
    const latencySpecs = (spec.latency ?? []).map((l) => ({
      ...l,
      callers: l.callers === 'all' ? options.concurrency : l.callers,
      role: spec.subjects.find((s) => s.id === l.subject)!.role,
    }));
    if (latencySpecs.length > 0) {
      const sizes = new Map<string, number>();
      for (const l of latencySpecs) sizes.set(l.id, await sizeLatency(worker(l.role), l.subject, l.callers, l.fromTask === true, options));
      process.stdout.write(`[${spec.id}] latency: ${latencySpecs.map((l) => `${l.id} ${sizes.get(l.id)} calls`).join(', ')} per round\n`);
      const samples = new Map<string, LatencySample[]>(latencySpecs.map((l) => [l.id, []]));
      const latencyRounds = Math.min(options.rounds, MAX_LATENCY_ROUNDS);
      for (let r = 0; r < latencyRounds; r++) {
        const order = latencySpecs.map((_, i) => latencySpecs[(i + r) % latencySpecs.length]!);
        for (const l of order) samples.get(l.id)!.push(await worker(l.role).latency(l.subject, l.callers, sizes.get(l.id)!, l.fromTask === true));
        process.stdout.write(`[${spec.id}] latency round ${r + 1}/${latencyRounds} done\n`);
      }
      for (const l of latencySpecs) {
        const s = samples.get(l.id)!;
        latency.push({
          id: l.id,
          label: l.label,
          subject: l.subject,
          callers: l.callers,
          callsPerRound: sizes.get(l.id)!,
          p50Us: summarize(s.map((x) => x.p50Us)),
          p99Us: summarize(s.map((x) => x.p99Us)),
          meanUs: summarize(s.map((x) => x.meanUs)),
          maxUs: summarize(s.map((x) => x.maxUs)),
          rate: summarize(s.map((x) => (x.calls / x.ns) * 1e9)),
        });
      }
    }

    const probes: ProbeResult[] = [];
    for (const probe of spec.probes) {
      const summary = await worker(probe.role).probe(spec.id, probe.id, options.concurrency);
      probes.push({ id: probe.id, label: probe.label, role: probe.role, unit: probe.unit, summary });
    }
    if (spec.probes.length > 0) process.stdout.write(`[${spec.id}] ${spec.probes.length} probes done\n`);

    const statuses: StatusReply[] = [];
    for (const w of workers.values()) statuses.push(await w.status());
    const pristine = statuses.find((s) => s.role === 'pristine');
    if (pristine?.runtimeLoaded === true) throw new Error('the pristine worker loaded nestjs-grains: its baseline is not pristine');
    for (const w of workers.values()) await w.teardown();

    const subjects: SubjectResult[] = spec.subjects.map((s) => {
      const cleanup = cleanups.get(s.id)!;
      const rate = summarize(rates.get(s.id)!);
      const calibration = plan.get(s.id)!;
      return {
        id: s.id,
        label: s.label,
        role: s.role,
        process: s.process ?? ROLE_DESCRIPTION[s.role],
        opsPerRound: calibration.ops,
        rate,
        warmupRates: calibration.warmupRates,
        warmupMs: calibration.warmupMs,
        warmupSteady: calibration.steady,
        ...(cleanup.length > 0 ? { cleanupNsPerOp: summarize(cleanup) } : {}),
        ...(figures.get(s.id)!.size > 0 ? { figures: Object.fromEntries([...figures.get(s.id)!].map(([name, values]) => [name, summarize(values)])) } : {}),
        ...(s.target === undefined ? {} : { target: s.target, meetsTarget: rate.median >= s.target }),
      };
    });
    const byId = new Map(subjects.map((s) => [s.id, s]));
    const ratios: RatioResult[] = spec.ratios.map((ratio) => {
      const num = byId.get(ratio.numerator)!.rate;
      const den = byId.get(ratio.denominator)!.rate;
      const value = num.median / den.median;
      return {
        id: ratio.id,
        label: ratio.label,
        numerator: ratio.numerator,
        denominator: ratio.denominator,
        value,
        paired: summarize(pairedRatios(num.values, den.values)),
        ...(ratio.target === undefined ? {} : { target: ratio.target, meetsTarget: value >= ratio.target }),
      };
    });
    const breakdown =
      spec.breakdown?.({
        rate: Object.fromEntries(subjects.map((s) => [s.id, s.rate.median])),
        probe: Object.fromEntries(probes.map((p) => [p.id, p.summary.median])),
        cleanupNsPerOp: Object.fromEntries(subjects.filter((s) => s.cleanupNsPerOp !== undefined).map((s) => [s.id, s.cleanupNsPerOp!.median])),
      }) ?? [];
    const finished = new Date();
    return {
      scenario: spec.id,
      title: spec.title,
      description: spec.description,
      ...(spec.notes === undefined ? {} : { notes: spec.notes }),
      unit: spec.unit,
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      durationS: (finished.getTime() - started.getTime()) / 1000,
      environment: env,
      options,
      subjects,
      ratios,
      probes,
      latency,
      breakdown,
      workers: statuses,
    };
  } finally {
    for (const w of workers.values()) await w.close();
  }
}

function report(result: ScenarioResult): string {
  const o = result.options;
  const out: string[] = [];
  out.push(`== ${result.title} — ${result.description}`);
  out.push(`   ${o.concurrency} concurrent callers; ${o.rounds} timed rounds of ~${o.roundMs} ms per subject, interleaved; median [min … max] of rounds`);
  const notes = result.notes ?? [
    'pristine rows: a separate child process that never imports nestjs-grains (so no AsyncLocalStorage promise hooks); ' +
      "runtime rows: a child where grain turns ran with the default callChains ('references', no AsyncLocalStorage); " +
      `callChains: 'async-local-storage' rows: a child whose members track call chains with AsyncLocalStorage (${alsHooks()}).`,
  ];
  for (const note of notes) out.push(`   ${note}`);
  out.push('');
  out.push(
    table(
      [
        ['subject', 'process', `${result.unit}/s median`, 'min', 'max', 'ns/op'],
        ...result.subjects.map((s) => [s.label, s.process, fmtRate(s.rate.median), fmtRate(s.rate.min), fmtRate(s.rate.max), fmtNum(1e9 / s.rate.median)]),
      ],
      ['left', 'left', 'right', 'right', 'right', 'right'],
    ),
  );
  for (const s of result.subjects) {
    if (s.target !== undefined)
      out.push(`  target: ${s.label} >= ${fmtRate(s.target)} ${result.unit}/s; median here ${fmtRate(s.rate.median)}: ${s.meetsTarget ? 'met' : 'NOT met'}`);
  }
  out.push('');
  out.push(
    table(
      [
        ['ratio', 'median', 'paired min … max', 'target'],
        ...result.ratios.map((r) => [
          r.label,
          fmtRatio(r.value),
          `${fmtRatio(r.paired.min)} … ${fmtRatio(r.paired.max)}`,
          r.target === undefined
            ? ''
            : `>= ${r.target} (${fmtRate(r.target * result.subjects.find((s) => s.id === r.denominator)!.rate.median)} ${result.unit}/s here): ${r.meetsTarget ? 'met' : 'NOT met'}`,
        ]),
      ],
      ['left', 'right', 'right', 'left'],
    ),
  );
  const figureNames = [...new Set(result.subjects.flatMap((s) => Object.keys(s.figures ?? {})))];
  if (figureNames.length > 0) {
    out.push('');
    out.push(
      table(
        [
          ['per timed round (medians)', ...figureNames],
          ...result.subjects.map((s) => [
            s.label,
            ...figureNames.map((name) => (s.figures?.[name] === undefined ? '' : fmtNum(s.figures[name]!.median, name.includes('%') ? 0 : 2))),
          ]),
        ],
        ['left', ...figureNames.map(() => 'right' as const)],
      ),
    );
  }
  if (result.latency.length > 0) {
    const range = (s: Summary) => `[${fmtNum(s.min, 0)} … ${fmtNum(s.max, 0)}]`;
    out.push('');
    out.push(
      table(
        [
          ['latency, every call timed (µs)', 'callers', 'p50 median', 'p50 range', 'p99 median', 'p99 range', 'mean', 'calls/s', 'calls/round'],
          ...result.latency.map((l) => [
            l.label,
            String(l.callers),
            fmtNum(l.p50Us.median, 0),
            range(l.p50Us),
            fmtNum(l.p99Us.median, 0),
            range(l.p99Us),
            fmtNum(l.meanUs.median, 0),
            fmtRate(l.rate.median),
            String(l.callsPerRound),
          ]),
        ],
        ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
      ),
    );
  }
  if (result.probes.length > 0) {
    out.push('');
    out.push(
      table(
        [
          ['probe', 'process', 'median', 'min', 'max', 'unit'],
          ...result.probes.map((p) => [p.label, p.role, fmtNum(p.summary.median, 2), fmtNum(p.summary.min, 2), fmtNum(p.summary.max, 2), p.unit]),
        ],
        ['left', 'left', 'right', 'right', 'right', 'left'],
      ),
    );
  }
  if (result.breakdown.length > 0) {
    out.push('');
    out.push(
      table(
        [
          ['where the time goes (medians)', 'value', 'share', 'note'],
          ...result.breakdown.map((b) => [b.label, `${fmtNum(b.value)} ${b.unit}`, fmtPct(b.share), b.note ?? '']),
        ],
        ['left', 'right', 'right', 'left'],
      ),
    );
  }
  const problems = result.workers.reduce((n, w) => n + w.loggedProblems, 0);
  out.push('');
  out.push(
    `   workers: ${result.workers.map((w) => `${w.role} pid ${w.pid} (runtime loaded: ${w.runtimeLoaded ? 'yes' : 'no'}, heap ${w.heapUsedMb.toFixed(0)} MB)`).join('; ')}` +
      (problems > 0 ? `; RUNTIME LOGGED ${problems} WARNING(S)/ERROR(S)` : '; runtime logged no warnings'),
  );
  return out.join('\n');
}

// CPU profile (--profile) ----------------------------------------------------------------------

const PROFILE_DRIVER = fileURLToPath(new URL('./profile-local-call.js', import.meta.url));

async function profileLocalCall(subject: string, stamp: string): Promise<{ subject: string; driver: unknown; summary: ProfileSummary }> {
  const dir = join(RESULTS_DIR, 'profiles');
  const name = `local-call-${subject}-${stamp}.cpuprofile`;
  const output = await new Promise<string>((resolve, reject) => {
    // NOTE: sampled every 250 µs (default 1 ms) for more samples over the ~3 s driver run.
    const child = spawn(
      process.execPath,
      ['--cpu-prof', '--cpu-prof-interval=250', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}`, PROFILE_DRIVER, subject, '3'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`profile driver exited with code ${code}`));
    });
  });
  const file = join(dir, name);
  statSync(file);
  const driver = JSON.parse(output.trim()) as { windowUs?: [number, number] };
  return { subject, driver, summary: summarizeProfile(file, REPO_ROOT, 15, driver.windowUs) };
}

function reportProfile(p: { subject: string; driver: unknown; summary: ProfileSummary }): string {
  const s = p.summary;
  const out = [
    `== CPU profile, local call (${p.subject}): ${s.file.slice(REPO_ROOT.length)}`,
    `   ${s.samples} samples over ${fmtNum(s.totalMs, 0)} ms of timed rounds (start-up excluded); driver: ${JSON.stringify(p.driver)}`,
    '',
    table(
      [['self time, by function', 'location', 'ms', 'share'], ...s.top.map((t) => [t.functionName, t.location, fmtNum(t.selfMs, 0), fmtPct(t.share)])],
      ['left', 'left', 'right', 'right'],
    ),
    '',
    table(
      [['self time, by file', 'ms', 'share'], ...s.byFile.slice(0, 10).map((f) => [f.file, fmtNum(f.selfMs, 0), fmtPct(f.share)])],
      ['left', 'right', 'right'],
    ),
  ];
  return out.join('\n');
}

// Main -------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { scenarios, redis, membership, gossip, options } = parseOptions();
  const started = new Date();
  const stamp = timestamp(started);
  const env = environment();
  process.stdout.write(
    `nestjs-grains bench — node ${env.node} (V8 ${env.v8}), ${env.cpus} × ${env.cpuModel}, loadavg ${env.loadavg.join(' ')}, ` +
      `commit ${env.gitCommit?.slice(0, 10) ?? 'n/a'}${env.gitDirty ? ' (dirty)' : ''}\n`,
  );
  const results: ScenarioResult[] = [];
  const reports: string[] = [];
  for (const spec of scenarios) {
    const result = await runScenario(spec, options);
    results.push(result);
    writeJson(`${spec.id}-${stamp}.json`, result);
    reports.push(report(result));
  }
  // The Redis group: its own processes (redis-server, members, the SET NX baseline) and reports.
  const redisGroup = redis.length === 0 ? undefined : await runRedisGroup(redis, options, stamp);
  if (redisGroup !== undefined) reports.push(...redisGroup.reports);
  // The membership group: its own processes (redis-server, members; the Consul test agent in this process).
  const membershipGroup = membership.length === 0 ? undefined : await runMembershipGroup(membership, { quick: options.quick }, stamp);
  if (membershipGroup !== undefined) reports.push(...membershipGroup.reports);
  // The gossip group: its own member processes (no Redis, no Consul).
  const gossipGroup = gossip.length === 0 ? undefined : await runGossipGroup(gossip, { quick: options.quick }, stamp);
  if (gossipGroup !== undefined) reports.push(...gossipGroup.reports);
  const profiles: Array<{ subject: string; driver: unknown; summary: ProfileSummary }> = [];
  if (options.profile) {
    for (const subject of ['grain-distinct', 'grain-one']) {
      process.stdout.write(`\n[profile] local-call ${subject} under --cpu-prof\n`);
      profiles.push(await profileLocalCall(subject, stamp));
    }
    reports.push(...profiles.map(reportProfile));
  }
  // NOTE: the remote-call scenario always profiles both of its members (a separate run of
  // about 3 s under --cpu-prof, after the measured rounds, so the profiler never slows them).
  let remoteProfile: RemoteProfile | undefined;
  if (scenarios.some((s) => s.id === 'remote-call')) {
    process.stdout.write(`\n[profile] remote-call: member A and member B under --cpu-prof\n`);
    remoteProfile = await profileRemoteCall(stamp, options.quick ? 1 : 1.5);
    reports.push(reportRemoteProfile(remoteProfile));
  }
  const finished = new Date();
  const latest = {
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationS: (finished.getTime() - started.getTime()) / 1000,
    environment: env,
    loadavgAtEnd: environment().loadavg,
    options,
    scenarios: results,
    ...(redisGroup === undefined ? {} : { redisScenarios: redisGroup.results }),
    ...(membershipGroup === undefined ? {} : { membershipScenarios: membershipGroup.results }),
    ...(gossipGroup === undefined ? {} : { gossipScenarios: gossipGroup.results }),
    ...(profiles.length > 0 ? { profiles } : {}),
    ...(remoteProfile === undefined ? {} : { remoteProfile }),
  };
  const latestPath = writeJson('latest.json', latest);
  process.stdout.write(`\n${reports.join('\n\n')}\n\n`);
  process.stdout.write(
    `results: ${[...results, ...(redisGroup?.results ?? []), ...(membershipGroup?.results ?? []), ...(gossipGroup?.results ?? [])].map((r) => `bench/results/${r.scenario}-${stamp}.json`).join(', ')}, ${latestPath}` +
      ` (total ${latest.durationS.toFixed(1)} s, loadavg at end ${latest.loadavgAtEnd.join(' ')})\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});

/** What AsyncLocalStorage costs the whole process on this Node (the runtime children run the same binary and flags). */
function alsHooks(): string {
  return asyncContextIsCheap() ? 'no promise hooks on this Node' : 'promise hooks for the whole process on this Node';
}
