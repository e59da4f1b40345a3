/**
 * A continuous load on the `list` grain of test/support/members/redis-member.ts, driven through
 * member processes of test/support/member-harness.ts, and the checks over everything it saw
 * (test/support/turn-checker.ts). Used by test/e2e/consul-cluster.spec.ts; the same checks as
 * test/e2e/redis-faults.spec.ts runs, for a load that goes through any member (e.g. one
 * client-only gateway that never restarts while the hosting members do).
 *
 * API
 *
 *   const load = new ListLoad(options?)   { lanes: 3, batch: 4, gapMs: 20, timeoutMs: 5_000, appendRatio: 0.6 }
 *   load.targets                 the identities the lanes pick from (a Set; change it any time)
 *   load.appendOp(id) / readOp(id, timeoutMs?, holdMs?) / sizeOp(id)   one operation (unique
 *                                element / op id; a read with holdMs holds its turn that long)
 *   load.send(member, ops, { sequential?, waitMs? }) → OpResult[]   run them from that member
 *       (its `ops` command); every outcome is recorded. If the member does not answer (it
 *       died), every op is recorded as failed with error name `NoAnswer`: nothing is hidden.
 *   load.start(member)           `lanes` loops on that member: `batch` random operations
 *                                (append with `appendRatio`, else read) on `targets`, then `gapMs`
 *   load.halt() / await load.stop()   no further batches / and wait for those in flight
 *   load.results  .acked()  .failed()  .attempted (every append sent, acknowledged or not)
 *   await load.finalReads(identities, member, timeoutMs?) → Map<identity, OpResult>
 *       one acknowledged read per identity, retried until it succeeds
 *
 *   await checkLoad({ load, processes, final, redis, clusterName }) → LoadCheck
 *     processes: every member process that may have served a turn (killed and restarted ones
 *     included), for their `turn` events; redis: the grain data's Redis (the store's history).
 *     Reported:
 *       overlaps        turns of two activations of one identity that overlap in time, among
 *                       the turns whose reply was delivered (two activations at once);
 *       violations      forks, lost acknowledged appends, duplicate and phantom elements, stale
 *                       reads (checkListAppend over the acknowledged reads and appends and the
 *                       final reads);
 *       unlogged        acknowledged operations with no logged turn;
 *       epochViolations ops the epoch-fenced store accepted from an activation older than one
 *                       that already loaded or wrote, or under an epoch two activations shared
 *                       (checkEpochHistory over the store's whole history).
 *   describeLoadCheck(result) for messages; isClean(result).
 */
import { type CallError, type MemberProcess } from './member-harness.js';
import { type RedisHandle } from './redis-server.js';
import {
  checkEpochHistory,
  checkListAppend,
  type EpochOp,
  type EpochViolation,
  findActivationOverlaps,
  type ListViolation,
  parseEpochOps,
  type TurnOverlap,
  turnRecordsFrom,
} from './turn-checker.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const hrnow = () => process.hrtime.bigint();

/** JSON for failure messages: outcomes carry bigint times, which JSON.stringify refuses. */
export const toJson = (value: unknown) => JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

export type ListOp =
  | { op: 'append'; identity: string; element: string; timeoutMs?: number }
  | { op: 'read'; identity: string; opId: string; holdMs?: number; timeoutMs?: number }
  | { op: 'size'; identity: string; opId: string; timeoutMs?: number };

/** What the `list` grain answers (redis-member.ts). */
export interface ListReply {
  member: string;
  activation: string;
  epoch: number;
  generation: string;
  length: number;
  list?: string[];
  version?: number;
}

export interface OpResult {
  /** The calling process's label. */
  caller: string;
  op: ListOp['op'];
  identity: string;
  /** The element (append) or the op id: what the serving member's turn log calls `op`. */
  id: string;
  ok: boolean;
  reply?: ListReply;
  error?: CallError;
  /** hrtime ns at the caller, just before the call / just after its outcome (the caller's own clock, CLOCK_MONOTONIC). */
  invokedAt: bigint;
  settledAt: bigint;
}

/** An operation's outcome as a member process reports it (JSON: hrtimes as decimal strings). */
export interface RawOpResult {
  ok: boolean;
  value?: ListReply;
  error?: CallError;
  invokedAt: string;
  settledAt: string;
}

export interface ListLoadOptions {
  lanes: number;
  batch: number;
  gapMs: number;
  timeoutMs: number;
  appendRatio: number;
}

