/**
 * The Redis scenarios (group `redis`), driven from the orchestrator process (bench/run.ts):
 *
 * - `activation-redis`: new activations per second across 2 member processes with
 *   RedisIdentityLookup (every call a new identity; callers split over both members), beside
 *   ioredis `SET key value NX` from one process with one connection, same concurrency, same
 *   run. Also Redis round trips per activation, measured from `INFO commandstats`.
 * - `cached-call-redis`: calls per second to grains already active (each caller calls its own
 *   grain again; half of them live on the other member), beside the same scenario on two
 *   members with HashIdentityLookup. Every timed round must leave Redis untouched apart from
 *   lease renewals: a check that fails the run.
 * - `failover`: SIGKILL of a member hosting grains, at a random point of its renew cycle;
 *   the time until a call from the surviving member to one of its grains succeeds on a new
 *   activation. 20 kills; the killed member is restarted (same port, so the same member id)
 *   for the next one.
 *
 * Processes: one redis-server (support/redis-server.ts: free loopback port, no persistence,
 * noeviction), members forked from dist/bench/redis/member.js, the SET NX baseline from
 * dist/bench/redis/set-nx.js. All are stopped (or killed) at the end and on failure.
 *
 * Redis commands are counted with `INFO commandstats` before and after each round (outside
 * the timer). Redis counts the commands a Lua script runs too, which tells the scripts apart:
 * a lease renewal runs GET, GET, PEXPIRE; a claim batch GET, INFO, GET, TYPE, and one SADD when it
 * claimed anything, and per new identity HMGET, HSET (the whole entry, epoch included: one per
 * claim); a resolve HGETs; a release HMGET, SREM, HDEL.
 */
import { performance } from 'node:perf_hooks';
import { fmtNum, fmtRate, fmtRatio, table } from '../support/format.js';
import { type GroupOutput, GroupResults, type GroupScenarioResult } from '../support/group-results.js';
import { freePorts, MemberProcess } from '../support/member-process.js';
import { type BenchRedisServer, parseCommandStats, parseInfo, startRedisServer } from '../support/redis-server.js';
import { pairedRatios, type Summary, summarize } from '../support/stats.js';
import { hrNow, sleep } from '../support/timing.js';
import { builtScript, ServerChild } from '../remote/child-process.js';
import type { MemberConfig, MemberStats, PollReply, TimedReply } from './protocol.js';
import type { Whereabouts } from './session-grain.js';

export const REDIS_SCENARIOS = ['activation-redis', 'cached-call-redis', 'failover'] as const;
export type RedisScenarioId = (typeof REDIS_SCENARIOS)[number];

export interface RedisGroupOptions {
  readonly rounds: number;
  readonly roundMs: number;
  readonly warmup: number;
  readonly concurrency: number;
  readonly quick: boolean;
  /** Kills of the failover scenario. */
  readonly kills: number;
}

/** The issue's targets. */
const ACTIVATION_TARGET = 20_000;
const FAILOVER_TARGET_MS = 2_000;
/** The fast lease preset (lib/cluster/identity/redis/redis-lookup-options.ts, FAST_LEASE). */
const FAST_LEASE = { leaseMs: 1_500, renewIntervalMs: 250, marginMs: 250, stallToleranceMs: 750 };
const KEY_PREFIX = 'grains';
/** Database of each cluster, so one scenario's keys never show up in another's SCAN. */
const DB_ACTIVATION = 0;
const DB_SET_NX = 1;
const DB_CACHED = 2;
/** Failover: poll calls time out after this long; a kill waits at most FAILOVER_MAX_MS for a call to succeed. */
const POLL_CALL_TIMEOUT_MS = 250;
const FAILOVER_MAX_MS = 5_000;
/** Grains the victim hosts per kill (the survivor has called each of them once). */
const FAILOVER_GRAINS = 10;
/** A round must not take longer than this (one IPC request). */
const ROUND_TIMEOUT_MS = 120_000;

// Redis: admin connection, command counts ----------------------------------------------------

type Counts = Readonly<Record<string, number>>;

interface RedisSnapshot {
  readonly calls: Counts;
  /** used_cpu_user + used_cpu_sys of the server (µs). */
  readonly cpuUs: number;
  readonly atNs: number;
}

type Admin = import('ioredis').Redis;

class RedisProbe {
  constructor(
    readonly server: BenchRedisServer,
    private readonly admin: Admin,
  ) {}

  /** Two INFO commands (counted as `info`, which the accounting leaves out). */
  async snapshot(): Promise<RedisSnapshot> {
    const [commandstats, cpu] = await Promise.all([this.admin.info('commandstats'), this.admin.info('cpu')]);
    const c = parseInfo(cpu);
    return { calls: parseCommandStats(commandstats), cpuUs: (Number(c['used_cpu_user']) + Number(c['used_cpu_sys'])) * 1e6, atNs: hrNow() };
  }

  /** PTTL of `key` in database `db`, in one round trip (a pipeline: SELECT db, PTTL, SELECT 0). */
  async pttl(db: number, key: string): Promise<number> {
    const replies = await this.admin.pipeline().select(db).pttl(key).select(0).exec();
    const [error, ttl] = replies?.[1] ?? [new Error('no reply'), null];
    if (error) throw error;
    return Number(ttl);
  }

  async flushDb(db: number): Promise<void> {
    await this.admin.select(db);
    await this.admin.flushdb('ASYNC');
    await this.admin.select(0);
  }
}

function diff(after: Counts, before: Counts): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, n] of Object.entries(after)) {
    const d = n - (before[name] ?? 0);
    if (d !== 0) out[name] = d;
  }
  return out;
}

