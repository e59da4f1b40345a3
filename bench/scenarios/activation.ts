/**
 * Scenario "activation": new activations per second on one member. 1,000 concurrent callers,
 * every call to an identity never called before, so each call pays lookup + activation
 * (constructor, async `onGrainActivate`) + the call itself. Each round runs on a fresh
 * cluster (started before the timer, shut down after it), so memory stays bounded.
 *
 * Baseline: `new X(id); await x.init(); await x.touch(1)` at the same concurrency.
 *
 * Probes: the runtime's heap per idle activation (bench/memory/idle-activations.ts).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Cluster, GrainClient, GrainContext } from 'nestjs-grains';
import { loadRuntime, SilentLogger } from '../support/runtime.js';
import type { BenchParams, BreakdownLine, Figures, ScenarioSpec, Subject } from '../support/scenario.js';
import { summarize, type Summary } from '../support/stats.js';

export class PlainSession {
  private ready = false;
  constructor(readonly id: string) {}
  async init(): Promise<void> {
    this.ready = true;
  }
  async touch(x: number): Promise<number> {
    return this.ready ? x + 1 : -1;
  }
}

export class SessionGrain {
  private ready = false;
  constructor(readonly ctx: GrainContext) {}
  async onGrainActivate(): Promise<void> {
    this.ready = true;
  }
  async touch(x: number): Promise<number> {
    return this.ready ? x + 1 : -1;
  }
}

// NOTE: one loop function per subject, so no call site sees both sides (see local-call.ts).

async function plainLoopPristine(ids: readonly string[], from: number, step: number, count: number): Promise<number> {
  let ok = 0;
  for (let i = 0, k = from; i < count; i++, k += step) {
    const s = new PlainSession(ids[k]!);
    await s.init();
    ok += await s.touch(0);
  }
  return ok;
}

async function plainLoopAfter(ids: readonly string[], from: number, step: number, count: number): Promise<number> {
  let ok = 0;
  for (let i = 0, k = from; i < count; i++, k += step) {
    const s = new PlainSession(ids[k]!);
    await s.init();
    ok += await s.touch(0);
  }
  return ok;
}

async function grainLoop(client: GrainClient<SessionGrain>, ids: readonly string[], from: number, step: number, count: number): Promise<number> {
  let ok = 0;
  for (let i = 0, k = from; i < count; i++, k += step) ok += await client.get(ids[k]!).touch(0);
  return ok;
}

/** Identity strings, built outside the timer and shared by rounds of the same size. */
class Identities {
  private ids: string[] = [];
  get(total: number): readonly string[] {
    if (this.ids.length !== total) this.ids = Array.from({ length: total }, (_, k) => `session-${k}`);
    return this.ids;
  }
}

function perCaller(ops: number, concurrency: number): number {
  return Math.max(1, Math.ceil(ops / concurrency));
}

type PlainLoop = typeof plainLoopPristine;

class PlainActivationSubject implements Subject {
  private readonly identities = new Identities();
  private ids: readonly string[] = [];

  constructor(
    private readonly params: BenchParams,
    private readonly loop: PlainLoop,
  ) {}

  async setup(): Promise<void> {}

  async prepare(ops: number): Promise<void> {
    this.ids = this.identities.get(perCaller(ops, this.params.concurrency) * this.params.concurrency);
  }

  async round(ops: number): Promise<number> {
    const c = this.params.concurrency;
    const per = perCaller(ops, c);
    const loops = new Array<Promise<number>>(c);
    for (let j = 0; j < c; j++) loops[j] = this.loop(this.ids, j, c, per);
    const done = await Promise.all(loops);
    const total = done.reduce((a, b) => a + b, 0);
    if (total !== per * c) throw new Error(`plain sessions: ${total} of ${per * c} calls answered 1`);
    return per * c;
  }

  async teardown(): Promise<void> {}
}

class GrainActivationSubject implements Subject {
  private readonly identities = new Identities();
  private ids: readonly string[] = [];
  private cluster: Cluster | undefined;
  private client: GrainClient<SessionGrain> | undefined;
  private expected = 0;
  private readonly logger = new SilentLogger();

  constructor(private readonly params: BenchParams) {}

  /** A throw-away first cluster: loads the runtime and runs turns, as an app's would (the plain-after subject runs in this process). */
  async setup(): Promise<void> {
    await this.prepare(this.params.concurrency);
    await this.round(this.params.concurrency);
    await this.cleanup();
  }

  async prepare(ops: number): Promise<void> {
    const { Cluster } = await loadRuntime();
    this.ids = this.identities.get(perCaller(ops, this.params.concurrency) * this.params.concurrency);
    const cluster = new Cluster({ clusterName: 'bench-activation', logger: this.logger });
    cluster.registerKind({ name: 'session', grainClass: SessionGrain, create: (ctx) => new SessionGrain(ctx) });
    await cluster.start();
    this.cluster = cluster;
    this.client = cluster.client<SessionGrain>('session');
  }

  async round(ops: number): Promise<number> {
    const c = this.params.concurrency;
    const per = perCaller(ops, c);
    const client = this.client!;
    const loops = new Array<Promise<number>>(c);
    for (let j = 0; j < c; j++) loops[j] = grainLoop(client, this.ids, j, c, per);
    const done = await Promise.all(loops);
    const total = done.reduce((a, b) => a + b, 0);
    if (total !== per * c) throw new Error(`grain sessions: ${total} of ${per * c} calls answered 1`);
    this.expected = per * c;
    return per * c;
  }