export class ListLoad {
  readonly results: OpResult[] = [];
  readonly attempted: Array<{ identity: string; element: string }> = [];
  readonly targets = new Set<string>();
  private running = false;
  private lanes: Array<Promise<void>> = [];
  private seq = 0;
  private readonly options: ListLoadOptions;

  constructor(options: Partial<ListLoadOptions> = {}) {
    this.options = { lanes: 3, batch: 4, gapMs: 20, timeoutMs: 5_000, appendRatio: 0.6, ...options };
  }

  appendOp(identity: string, timeoutMs = this.options.timeoutMs): ListOp {
    return { op: 'append', identity, element: `${identity}:${++this.seq}`, timeoutMs };
  }

  /** A read; `holdMs` keeps its turn running that long (the grain waits before answering). */
  readOp(identity: string, timeoutMs = this.options.timeoutMs, holdMs = 0): ListOp {
    return { op: 'read', identity, opId: `read:${identity}:${++this.seq}`, timeoutMs, ...(holdMs > 0 && { holdMs }) };
  }

  sizeOp(identity: string, timeoutMs = this.options.timeoutMs): ListOp {
    return { op: 'size', identity, opId: `size:${identity}:${++this.seq}`, timeoutMs };
  }

  async send(member: MemberProcess, ops: ListOp[], options: { sequential?: boolean; waitMs?: number } = {}): Promise<OpResult[]> {
    for (const op of ops) if (op.op === 'append') this.attempted.push({ identity: op.identity, element: op.element });
    const invokedAt = hrnow();
    let raws: RawOpResult[];
    try {
      const result = await member.request({ cmd: 'ops', ops, sequential: options.sequential ?? false }, options.waitMs ?? 60_000);
      raws = result['value'] as RawOpResult[];
    } catch (error) {
      const settledAt = hrnow().toString();
      const message = (error as Error).message.split('\n')[0]!;
      raws = ops.map(() => ({ ok: false, error: { name: 'NoAnswer', message }, invokedAt: invokedAt.toString(), settledAt }));
    }
    const out = raws.map((raw, n): OpResult => {
      const op = ops[n]!;
      return {
        caller: member.label,
        op: op.op,
        identity: op.identity,
        id: op.op === 'append' ? op.element : op.opId,
        ok: raw.ok,
        ...(raw.value !== undefined && { reply: raw.value }),
        ...(raw.error !== undefined && { error: raw.error }),
        invokedAt: BigInt(raw.invokedAt),
        settledAt: BigInt(raw.settledAt),
      };
    });
    this.results.push(...out);
    return out;
  }

  start(member: MemberProcess): void {
    this.running = true;
    for (let lane = 0; lane < this.options.lanes; lane++) this.lanes.push(this.lane(member));
  }

  halt(): void {
    this.running = false;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.lanes);
    this.lanes = [];
  }

  private async lane(member: MemberProcess): Promise<void> {
    while (this.running && member.alive) {
      const ids = [...this.targets];
      if (ids.length > 0) {
        const ops = Array.from({ length: this.options.batch }, () => {
          const id = ids[Math.floor(Math.random() * ids.length)]!;
          return Math.random() < this.options.appendRatio ? this.appendOp(id) : this.readOp(id);
        });
        await this.send(member, ops);
      }
      await sleep(this.options.gapMs);
    }
  }

  async finalReads(identities: readonly string[], via: MemberProcess, timeoutMs = 15_000): Promise<Map<string, OpResult>> {
    const final = new Map<string, OpResult>();
    const until = Date.now() + timeoutMs;
    let missing = [...identities];
    while (missing.length > 0 && Date.now() < until) {
      for (const r of await this.send(
        via,
        missing.map((id) => this.readOp(id, 3_000)),
      ))
        if (r.ok) final.set(r.identity, r);
      missing = missing.filter((id) => !final.has(id));
      if (missing.length > 0) await sleep(200);
    }
    if (missing.length > 0) throw new Error(`final reads failed for ${missing.length} identities: ${missing.slice(0, 5).join(', ')}`);
    return final;
  }

  acked(): OpResult[] {
    return this.results.filter((r) => r.ok);
  }

  failed(): OpResult[] {
    return this.results.filter((r) => !r.ok);
  }
}

// The checks -------------------------------------------------------------------------------------

export interface LoadCheck {
  overlaps: TurnOverlap[];
  violations: ListViolation[];
  unlogged: string[];
  epochViolations: EpochViolation[];
  /** Overlaps among ALL logged turns (replies dropped by the fencing included): informative. */
  rawOverlaps: number;
  turns: number;
  ackedAppends: number;
  ackedReads: number;
  /** Store ops (loads and writes) checked. */
  storeOps: number;
}