/** What the commands of a window were, by the scripts' signatures (see the module comment). */
interface Accounting {
  /** Lease renewals that extended a lease (PEXPIRE runs in the renew script only). */
  readonly renewals: number;
  /** Claims that wrote an entry (the claim script's one HSET per claim; nothing else HSETs). */
  readonly claims: number;
  /** Commands only lookups, releases and cleanups of lapsed entries run (HGET, HMGET, HSET, SADD, SREM, HDEL, SPOP). */
  readonly lookupCommands: number;
  /** Round trips: commands sent by clients (EVALSHA, EVAL, and anything not run from a script), INFO left out. */
  readonly roundTrips: number;
  /** The cleanup timer (RedisIdentityLookup.cleanupLapsed): SCANs, and cleanup scripts that found the lease alive (GET, EXISTS). */
  readonly scans: number;
  readonly aliveCleanups: number;
  /** EVALSHA/EVAL beyond renewals and those cleanup scripts. */
  readonly scriptsBeyondRenewals: number;
  /** Anything else (by name), e.g. a top-level GET. */
  readonly unexplained: Readonly<Record<string, number>>;
}

const SCRIPT_ONLY = new Set(['hget', 'hmget', 'hset', 'hsetnx', 'sadd', 'srem', 'hdel', 'spop', 'scard', 'pexpire', 'exists', 'del', 'type']);
const LOOKUP_ONLY = ['hget', 'hmget', 'hset', 'hsetnx', 'sadd', 'srem', 'hdel', 'spop', 'type'];
/** The orchestrator's own commands. */
const ADMIN = new Set(['info', 'pttl', 'select', 'flushdb']);

function account(d: Readonly<Record<string, number>>): Accounting {
  const n = (name: string) => d[name] ?? 0;
  const renewals = n('pexpire');
  const scripts = n('evalsha') + n('eval');
  const lookupCommands = LOOKUP_ONLY.reduce((sum, name) => sum + n(name), 0);
  // NOTE: with no lookups in the window, every EXISTS comes from a cleanup script that found the lease alive.
  const aliveCleanups = lookupCommands === 0 ? n('exists') : 0;
  let roundTrips = 0;
  const unexplained: Record<string, number> = {};
  for (const [name, count] of Object.entries(d)) {
    if (ADMIN.has(name) || SCRIPT_ONLY.has(name) || name === 'get' || name === 'set') continue;
    roundTrips += count; // evalsha, eval, scan, …
    if (name !== 'evalsha' && name !== 'eval' && name !== 'scan') unexplained[name] = count;
  }
  if (lookupCommands === 0) {
    // Scripts run GET twice per renewal and once per cleanup; more is a GET sent by a client.
    const scriptGets = 2 * renewals + aliveCleanups;
    if (n('get') > scriptGets) unexplained['get'] = n('get') - scriptGets;
    // SET runs in the join script only (and is what the SET NX baseline sends).
    if (n('set') > 0) unexplained['set'] = n('set');
  }
  return {
    renewals,
    claims: n('hset'),
    lookupCommands,
    roundTrips,
    scans: n('scan'),
    aliveCleanups,
    scriptsBeyondRenewals: scripts - renewals - aliveCleanups,
    unexplained,
  };
}

// Members -----------------------------------------------------------------------------------

const MEMBER_SCRIPT = () => builtScript('./member.js', import.meta.url);
const SET_NX_SCRIPT = () => builtScript('./set-nx.js', import.meta.url);

/** One member process (bench/redis/member.ts). */
class Member extends MemberProcess<MemberConfig, MemberStats> {
  protected readonly script = MEMBER_SCRIPT;

  /** Forks the process; resolves, once it knows every listed member, with the ms that took. */
  async start(): Promise<number> {
    const t0 = performance.now();
    await this.fork();
    return performance.now() - t0;
  }

  /** Become this member in `spare` (a member process started as a spare, runtime loaded): starts the cluster on this member's port. */
  async startFrom(spare: ServerChild): Promise<number> {
    const t0 = performance.now();
    await spare.request<string>('start', this.config, 30_000);
    this.child = spare;
    return performance.now() - t0;
  }

  /** SIGKILL; resolves once the process exited (the failover scenario's crash). */
  async killAndWait(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    await child?.killAndWait();
  }
}

/** Members of one cluster, each on its own loopback port, all listed in every member's StaticProvider. */
class MemberGroup {
  private constructor(readonly members: Member[]) {}

  static async start(clusterName: string, lookup: 'redis' | 'hash', count: number, redisUrl: string | undefined): Promise<MemberGroup> {
    const ports = await freePorts(count);
    const addresses = ports.map((p) => `127.0.0.1:${p}`);
    const members = ports.map(
      (port, k) =>
        new Member({
          name: `${clusterName} member ${String.fromCharCode(65 + k)}`,
          clusterName,
          lookup,
          ...(redisUrl === undefined ? {} : { redisUrl }),
          port,
          members: addresses,
        }),
    );
    const group = new MemberGroup(members);
    const started = await Promise.allSettled(members.map((m) => m.start()));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) {
      await group.stop();
      throw failed.reason;
    }
    return group;
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.members.map((m) => m.stop()));
  }

  async kill(): Promise<void> {
    await Promise.allSettled(this.members.map((m) => m.killAndWait()));
  }
}

/** Callers per member: `concurrency` split as evenly as possible. */
function split(concurrency: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, k) => Math.floor(concurrency / parts) + (k < concurrency % parts ? 1 : 0));
}

/** Wall time of a round run by several processes at once: from the first start to the last end (one monotonic clock). */
function span(replies: readonly TimedReply[]): number {
  return Math.max(...replies.map((r) => r.endNs)) - Math.min(...replies.map((r) => r.startNs));
}

async function cpuOf(children: readonly { request<T>(op: string): Promise<T> }[]): Promise<number> {
  const values = await Promise.all(children.map((c) => c.request<number>('cpu')));
  return values.reduce((a, b) => a + b, 0);
}