  /** Untimed, but measured: the shutdown deactivates every activation of the round. */
  async cleanup(): Promise<void> {
    const cluster = this.cluster!;
    const { activated } = cluster.stats();
    if (activated !== this.expected) throw new Error(`expected ${this.expected} activations, the cluster made ${activated}`);
    await cluster.shutdown();
    const { deactivated } = cluster.stats();
    if (deactivated !== this.expected) throw new Error(`shutdown deactivated ${deactivated} of ${this.expected} activations`);
    this.cluster = undefined;
    this.client = undefined;
  }

  async teardown(): Promise<void> {
    await this.cluster?.shutdown();
  }

  loggedProblems(): number {
    return this.logger.problems;
  }
}

export const scenario: ScenarioSpec = {
  id: 'activation',
  title: 'activation',
  unit: 'activations',
  description:
    'New activations per second on one member: every call goes to a new identity (lookup, activation, ' +
    '`onGrainActivate`, then the call). Fresh cluster per round. Baseline: `new X(id); await x.init(); await x.touch()`.',
  subjects: [
    { id: 'plain', label: 'new + await init() + await touch()', role: 'pristine', create: (p) => new PlainActivationSubject(p, plainLoopPristine) },
    { id: 'grain', label: 'grain activation + call', role: 'runtime', create: (p) => new GrainActivationSubject(p) },
    { id: 'plain-after', label: 'new + await init() + await touch()', role: 'runtime', create: (p) => new PlainActivationSubject(p, plainLoopAfter) },
  ],
  ratios: [
    { id: 'grain/plain', label: 'grain activation / plain, pristine', numerator: 'grain', denominator: 'plain' },
    { id: 'plain-after/plain', label: 'plain after grain turns / plain pristine (host-app tax)', numerator: 'plain-after', denominator: 'plain' },
    { id: 'grain/plain-after', label: 'grain activation / plain, same process', numerator: 'grain', denominator: 'plain-after' },
  ],
  probes: [
    {
      id: 'heap-runtime',
      label: 'heap per idle activation beyond the instance (grains − same instances in a Map)',
      role: 'runtime',
      unit: 'B/activation',
      run: () => idleActivationHeap('runtime'),
    },
    { id: 'heap-map', label: 'heap per instance kept in a Map (the baseline)', role: 'runtime', unit: 'B/activation', run: () => idleActivationHeap('map') },
  ],
  breakdown: activationBreakdown,
};

function activationBreakdown(f: Figures): BreakdownLine[] {
  const grainNs = 1e9 / f.rate['grain']!;
  const plainNs = 1e9 / f.rate['plain']!;
  const plainAfterNs = 1e9 / f.rate['plain-after']!;
  const lines: BreakdownLine[] = [
    { label: 'grain activation + first call (wall / activation)', value: grainNs, unit: 'ns', share: 1 },
    { label: 'plain new + init + call, pristine', value: plainNs, unit: 'ns', share: plainNs / grainNs },
    { label: 'plain new + init + call, after grain turns', value: plainAfterNs, unit: 'ns', share: plainAfterNs / grainNs },
    { label: 'runtime beyond the plain steps (same process)', value: grainNs - plainAfterNs, unit: 'ns', share: (grainNs - plainAfterNs) / grainNs },
  ];
  const heap = f.probe['heap-runtime'];
  if (heap !== undefined) {
    lines.push({
      label: 'runtime heap per idle activation',
      value: heap,
      unit: 'B',
      note: `target <= ${MAX_RUNTIME_BYTES} B: ${heap <= MAX_RUNTIME_BYTES ? 'met' : 'NOT met'} (${IDLE_ACTIVATIONS.toLocaleString('en-US')} empty grains, heap after full GCs)`,
    });
  }
  const shutdown = f.cleanupNsPerOp['grain'];
  if (shutdown !== undefined) {
    lines.push({
      label: 'shutdown (deactivation) per activation, untimed',
      value: shutdown,
      unit: 'ns',
      note: 'cluster.shutdown() after each round, outside the ratio',
    });
  }
  return lines;
}

// Memory --------------------------------------------------------------------------------------

/** Idle activations per measurement (each in a fresh process: see bench/memory/idle-activations.ts). */
const IDLE_ACTIVATIONS = 50_000;
/** The bound on the runtime's own heap per idle activation. */
const MAX_RUNTIME_BYTES = 300;
const run = promisify(execFile);
const MEMORY_CHILD = fileURLToPath(new URL('../memory/idle-activations.js', import.meta.url));

/**
 * Heap per idle activation, 3 pairs of fresh processes (this Node, `--expose-gc`): `runtime` is
 * grains minus the Map baseline of the same pair, `map` the baseline alone.
 */
async function idleActivationHeap(what: 'runtime' | 'map'): Promise<Summary> {
  const values: number[] = [];
  for (let i = 0; i < 3; i++) {
    const map = await heapPerInstance('map');
    values.push(what === 'map' ? map : (await heapPerInstance('grains')) - map);
  }
  return summarize(values);
}

async function heapPerInstance(mode: 'grains' | 'map'): Promise<number> {
  const { stdout } = await run(process.execPath, ['--expose-gc', MEMORY_CHILD, mode, String(IDLE_ACTIVATIONS)], { timeout: 120_000 });
  const reply = JSON.parse(stdout.trim().split('\n').pop() ?? '') as { perInstance?: unknown };
  if (typeof reply.perInstance !== 'number') throw new Error(`idle-activations ${mode}: unexpected output ${stdout}`);
  return reply.perInstance;
}