/** Time a member's log line may take to arrive after the answer it served was acknowledged elsewhere. */
const LOG_ARRIVAL_MS = 3_000;

export async function checkLoad(input: {
  load: ListLoad;
  processes: () => readonly MemberProcess[];
  final: ReadonlyMap<string, OpResult>;
  redis: RedisHandle;
  clusterName: string;
}): Promise<LoadCheck> {
  const { load, processes, final, redis, clusterName } = input;
  const turnEvents = () => processes().flatMap((p) => p.events.filter((e) => e['event'] === 'turn'));
  const acked = load.acked();
  const ackedIds = new Set(acked.map((r) => r.id));
  // NOTE: an op is acknowledged through the calling member while its turn is logged by the
  // serving member, on another pipe: wait (bounded) for those lines.
  const until = Date.now() + LOG_ARRIVAL_MS;
  for (;;) {
    const logged = new Set(turnEvents().flatMap((e) => (e['ok'] === true ? [e['op'] as string] : [])));
    if (acked.every((r) => logged.has(r.id)) || Date.now() > until) break;
    await sleep(50);
  }
  const events = turnEvents();
  const delivered = turnRecordsFrom(events, (e) => e['ok'] === true && ackedIds.has(e['op'] as string));
  const logged = new Set(delivered.map((t) => t['op'] as string));
  const unlogged = acked.filter((r) => !logged.has(r.id)).map((r) => r.id);

  const lists = acked.filter((r) => r.op === 'read' || r.op === 'append');
  const reads = lists
    .filter((r) => r.op === 'read')
    .map((r) => ({ identity: r.identity, value: r.reply!.list!, label: `${r.id} (activation ${r.reply!.activation})`, invokedAt: r.invokedAt }));
  const appends = lists
    .filter((r) => r.op === 'append')
    .map((r) => ({ identity: r.identity, element: r.id, label: `activation ${r.reply!.activation}`, ackedAt: r.settledAt }));
  const finalMap = new Map([...final].map(([identity, r]) => [identity, r.reply!.list!] as const));
  const report = checkListAppend({ reads, appends, final: finalMap, attempted: load.attempted });

  const tag = `{grains:${clusterName}}`;
  const histories = new Map<string, EpochOp[]>();
  for (const identity of new Set([...acked.map((r) => r.identity), ...final.keys()])) {
    const lines = await redis.command('LRANGE', `${tag}:testhist:${identity}`, '0', '-1');
    histories.set(identity, parseEpochOps(Array.isArray(lines) ? lines.map(String) : []));
  }
  return {
    overlaps: findActivationOverlaps(delivered),
    violations: report.violations,
    unlogged,
    epochViolations: checkEpochHistory(histories),
    rawOverlaps: findActivationOverlaps(turnRecordsFrom(events)).length,
    turns: events.length,
    ackedAppends: appends.length,
    ackedReads: reads.length,
    storeOps: [...histories.values()].reduce((n, ops) => n + ops.length, 0),
  };
}

export function isClean(result: LoadCheck): boolean {
  return result.overlaps.length === 0 && result.violations.length === 0 && result.unlogged.length === 0 && result.epochViolations.length === 0;
}

export function describeLoadCheck(result: LoadCheck, limit = 12): string {
  const lines = [
    `${result.overlaps.length} overlapping delivered turns, ${result.violations.length} history violations, ${result.epochViolations.length} store (epoch) violations, ` +
      `${result.unlogged.length} unlogged; ${result.turns} turns logged (${result.rawOverlaps} overlaps among all turns), ${result.ackedAppends} acknowledged appends, ` +
      `${result.ackedReads} acknowledged reads, ${result.storeOps} store ops`,
  ];
  if (result.unlogged.length > 0) lines.push(`  acknowledged without a logged turn: ${result.unlogged.slice(0, limit).join(', ')}`);
  for (const o of result.overlaps.slice(0, limit)) lines.push(`  overlap: ${o.message}`);
  for (const v of result.violations.slice(0, limit)) lines.push(`  ${v.kind}: ${v.message}`);
  for (const v of result.epochViolations.slice(0, limit)) lines.push(`  ${v.kind} ${v.identity}: ${v.detail}`);
  return lines.join('\n');
}

/** `name n, name n` of the values. */
export function countBy(values: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
}