// Rounds: calibration and interleaving (as bench/run.ts does for the worker scenarios) ------

interface RoundResult {
  readonly ns: number;
  readonly ops: number;
  readonly figures?: Readonly<Record<string, number>>;
}

interface TimedSubject {
  readonly id: string;
  readonly label: string;
  readonly process: string;
  /** `timed`: a measured round (checks that only apply to them run then). */
  round(ops: number, timed: boolean): Promise<RoundResult>;
}

export interface SubjectResult {
  readonly id: string;
  readonly label: string;
  readonly process: string;
  readonly opsPerRound: number;
  readonly rate: Summary;
  readonly warmupRates: readonly number[];
  readonly figures: Readonly<Record<string, Summary>>;
  readonly target?: number;
  readonly meetsTarget?: boolean;
}

export interface RatioResult {
  readonly label: string;
  readonly numerator: string;
  readonly denominator: string;
  readonly value: number;
  readonly paired: Summary;
}

/** Warm-up rounds beyond --warmup, at most, while rounds are still too short (see calibrate). */
const MAX_EXTRA_WARMUP = 6;

async function calibrate(subject: TimedSubject, options: RedisGroupOptions): Promise<{ ops: number; warmupRates: number[] }> {
  const c = options.concurrency;
  const fit = (ops: number) => Math.max(c * 2, Math.ceil(ops / c) * c);
  let ops = fit(c * 2);
  const floorNs = Math.min(25, options.roundMs / 4) * 1e6;
  for (let i = 0; i < 8; i++) {
    const { ns } = await subject.round(ops, false);
    if (ns >= floorNs) break;
    ops = fit(ops * Math.min(10, Math.max(2, (floorNs / Math.max(ns, 1)) * 1.2)));
  }
  // NOTE: these subjects speed up a lot over their first rounds (JIT, first resolves, heap
  // growth), so warm-up goes on (bounded) until a round sized from the last rate lasts at
  // least half of --round-ms, and the last rate sizes the timed rounds.
  const warmupRates: number[] = [];
  for (let i = 0; i < Math.max(1, options.warmup) + MAX_EXTRA_WARMUP; i++) {
    const { ns, ops: done } = await subject.round(ops, false);
    const rate = (done / ns) * 1e9;
    warmupRates.push(rate);
    ops = fit(rate * (options.roundMs / 1000));
    if (i + 1 >= Math.max(1, options.warmup) && ns >= (options.roundMs / 2) * 1e6) break;
  }
  return { ops, warmupRates };
}

async function measure(
  scenario: string,
  subjects: readonly TimedSubject[],
  options: RedisGroupOptions,
  targets: Readonly<Record<string, number>> = {},
): Promise<SubjectResult[]> {
  const plan = new Map<string, { ops: number; warmupRates: number[] }>();
  for (const s of subjects) {
    plan.set(s.id, await calibrate(s, options));
    process.stdout.write(`[${scenario}] ${s.id}: warmed up, ${plan.get(s.id)!.ops} ops per round\n`);
  }
  const rates = new Map<string, number[]>(subjects.map((s) => [s.id, []]));
  const figures = new Map<string, Map<string, number[]>>(subjects.map((s) => [s.id, new Map()]));
  for (let r = 0; r < options.rounds; r++) {
    const order = subjects.map((_, i) => subjects[(i + r) % subjects.length]!);
    for (const s of order) {
      const result = await s.round(plan.get(s.id)!.ops, true);
      rates.get(s.id)!.push((result.ops / result.ns) * 1e9);
      for (const [name, value] of Object.entries(result.figures ?? {})) {
        const series = figures.get(s.id)!;
        series.set(name, [...(series.get(name) ?? []), value]);
      }
    }
    process.stdout.write(`[${scenario}] round ${r + 1}/${options.rounds} done\n`);
  }
  return subjects.map((s) => {
    const rate = summarize(rates.get(s.id)!);
    const target = targets[s.id];
    return {
      id: s.id,
      label: s.label,
      process: s.process,
      opsPerRound: plan.get(s.id)!.ops,
      rate,
      warmupRates: plan.get(s.id)!.warmupRates,
      figures: Object.fromEntries([...figures.get(s.id)!].map(([name, values]) => [name, summarize(values)])),
      ...(target === undefined ? {} : { target, meetsTarget: rate.median >= target }),
    };
  });
}

function ratio(subjects: readonly SubjectResult[], label: string, numerator: string, denominator: string): RatioResult {
  const num = subjects.find((s) => s.id === numerator)!.rate;
  const den = subjects.find((s) => s.id === denominator)!.rate;
  return { label, numerator, denominator, value: num.median / den.median, paired: summarize(pairedRatios(num.values, den.values)) };
}

// activation (redis) ------------------------------------------------------------------------

class RedisActivationSubject implements TimedSubject {
  readonly id = 'grain-redis';
  readonly label = 'grain activation + call, RedisIdentityLookup';
  readonly process: string;
  private seq = 0;

  constructor(
    private readonly group: MemberGroup,
    private readonly redis: RedisProbe,
    private readonly concurrency: number,
  ) {
    this.process = `${group.members.length} member processes (${split(concurrency, group.members.length).join(' + ')} callers) + redis-server`;
  }

  async round(ops: number): Promise<RoundResult> {
    const members = this.group.members;
    const callers = split(this.concurrency, members.length);
    const per = Math.max(1, Math.ceil(ops / this.concurrency));
    const prefix = `a${this.seq++}.`;
    const statsBefore = await Promise.all(members.map((m) => m.stats()));
    const cpuBefore = await cpuOf(members);
    const before = await this.redis.snapshot();
    const replies = await Promise.all(
      members.map((m, k) => m.request<TimedReply>('activate', { prefix: `${prefix}${k}.`, callers: callers[k]!, per }, ROUND_TIMEOUT_MS)),
    );
    const after = await this.redis.snapshot();
    const cpuAfter = await cpuOf(members);
    const statsAfter = await Promise.all(members.map((m) => m.stats()));
    const done = replies.reduce((a, r) => a + r.ops, 0);
    const ns = span(replies);
    // Checks (outside the timer): every member activated exactly its callers' identities, each with one claim.
    members.forEach((m, k) => {
      const activated = statsAfter[k]!.activated - statsBefore[k]!.activated;
      if (activated !== callers[k]! * per) throw new Error(`${m.name} activated ${activated} grains, expected ${callers[k]! * per}`);
      if (statsAfter[k]!.loggedProblems > 0)
        throw new Error(`${m.name} logged ${statsAfter[k]!.loggedProblems} problem(s), last: ${statsAfter[k]!.lastProblem}`);
    });
    const a = account(diff(after.calls, before.calls));
    if (a.claims !== done) throw new Error(`Redis saw ${a.claims} claims (HSET) for ${done} activations`);
    const windowNs = after.atNs - before.atNs;
    return {
      ns,
      ops: done,
      figures: {
        'Redis round trips/activation': (a.roundTrips - a.renewals) / done,
        'claims/activation': a.claims / done,
        'Redis CPU µs/activation': (after.cpuUs - before.cpuUs) / done,
        'Redis busy %': (100 * (after.cpuUs - before.cpuUs)) / (windowNs / 1000),
        'members CPU µs/activation': (cpuAfter - cpuBefore) / done,
      },
    };
  }
}

class SetNxSubject implements TimedSubject {
  readonly id = 'set-nx';
  readonly label = 'ioredis SET key value NX, new keys';
  readonly process = '1 process, 1 ioredis connection + redis-server';
  private seq = 0;

  constructor(
    private readonly child: ServerChild,
    private readonly redis: RedisProbe,
    private readonly concurrency: number,
  ) {}

  async round(ops: number): Promise<RoundResult> {
    const per = Math.max(1, Math.ceil(ops / this.concurrency));
    const cpuBefore = await cpuOf([this.child]);
    const before = await this.redis.snapshot();
    const reply = await this.child.request<TimedReply>('round', { prefix: `k${this.seq++}.`, callers: this.concurrency, per }, ROUND_TIMEOUT_MS);
    const after = await this.redis.snapshot();
    const cpuAfter = await cpuOf([this.child]);
    await this.child.request('flush'); // untimed: keeps Redis's memory flat
    const d = diff(after.calls, before.calls);
    const a = account(d);
    const windowNs = after.atNs - before.atNs;
    return {
      ns: reply.endNs - reply.startNs,
      ops: reply.ops,
      figures: {
        'Redis round trips/activation': ((d['set'] ?? 0) + a.roundTrips - a.renewals) / reply.ops,
        'Redis CPU µs/activation': (after.cpuUs - before.cpuUs) / reply.ops,
        'Redis busy %': (100 * (after.cpuUs - before.cpuUs)) / (windowNs / 1000),
        'members CPU µs/activation': (cpuAfter - cpuBefore) / reply.ops,
      },
    };
  }
}

// cached call (redis) -----------------------------------------------------------------------

interface CachedCheck {
  readonly round: number;
  readonly renewals: number;
  readonly expectedRenewals: number;
  readonly lookupCommands: number;
  readonly scriptsBeyondRenewals: number;
  readonly scans: number;
  readonly aliveCleanups: number;
  readonly unexplained: Readonly<Record<string, number>>;
  readonly ok: boolean;
}

class CachedSubject implements TimedSubject {
  readonly process: string;
  readonly checks: CachedCheck[] = [];
  /** Lookup commands in the untimed (calibration, warm-up) rounds: the first remote calls resolve. */
  untimedLookupCommands = 0;
  private timedRounds = 0;
  private activated: number[] = [];

  constructor(
    readonly id: string,
    readonly label: string,
    private readonly group: MemberGroup,
    private readonly redis: RedisProbe | undefined,
    private readonly concurrency: number,
  ) {
    this.process = `${group.members.length} member processes (${split(concurrency, group.members.length).join(' + ')} callers)${redis === undefined ? '' : ' + redis-server'}`;
  }

  /** Untimed: member k activates every identity i with i % members === k, then each member's callers take their share of identities, in order. */
  async setup(): Promise<void> {
    const members = this.group.members;
    const ids = Array.from({ length: this.concurrency }, (_, i) => `cached-${i}`);
    await Promise.all(members.map((m, k) => m.request('touchAll', { ids: ids.filter((_, i) => i % members.length === k) }, ROUND_TIMEOUT_MS)));
    const callers = split(this.concurrency, members.length);
    let from = 0;
    for (let k = 0; k < members.length; k++) {
      await members[k]!.request('cachedRefs', { ids: ids.slice(from, from + callers[k]!) });
      from += callers[k]!;
    }
    const stats = await Promise.all(members.map((m) => m.stats()));
    const total = stats.reduce((a, s) => a + s.activations, 0);
    if (total !== this.concurrency) throw new Error(`${this.label}: ${total} activations after setup, expected ${this.concurrency}`);
    this.activated = stats.map((s) => s.activated);
  }

  async round(ops: number, timed: boolean): Promise<RoundResult> {
    const members = this.group.members;
    const per = Math.max(1, Math.ceil(ops / this.concurrency));
    const statsBefore = await Promise.all(members.map((m) => m.stats()));
    const cpuBefore = await cpuOf(members);
    const before = await this.redis?.snapshot();
    const replies = await Promise.all(members.map((m) => m.request<TimedReply>('cached', { per }, ROUND_TIMEOUT_MS)));
    const after = await this.redis?.snapshot();
    const cpuAfter = await cpuOf(members);
    const statsAfter = await Promise.all(members.map((m) => m.stats()));
    const done = replies.reduce((a, r) => a + r.ops, 0);
    members.forEach((m, k) => {
      if (statsAfter[k]!.activated !== this.activated[k])
        throw new Error(`${m.name}: activations were created during cached rounds (${statsAfter[k]!.activated - this.activated[k]!})`);
      if (statsAfter[k]!.loggedProblems > 0)
        throw new Error(`${m.name} logged ${statsAfter[k]!.loggedProblems} problem(s), last: ${statsAfter[k]!.lastProblem}`);
    });
    const remote = statsAfter.reduce((a, s, k) => a + s.pidCache.hits - statsBefore[k]!.pidCache.hits, 0);
    const lookups = statsAfter.reduce((a, s, k) => a + s.pidCache.misses - statsBefore[k]!.pidCache.misses, 0);
    const figures: Record<string, number> = {
      'remote calls %': (100 * remote) / done,
      'actor-cache misses': lookups,
      'members CPU µs/call': (cpuAfter - cpuBefore) / done,
    };
    if (before !== undefined && after !== undefined) {
      const a = account(diff(after.calls, before.calls));
      if (!timed) this.untimedLookupCommands += a.lookupCommands;
      else {
        const windowMs = (after.atNs - before.atNs) / 1e6;
        const check: CachedCheck = {
          round: ++this.timedRounds,
          renewals: a.renewals,
          expectedRenewals: (members.length * windowMs) / FAST_LEASE.renewIntervalMs,
          lookupCommands: a.lookupCommands,
          scriptsBeyondRenewals: a.scriptsBeyondRenewals,
          scans: a.scans,
          aliveCleanups: a.aliveCleanups,
          unexplained: a.unexplained,
          ok: a.lookupCommands === 0 && a.scriptsBeyondRenewals === 0 && Object.keys(a.unexplained).length === 0 && lookups === 0,
        };
        this.checks.push(check);
        if (!check.ok) {
          throw new Error(
            `cached-call-redis, timed round ${check.round}: Redis saw more than lease renewals: ${a.lookupCommands} lookup commands, ${a.scriptsBeyondRenewals} scripts beyond ${a.renewals} renewals, ` +
              `other: ${JSON.stringify(a.unexplained)}; ${lookups} actor-cache misses`,
          );
        }
        figures['Redis cmds beyond renewals'] = a.lookupCommands + a.scriptsBeyondRenewals;
        figures['renewals in round'] = a.renewals;
      }
    }
    return { ns: span(replies), ops: done, figures };
  }
}

// failover ----------------------------------------------------------------------------------

export interface Kill {
  readonly kill: number;
  readonly victim: string;
  readonly delayMs: number;
  /** PTTL of the victim's lease key just before the kill: how long Redis would still keep it. */
  readonly leaseLeftMs: number;
  /** From the SIGKILL until the survivor's call succeeded on a new activation; null: not within FAILOVER_MAX_MS. */
  readonly failoverMs: number | null;
  readonly attempts: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly lastError: string | null;
  readonly newEpochOverOld: boolean;
  /** The replacement (forked at the kill, runtime loaded meanwhile) starting its cluster as the victim, once the failover was measured. */
  readonly restartMs: number;
  /** The survivor's poll calls: [start ms after the poll began, duration ms, outcome]. */
  readonly trace: ReadonlyArray<readonly [number, number, string]>;
}

async function runFailover(group: MemberGroup, redis: RedisProbe, db: number, kills: number): Promise<Kill[]> {
  const members = group.members;
  const out: Kill[] = [];
  for (let r = 0; r < kills; r++) {
    const victim = members[r % members.length]!;
    const survivor = members[(r + 1) % members.length]!;
    const ids = Array.from({ length: FAILOVER_GRAINS }, (_, i) => `fo${r}-${i}`);
    // The victim claims (prefer-local) and hosts its grains; the survivor calls each once, so it knows where they are.
    await victim.request('touchAll', { ids }, 30_000);
    await survivor.request('touchAll', { ids }, 30_000);
    const victimStats = await victim.stats();
    const old = await survivor.request<Whereabouts>('where', { identity: ids[0], timeoutMs: 5_000 });
    if (old.memberId !== victimStats.memberId)
      throw new Error(`failover kill ${r + 1}: ${ids[0]} lives on ${old.memberId}, expected the victim ${victimStats.memberId}`);
    const leaseKey = `{${KEY_PREFIX}:${victim.config.clusterName}}:lease:${victimStats.incarnation}`;
    // A random point of the renew cycle.
    const delayMs = Math.random() * FAST_LEASE.renewIntervalMs;
    await sleep(delayMs);
    const leaseLeftMs = await redis.pttl(db, leaseKey);
    if (leaseLeftMs <= 0) throw new Error(`failover kill ${r + 1}: the victim's lease key ${leaseKey} has PTTL ${leaseLeftMs} before the kill`);
    const killedAtNs = hrNow();
    const exited = victim.killAndWait();
    const polled = survivor.request<PollReply>(
      'poll',
      { identity: ids[0], notActivation: old.activationId, perCallTimeoutMs: POLL_CALL_TIMEOUT_MS, maxMs: FAILOVER_MAX_MS },
      FAILOVER_MAX_MS + 10_000,
    );
    // The replacement process starts now (as a supervisor would restart it) but only loads the
    // runtime: it joins the cluster as the victim once the failover has been measured, so the
    // victim's address stays dead meanwhile.
    const spare = ServerChild.start(`${victim.name} (replacement)`, MEMBER_SCRIPT(), ['spare']);
    let restartMs: number;
    let poll: PollReply;
    try {
      poll = await polled;
      await exited;
      if (poll.answer !== null && poll.answer.memberId !== (await survivor.stats()).memberId) {
        throw new Error(`failover kill ${r + 1}: the new activation is on ${poll.answer.memberId}, not on the survivor`);
      }
      restartMs = await victim.startFrom(await spare);
    } catch (error) {
      (await spare.catch(() => undefined))?.kill();
      throw error;
    }
    const failoverMs = poll.okAtNs === null ? null : (poll.okAtNs - killedAtNs) / 1e6;
    out.push({
      kill: r + 1,
      victim: victim.name,
      delayMs,
      leaseLeftMs,
      failoverMs,
      attempts: poll.attempts,
      errors: poll.errors,
      lastError: poll.lastError,
      newEpochOverOld: poll.answer !== null && poll.answer.epoch > old.epoch,
      restartMs,
      trace: poll.trace,
    });
    process.stdout.write(
      `[failover] kill ${r + 1}/${kills}: ${victim.name}, lease left ${leaseLeftMs} ms, failover ${failoverMs === null ? `> ${FAILOVER_MAX_MS}` : fmtNum(failoverMs, 0)} ms, rejoin ${fmtNum(restartMs, 0)} ms\n`,
    );
  }
  return out;
}

// Results and reports -----------------------------------------------------------------------

export interface RedisScenarioResult extends GroupScenarioResult<RedisScenarioId, RedisGroupOptions> {
  readonly unit: string;
  readonly redisVersion: string;
  readonly subjects: readonly SubjectResult[];
  readonly ratios: readonly RatioResult[];
  /** Checks that failed the run had they not passed, as text. */
  readonly checks: readonly string[];
  readonly cachedChecks?: readonly CachedCheck[];
  readonly kills?: readonly Kill[];
  readonly failover?: {
    readonly failoverMs: Summary;
    readonly beyondLeaseMs: Summary;
    readonly timeouts: number;
    readonly lease: typeof FAST_LEASE;
    readonly targetMs: number;
    readonly meetsTarget: boolean;
  };
  readonly members: readonly MemberStats[];
}

function reportThroughput(result: RedisScenarioResult): string[] {
  const o = result.options;
  const out: string[] = [];
  out.push(`== ${result.title} — ${result.description}`);
  out.push(
    `   ${o.concurrency} concurrent callers; ${o.rounds} timed rounds of ~${o.roundMs} ms per subject, interleaved; median [min … max] of rounds; redis-server ${result.redisVersion}`,
  );
  for (const note of result.notes) out.push(`   ${note}`);
  out.push('');
  out.push(
    table(
      [
        ['subject', 'processes', `${result.unit}/s median`, 'min', 'max', 'µs/op'],
        ...result.subjects.map((s) => [s.label, s.process, fmtRate(s.rate.median), fmtRate(s.rate.min), fmtRate(s.rate.max), fmtNum(1e6 / s.rate.median, 2)]),
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
        ['ratio', 'median', 'paired min … max'],
        ...result.ratios.map((r) => [r.label, fmtRatio(r.value), `${fmtRatio(r.paired.min)} … ${fmtRatio(r.paired.max)}`]),
      ],
      ['left', 'right', 'right'],
    ),
  );
  const names = [...new Set(result.subjects.flatMap((s) => Object.keys(s.figures)))];
  if (names.length > 0) {
    out.push('');
    out.push(
      table(
        [
          ['per timed round (medians)', ...names],
          ...result.subjects.map((s) => [
            s.label,
            ...names.map((name) =>
              s.figures[name] === undefined ? '' : fmtNum(s.figures[name]!.median, name.includes('%') || name.startsWith('renewals') ? 0 : 2),
            ),
          ]),
        ],
        ['left', ...names.map(() => 'right' as const)],
      ),
    );
  }
  if (result.checks.length > 0) {
    out.push('');
    for (const check of result.checks) out.push(`   check: ${check}`);
  }
  return out;
}

function reportFailover(result: RedisScenarioResult): string[] {
  const f = result.failover!;
  const kills = result.kills!;
  // NOTE: a kill that did not fail over within FAILOVER_MAX_MS is summarised as FAILOVER_MAX_MS, a lower bound: shown as "> …".
  const ms = (v: number) => (v >= FAILOVER_MAX_MS && f.timeouts > 0 ? `> ${FAILOVER_MAX_MS}` : fmtNum(v, 0));
  const ratioOf = (v: number) => (v >= FAILOVER_MAX_MS && f.timeouts > 0 ? `> ${fmtRatio(v / f.lease.leaseMs)}` : fmtRatio(v / f.lease.leaseMs));
  const out: string[] = [];
  out.push(`== ${result.title} — ${result.description}`);
  for (const note of result.notes) out.push(`   ${note}`);
  out.push('');
  out.push(
    table(
      [
        ['kill', 'victim', 'delay ms', 'lease left ms', 'failover ms', 'beyond lease ms', 'poll calls', 'failed calls by error', 'rejoin ms'],
        ...kills.map((k) => [
          String(k.kill),
          k.victim,
          fmtNum(k.delayMs, 0),
          String(k.leaseLeftMs),
          k.failoverMs === null ? `> ${FAILOVER_MAX_MS}` : fmtNum(k.failoverMs, 0),
          k.failoverMs === null ? '' : fmtNum(k.failoverMs - k.leaseLeftMs, 0),
          String(k.attempts),
          Object.entries(k.errors)
            .map(([name, n]) => `${name} ${n}`)
            .join(', '),
          fmtNum(k.restartMs, 0),
        ]),
      ],
      ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'left', 'right'],
    ),
  );
  out.push('');
  out.push(
    table(
      [
        ['over kills', 'median', 'min', 'max'],
        ['failover after SIGKILL (ms)', ms(f.failoverMs.median), ms(f.failoverMs.min), ms(f.failoverMs.max)],
        [
          '  of which beyond the lease left at the kill (ms)',
          fmtNum(f.beyondLeaseMs.median, 0),
          fmtNum(f.beyondLeaseMs.min, 0),
          fmtNum(f.beyondLeaseMs.max, 0),
        ],
        [`failover / configured lease (${f.lease.leaseMs} ms)`, ratioOf(f.failoverMs.median), ratioOf(f.failoverMs.min), ratioOf(f.failoverMs.max)],
      ],
      ['left', 'right', 'right', 'right'],
    ),
  );
  out.push(
    `  target: failover <= ${f.targetMs} ms (max over ${kills.length} kills${f.timeouts > 0 ? `, ${f.timeouts} of them > ${FAILOVER_MAX_MS} ms` : ''}): max here ${ms(f.failoverMs.max)} ms: ${f.meetsTarget ? 'met' : 'NOT met'}`,
  );
  for (const check of result.checks) out.push(`   check: ${check}`);
  return out;
}

// The group ---------------------------------------------------------------------------------

export type RedisGroupOutput = GroupOutput<RedisScenarioResult>;

/** Runs the selected Redis scenarios (in REDIS_SCENARIOS order) and writes their JSON. */
export async function runRedisGroup(selected: readonly RedisScenarioId[], options: RedisGroupOptions, stamp: string): Promise<RedisGroupOutput> {
  const want = (id: RedisScenarioId) => selected.includes(id);
  const { Redis } = await import('ioredis');
  process.stdout.write(`\n[redis] starting redis-server\n`);
  const server = await startRedisServer();
  process.stdout.write(`[redis] redis-server pid ${server.pid} on 127.0.0.1:${server.port}\n`);
  const admin = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true, maxRetriesPerRequest: 1 });
  admin.on('error', () => {});
  const groups: MemberGroup[] = [];
  const children: ServerChild[] = [];
  try {
    await admin.connect();
    const redisVersion = parseInfo(await admin.info('server'))['redis_version'] ?? '?';
    const probe = new RedisProbe(server, admin);
    const results = new GroupResults<RedisScenarioResult, { readonly redisVersion: string }>(stamp, options, { redisVersion });

    if (want('activation-redis')) {
      const started = new Date();
      process.stdout.write(`\n[activation-redis] starting 2 members (RedisIdentityLookup) and the SET NX process\n`);
      const pair = await MemberGroup.start('bench-redis-activation', 'redis', 2, `${server.url}/${DB_ACTIVATION}`);
      groups.push(pair);
      const setNx = await ServerChild.start('SET NX baseline', SET_NX_SCRIPT(), [`${server.url}/${DB_SET_NX}`]);
      children.push(setNx);
      const grain = new RedisActivationSubject(pair, probe, options.concurrency);
      const baseline = new SetNxSubject(setNx, probe, options.concurrency);
      const subjects = await measure('activation-redis', [grain, baseline], options, { 'grain-redis': ACTIVATION_TARGET });
      const members = await Promise.all(pair.members.map((m) => m.stats()));
      // NOTE: ~100k activations each: a graceful stop would release every entry (one script each). Kill instead; their keys go with database 0.
      await pair.kill();
      await setNx.stop();
      await probe.flushDb(DB_ACTIVATION);
      const rt = subjects[0]!.figures['Redis round trips/activation']!;
      results.add(
        {
          scenario: 'activation-redis',
          title: 'activation (redis)',
          description:
            'new activations per second across 2 member processes with RedisIdentityLookup (fast lease, prefer-local): every call goes to a new identity ' +
            '(claim in Redis, activation, async onGrainActivate, the call); callers split over both members. Baseline: ioredis `SET key value NX` on new keys, ' +
            'one process with one connection (options as the lookup’s), same callers, same redis-server, same run.',
          notes: [
            'Round wall time: first start to last end over both members (process.hrtime, one monotonic clock). Members keep their activations between rounds (new identities every round).',
            'Redis figures from INFO commandstats/cpu around each round (outside the timer); round trips = commands clients sent (EVALSHA, EVAL, SET, …) minus lease renewals; ' +
              'claims = HSET run by the claim script (one per claim).',
          ],
          unit: 'activations',
          startedAt: started.toISOString(),
          subjects,
          ratios: [ratio(subjects, 'grain activation (2 members) / SET NX (1 connection)', 'grain-redis', 'set-nx')],
          checks: [
            `every round: each member activated exactly its callers' new identities, Redis ran exactly one claim per activation, no member logged a warning: passed`,
            `Redis round trips per activation (measured): median ${fmtNum(rt.median, 3)} [${fmtNum(rt.min, 3)} … ${fmtNum(rt.max, 3)}]`,
          ],
          members,
        },
        started,
        reportThroughput,
      );
    }

    let redisPair: MemberGroup | undefined;
    if (want('cached-call-redis') || want('failover')) {
      process.stdout.write(`\n[redis] starting 2 members (RedisIdentityLookup)\n`);
      redisPair = await MemberGroup.start('bench-redis', 'redis', 2, `${server.url}/${DB_CACHED}`);
      groups.push(redisPair);
    }

    if (want('cached-call-redis')) {
      const started = new Date();
      process.stdout.write(`[cached-call-redis] starting 2 members (HashIdentityLookup)\n`);
      const hashPair = await MemberGroup.start('bench-hash', 'hash', 2, undefined);
      groups.push(hashPair);
      const redisSubject = new CachedSubject('grain-redis', 'grain call, RedisIdentityLookup', redisPair!, probe, options.concurrency);
      const hashSubject = new CachedSubject('grain-hash', 'grain call, HashIdentityLookup', hashPair, undefined, options.concurrency);
      await redisSubject.setup();
      await hashSubject.setup();
      const subjects = await measure('cached-call-redis', [redisSubject, hashSubject], options);
      const members = await Promise.all([...redisPair!.members, ...hashPair.members].map((m) => m.stats()));
      await hashPair.stop();
      groups.splice(groups.indexOf(hashPair), 1);
      const c = redisSubject.checks;
      const renewals = c.reduce((a, x) => a + x.renewals, 0);
      const expected = c.reduce((a, x) => a + x.expectedRenewals, 0);
      const scans = c.reduce((a, x) => a + x.scans, 0);
      results.add(
        {
          scenario: 'cached-call-redis',
          title: 'cached call (redis)',
          description:
            'calls per second to grains already active: each caller calls its own grain again (`touch`), half of which live on the other member ' +
            '(reached through the actor cache), across 2 member processes with RedisIdentityLookup. Baseline: the same on 2 members with HashIdentityLookup.',
          notes: [
            `Setup (untimed): member k activates identity i when i % 2 = k (prefer-local claims); callers 0–${Math.ceil(options.concurrency / 2) - 1} on member A, the rest on member B. ` +
              'With HashIdentityLookup the same identities are placed by hash (about half remote too: see "remote calls %").',
            'Check, every timed round (fails the run): Redis ran nothing but lease renewals (INFO commandstats: no HGET/HMGET/HSET/SADD/SREM/HDEL, ' +
              'EVALSHA count = PEXPIRE count (+ cleanup-timer scripts), no other command but INFO), no actor-cache miss, no new activation.',
          ],
          unit: 'calls',
          startedAt: started.toISOString(),
          subjects,
          ratios: [ratio(subjects, 'RedisIdentityLookup / HashIdentityLookup', 'grain-redis', 'grain-hash')],
          checks: [
            `Redis during ${c.length} timed rounds: ${c.reduce((a, x) => a + x.lookupCommands, 0)} lookup commands, ${c.reduce((a, x) => a + x.scriptsBeyondRenewals, 0)} scripts beyond renewals, ` +
              `${renewals} lease renewals (expected ≈ ${fmtNum(expected, 0)} = 2 members × window / 250 ms)` +
              (scans > 0 ? `, ${scans} SCANs + ${c.reduce((a, x) => a + x.aliveCleanups, 0)} cleanup scripts of the cleanup timer` : '') +
              `: ${c.every((x) => x.ok) ? 'passed' : 'FAILED'}`,
            `(untimed warm-up rounds: ${redisSubject.untimedLookupCommands} lookup commands: the first call to each remote grain resolves it once)`,
          ],
          cachedChecks: c,
          members,
        },
        started,
        reportThroughput,
      );
    }

    if (want('failover')) {
      const started = new Date();
      process.stdout.write(`\n[failover] ${options.kills} kills\n`);
      const kills = await runFailover(redisPair!, probe, DB_CACHED, options.kills);
      const members = await Promise.all(redisPair!.members.map((m) => m.stats()));
      const ok = kills.filter((k) => k.failoverMs !== null);
      const timeouts = kills.length - ok.length;
      // A kill that did not fail over within FAILOVER_MAX_MS counts as FAILOVER_MAX_MS (a lower bound) in the summary.
      const failoverMs = summarize(kills.map((k) => k.failoverMs ?? FAILOVER_MAX_MS));
      const beyondLeaseMs = summarize(ok.map((k) => k.failoverMs! - k.leaseLeftMs));
      const badEpochs = ok.filter((k) => !k.newEpochOverOld).length;
      results.add(
        {
          scenario: 'failover',
          title: 'failover',
          description:
            'SIGKILL of a member hosting grains; time from the kill until a call from the surviving member to one of its grains succeeds on a new activation.',
          notes: [
            `RedisIdentityLookup, lease 'fast': ${FAST_LEASE.leaseMs} ms, renewed every ${FAST_LEASE.renewIntervalMs} ms, margin ${FAST_LEASE.marginMs} ms. 2 members; each kill alternates the victim.`,
            `Per kill: the victim claims ${FAILOVER_GRAINS} new grains, the survivor calls each once (so its actor cache knows them), a random delay of 0–${FAST_LEASE.renewIntervalMs} ms ` +
              '(a random point of the renew cycle), PTTL of the victim’s lease key ("lease left"), SIGKILL, then the survivor calls `where()` on one of the grains ' +
              `with ${POLL_CALL_TIMEOUT_MS} ms per-call timeouts until a new activation answers (at most ${FAILOVER_MAX_MS} ms). A replacement process is forked at the kill ` +
              '(it only loads the runtime meanwhile) and then joins as the victim ("rejoin": same port, so the same member id; a new incarnation).',
            '"beyond lease": failover − lease left at the kill, i.e. how long after Redis dropped the lease the survivor took to notice and claim.',
          ],
          unit: 'ms',
          startedAt: started.toISOString(),
          subjects: [],
          ratios: [],
          checks: [
            `every successful poll was answered by a new activation on the survivor with a larger epoch: ${badEpochs === 0 ? 'passed' : `FAILED (${badEpochs})`}`,
          ],
          kills,
          failover: {
            failoverMs,
            beyondLeaseMs,
            timeouts,
            lease: FAST_LEASE,
            targetMs: FAILOVER_TARGET_MS,
            meetsTarget: timeouts === 0 && failoverMs.max <= FAILOVER_TARGET_MS,
          },
          members,
        },
        started,
        reportFailover,
      );
      if (badEpochs > 0) throw new Error(`failover: ${badEpochs} kill(s) answered without a larger epoch`);
    }
    return results;
  } finally {
    for (const group of groups) await group.stop().catch(() => group.kill());
    for (const child of children) await child.stop().catch(() => child.kill());
    admin.disconnect();
    await server.stop();
  }
}
