/**
 * Scenario "local call": grain calls per second on one member with 1,000 concurrent callers
 * (async loops, each awaiting `ref.add(1)` a fixed number of times per round), beside the
 * same loops awaiting an ordinary object's async method.
 *
 * The runtime is imported lazily (support/runtime.ts) so that this module can run the plain
 * baseline in the pristine worker without loading it.
 */
import { createHook } from 'node:async_hooks';
import type { Cluster, GrainClient, GrainContext, GrainRef } from 'nestjs-grains';
import * as probes from '../support/probes.js';
import { loadRuntime, SilentLogger } from '../support/runtime.js';
import type { BenchParams, BreakdownLine, Figures, ScenarioSpec, Subject } from '../support/scenario.js';
import { summarize, type Summary } from '../support/stats.js';
import { hrtimeNs, nsSince, yieldToEventLoop } from '../support/timing.js';

// The work: the same method body on both sides. ---------------------------------------------

/** The plain baseline: an ordinary object with an async method. */
export class PlainCounter {
  n = 0;
  async add(x: number): Promise<number> {
    this.n += x;
    return this.n;
  }
}

/** The grain: the same method body, plus the context a grain usually keeps. */
export class CounterGrain {
  n = 0;
  constructor(readonly ctx: GrainContext) {}
  async add(x: number): Promise<number> {
    this.n += x;
    return this.n;
  }
}

/**
 * The turn skeleton: the least any call that runs as a turn must do, and nothing more (no
 * registry, no deadline, no call chain, no queue). The caller awaits a promise of its own,
 * because a deadline (or an abort) must be able to answer it while the method still runs;
 * the method's own promise ends the turn through a reaction, which answers the caller. This is
 * the ceiling of a grain call as a share of a plain call: what the runtime adds comes on top.
 */
class SkeletonCall {
  settled = false;
  constructor(
    readonly args: readonly unknown[],
    readonly resolve: (value: unknown) => void,
    readonly reject: (reason: unknown) => void,
  ) {}
}

const skeletonSettlers: { resolve: (value: unknown) => void; reject: (reason: unknown) => void } = { resolve: () => {}, reject: () => {} };
function takeSkeletonSettlers(resolve: (value: unknown) => void, reject: (reason: unknown) => void): void {
  skeletonSettlers.resolve = resolve;
  skeletonSettlers.reject = reject;
}

function endSkeletonTurn(call: SkeletonCall, ok: boolean, value: unknown): void {
  if (call.settled) return;
  call.settled = true;
  if (ok) call.resolve(value);
  else call.reject(value);
}

function skeletonCall(target: PlainCounter, x: number): Promise<unknown> {
  const promise = new Promise<unknown>(takeSkeletonSettlers);
  const call = new SkeletonCall([x], skeletonSettlers.resolve, skeletonSettlers.reject);
  const turn = (target.add as (...args: unknown[]) => Promise<number>).apply(target, call.args as unknown[]);
  turn.then(
    (value) => endSkeletonTurn(call, true, value),
    (error: unknown) => endSkeletonTurn(call, false, error),
  );
  return promise;
}

// Caller loops. NOTE: one function per subject on purpose: a shared loop would see both plain
// objects and grain references at `target.add` and go polymorphic, taxing the baseline.

async function plainLoopDistinct(target: PlainCounter, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await target.add(1);
}

async function plainLoopOne(target: PlainCounter, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await target.add(1);
}

async function plainLoopAfter(target: PlainCounter, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await target.add(1);
}

async function plainLoopAls(target: PlainCounter, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await target.add(1);
}

async function skeletonLoop(target: PlainCounter, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await skeletonCall(target, 1);
}

async function grainLoopDistinct(ref: GrainRef<CounterGrain>, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await ref.add(1);
}

async function grainLoopOne(ref: GrainRef<CounterGrain>, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await ref.add(1);
}

async function grainLoopAls(ref: GrainRef<CounterGrain>, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await ref.add(1);
}

function perCaller(ops: number, concurrency: number): number {
  return Math.max(1, Math.ceil(ops / concurrency));
}

// Subjects ----------------------------------------------------------------------------------

type PlainLoop = (target: PlainCounter, count: number) => Promise<void>;

/** `concurrency` loops over `objects` plain objects (1 = all loops share one object). */
class PlainSubject implements Subject {
  private targets: PlainCounter[] = [];
  private expected = 0;

  constructor(
    private readonly params: BenchParams,
    private readonly objects: number,
    private readonly loop: PlainLoop,
  ) {}

  async setup(): Promise<void> {
    const shared = new PlainCounter();
    for (let j = 0; j < this.params.concurrency; j++) this.targets.push(this.objects === 1 ? shared : new PlainCounter());
  }

  async round(ops: number): Promise<number> {
    const c = this.params.concurrency;
    const per = perCaller(ops, c);
    const loops = new Array<Promise<void>>(c);
    for (let j = 0; j < c; j++) loops[j] = this.loop(this.targets[j]!, per);
    await Promise.all(loops);
    this.expected += per * c;
    return per * c;
  }

  async cleanup(): Promise<void> {
    const seen = new Set(this.targets);
    let total = 0;
    for (const t of seen) total += t.n;
    if (total !== this.expected) throw new Error(`plain counters add up to ${total}, expected ${this.expected}`);
  }

  async teardown(): Promise<void> {
    this.targets = [];
  }
}

type GrainLoop = (ref: GrainRef<CounterGrain>, count: number) => Promise<void>;

/** `concurrency` loops over `grains` grain identities (1 = all loops call one grain). */
class GrainSubject implements Subject {
  private cluster: Cluster | undefined;
  private refs: GrainRef<CounterGrain>[] = [];
  private distinct: GrainRef<CounterGrain>[] = [];
  private expected = 0;
  private readonly logger = new SilentLogger();

  constructor(
    private readonly params: BenchParams,
    private readonly grains: number,
    private readonly loop: GrainLoop,
    /** The member's `callChains`; undefined = the default ('references'). */
    private readonly callChains?: 'async-local-storage',
  ) {}

  async setup(): Promise<void> {
    const { cluster, client } = await startCounterCluster(`bench-local-${this.grains}`, this.logger, this.callChains);
    this.cluster = cluster;
    for (let g = 0; g < this.grains; g++) this.distinct.push(client.get(`counter-${g}`));
    // One reference per caller (references are cheap); callers share identities when grains < concurrency.
    for (let j = 0; j < this.params.concurrency; j++) this.refs.push(client.get(`counter-${j % this.grains}`));
    await Promise.all(this.distinct.map((ref) => ref.add(0))); // activate every grain before timing
    const { activations } = cluster.stats();
    if (activations !== this.grains) throw new Error(`expected ${this.grains} activations, found ${activations}`);
  }

  async round(ops: number): Promise<number> {
    const c = this.params.concurrency;
    const per = perCaller(ops, c);
    const loops = new Array<Promise<void>>(c);
    for (let j = 0; j < c; j++) loops[j] = this.loop(this.refs[j]!, per);
    await Promise.all(loops);
    this.expected += per * c;
    return per * c;
  }

  async cleanup(): Promise<void> {
    const values = await Promise.all(this.distinct.map((ref) => ref.add(0)));
    const total = values.reduce((a, b) => a + b, 0);
    if (total !== this.expected) throw new Error(`grain counters add up to ${total}, expected ${this.expected}`);
    const { activations } = this.cluster!.stats();
    if (activations !== this.grains) throw new Error(`activations changed during the run: ${activations}`);
  }

  async teardown(): Promise<void> {
    await this.cluster?.shutdown();
  }

  loggedProblems(): number {
    return this.logger.problems;
  }
}

async function startCounterCluster(
  name: string,
  logger: SilentLogger,
  callChains: 'async-local-storage' | undefined,
): Promise<{ cluster: Cluster; client: GrainClient<CounterGrain> }> {
  const { Cluster } = await loadRuntime();
  const cluster = new Cluster({ clusterName: name, logger, ...(callChains !== undefined && { callChains }) });
  cluster.registerKind({ name: 'counter', grainClass: CounterGrain, create: (ctx) => new CounterGrain(ctx) });
  await cluster.start();
  return { cluster, client: cluster.client<CounterGrain>('counter') };
}

// Sweeper probe -----------------------------------------------------------------------------

/**
 * µs per `DeadlineSweeper.sweep()` while `grains` mailboxes each run one turn that waits on a
 * gate (so every mailbox is watched), as a member's busy activations would. The sweeper runs
 * this every 10 ms while anything is pending. The kernel is loaded lazily, like the runtime.
 */
async function sweepBusy(params: BenchParams): Promise<Summary> {
  await loadRuntime();
  const [{ DeadlineSweeper }, { Mailbox }, { Call }] = await Promise.all([
    import('../../lib/actor/deadline-sweeper.js'),
    import('../../lib/actor/mailbox.js'),
    import('../../lib/actor/call.js'),
  ]);
  const sweeper = new DeadlineSweeper();
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const settled: Promise<unknown>[] = [];
  const handler = {
    admit: () => true,
    invoke: () => gate,
    onTurnSettled: (call: InstanceType<typeof Call>, ok: boolean, value: unknown) => (ok ? call.resolve(value) : call.reject(value)),
    onExpired: () => {},
    onHung: () => {},
  };
  const deadline = performance.now() + 60_000;
  const settings = { sweeper, maxQueued: 10_000, hangAfterMs: 10_000, asyncContext: false };
  for (let g = 0; g < params.concurrency; g++) {
    const mailbox = new Mailbox(handler, settings);
    settled.push(
      new Promise((resolve, reject) => {
        mailbox.post(new Call('gate', `gate-${g}`, `gate/gate-${g}`, 'wait', [], deadline, 60_000, [], resolve, reject));
      }),
    );
    mailbox.resume();
  }
  await yieldToEventLoop();
  const perSweep: number[] = [];
  const sweeps = 500;
  for (let r = 0; r < 10; r++) {
    const start = hrtimeNs();
    for (let i = 0; i < sweeps; i++) sweeper.sweep();
    if (r >= 3) perSweep.push(nsSince(start) / sweeps / 1000);
  }
  open();
  await Promise.all(settled);
  sweeper.stop();
  return summarize(perSweep);
}

// Promise count probe ------------------------------------------------------------------------

/**
 * Promises created per operation of a subject, counted with an async hook's `init` over one
 * round (after a warm-up round). Counted in the runtime worker, where promise hooks are on:
 * there an `await` of a native promise also creates a throw-away promise, which is exactly
 * what pays the AsyncLocalStorage tax.
 */
async function promisesPerOp(params: BenchParams, create: (p: BenchParams) => Subject): Promise<Summary> {
  const subject = create(params);
  await subject.setup();
  await subject.round(params.concurrency * 5);
  let promises = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROMISE') promises++;
    },
  });
  hook.enable();
  let ops: number;
  try {
    ops = await subject.round(params.concurrency * 20);
  } finally {
    hook.disable();
  }
  await subject.teardown();
  return summarize([promises / ops]);
}

// The scenario ------------------------------------------------------------------------------

export const scenario: ScenarioSpec = {
  id: 'local-call',
  title: 'local call',
  unit: 'calls',
  description:
    'Grain calls per second on one member: every caller is an async loop awaiting `ref.add(1)`; ' +
    'all grains activated before timing. Baseline: the same loops awaiting an ordinary object’s async method.',
  subjects: [
    { id: 'plain-distinct', label: 'plain object, 1 per caller', role: 'pristine', create: (p) => new PlainSubject(p, p.concurrency, plainLoopDistinct) },
    { id: 'plain-one', label: 'plain object, 1 shared', role: 'pristine', create: (p) => new PlainSubject(p, 1, plainLoopOne) },
    {
      id: 'skeleton',
      label: 'turn skeleton, 1 object per caller',
      role: 'pristine',
      create: (p) => new PlainSubject(p, p.concurrency, skeletonLoop),
    },
    { id: 'grain-distinct', label: 'grain, 1 per caller', role: 'runtime', create: (p) => new GrainSubject(p, p.concurrency, grainLoopDistinct) },
    { id: 'grain-one', label: 'grain, 1 shared', role: 'runtime', create: (p) => new GrainSubject(p, 1, grainLoopOne) },
    { id: 'plain-after', label: 'plain object, 1 per caller', role: 'runtime', create: (p) => new PlainSubject(p, p.concurrency, plainLoopAfter) },
    {
      id: 'grain-als',
      label: 'grain, 1 per caller',
      role: 'runtime-als',
      create: (p) => new GrainSubject(p, p.concurrency, grainLoopAls, 'async-local-storage'),
    },
    { id: 'plain-als', label: 'plain object, 1 per caller', role: 'runtime-als', create: (p) => new PlainSubject(p, p.concurrency, plainLoopAls) },
  ],
  ratios: [
    { id: 'grain-distinct/plain', label: 'grain (1 per caller) / plain, pristine', numerator: 'grain-distinct', denominator: 'plain-distinct', target: 0.25 },
    { id: 'grain-one/plain', label: 'grain (1 shared) / plain (1 shared), pristine', numerator: 'grain-one', denominator: 'plain-one', target: 0.25 },
    {
      id: 'skeleton/plain',
      label: 'turn skeleton / plain, pristine (the ceiling of grain / plain)',
      numerator: 'skeleton',
      denominator: 'plain-distinct',
    },
    { id: 'grain-distinct/skeleton', label: 'grain (1 per caller) / turn skeleton, pristine', numerator: 'grain-distinct', denominator: 'skeleton' },
    {
      id: 'plain-after/plain',
      label: 'plain after grain turns / pristine (host-app tax)',
      numerator: 'plain-after',
      denominator: 'plain-distinct',
      target: 0.9,
    },
    { id: 'plain-als/plain', label: "plain, callChains 'async-local-storage' / pristine", numerator: 'plain-als', denominator: 'plain-distinct' },
    { id: 'grain-als/grain', label: "grain, callChains 'async-local-storage' / default", numerator: 'grain-als', denominator: 'grain-distinct' },
  ],
  probes: [
    { id: 'await-pristine', label: 'await asyncFn(), sequential', role: 'pristine', unit: 'ns/op', run: () => probes.awaitAsync() },
    { id: 'await-runtime', label: 'await asyncFn(), sequential', role: 'runtime', unit: 'ns/op', run: () => probes.awaitAsync() },
    { id: 'await-als', label: 'await asyncFn(), sequential', role: 'runtime-als', unit: 'ns/op', run: () => probes.awaitAsync() },
    { id: 'direct-call', label: 'direct call of a turn body', role: 'runtime-als', unit: 'ns/op', run: () => probes.directCall() },
    { id: 'als-run', label: 'als.run(store, body, a, b)', role: 'runtime-als', unit: 'ns/op', run: () => probes.alsRun() },
    { id: 'perf-now', label: 'performance.now()', role: 'runtime', unit: 'ns/op', run: () => probes.perfNow() },
    { id: 'timer', label: 'setTimeout + clearTimeout', role: 'runtime', unit: 'ns/op', run: () => probes.timerArmClear() },
    { id: 'sweep', label: 'sweeper.sweep(), 1,000 busy mailboxes', role: 'runtime', unit: 'µs/sweep', run: (p) => sweepBusy(p) },
    {
      id: 'promises-grain',
      label: 'promises created per grain call',
      role: 'runtime-als',
      unit: 'promises/op',
      run: (p) => promisesPerOp(p, (q) => new GrainSubject(q, q.concurrency, grainLoopAls, 'async-local-storage')),
    },
    {
      id: 'promises-plain',
      label: 'promises created per plain call',
      role: 'runtime-als',
      unit: 'promises/op',
      run: (p) => promisesPerOp(p, (q) => new PlainSubject(q, q.concurrency, plainLoopAls)),
    },
  ],
  breakdown: localCallBreakdown,
};

function localCallBreakdown(f: Figures): BreakdownLine[] {
  const grainNs = 1e9 / f.rate['grain-distinct']!;
  const plainNs = 1e9 / f.rate['plain-distinct']!;
  const skeletonNs = 1e9 / f.rate['skeleton']!;
  const plainAfterNs = 1e9 / f.rate['plain-after']!;
  const plainAlsNs = 1e9 / f.rate['plain-als']!;
  const grainAlsNs = 1e9 / f.rate['grain-als']!;
  const oneNs = 1e9 / f.rate['grain-one']!;
  const awaitTax = f.probe['await-als']! - f.probe['await-pristine']!;
  const alsRun = f.probe['als-run']! - f.probe['direct-call']!;
  const clock = f.probe['perf-now']!;
  // One sweep per 10 ms while anything is pending: its CPU per second spread over the calls of that second.
  const sweepPerCall = (f.probe['sweep']! * 1000 * 100) / f.rate['grain-distinct']!;
  // The plain loop's ALS tax spread over the promises it creates under hooks, times the grain call's promises.
  const promisesGrain = f.probe['promises-grain']!;
  const promisesPlain = f.probe['promises-plain']!;
  const taxPerPromise = (plainAlsNs - plainNs) / promisesPlain;
  const alsGrain = taxPerPromise * promisesGrain + alsRun;
  const share = (ns: number) => ns / grainNs;
  return [
    { label: 'grain call, 1 grain per caller (wall / call)', value: grainNs, unit: 'ns', share: 1 },
    { label: 'grain call, 1 shared grain (wall / call)', value: oneNs, unit: 'ns', share: share(oneNs) },
    { label: 'plain call, pristine process', value: plainNs, unit: 'ns', share: share(plainNs) },
    {
      label: 'turn skeleton (own promise + method + reaction), pristine',
      value: skeletonNs,
      unit: 'ns',
      share: share(skeletonNs),
      note: 'the least a turn-based call does: no registry, deadline, chain or queue',
    },
    {
      label: 'runtime beyond the turn skeleton (across processes)',
      value: grainNs - skeletonNs,
      unit: 'ns',
      share: share(grainNs - skeletonNs),
      note: 'grain (runtime child) − skeleton (pristine child): registry, clock, call record, chain, fencing, mailbox (+ host tax, ~1 %)',
    },
    { label: 'plain call, after grain turns (default callChains)', value: plainAfterNs, unit: 'ns', share: share(plainAfterNs) },
    { label: 'host-app tax on a plain call (after − pristine)', value: plainAfterNs - plainNs, unit: 'ns', share: share(plainAfterNs - plainNs) },
    { label: 'runtime beyond a plain call (same process)', value: grainNs - plainAfterNs, unit: 'ns', share: share(grainNs - plainAfterNs) },
    { label: "grain call, callChains 'async-local-storage'", value: grainAlsNs, unit: 'ns', share: share(grainAlsNs) },
    { label: "plain call, callChains 'async-local-storage' process", value: plainAlsNs, unit: 'ns', share: share(plainAlsNs) },
    { label: 'ALS tax per async call + await (sequential)', value: awaitTax, unit: 'ns', note: 'await-als − await-pristine; paid per promise-creating hop' },
    { label: 'AsyncLocalStorage.run, isolated (1 per call)', value: alsRun, unit: 'ns', share: share(alsRun), note: 'als-run − direct-call' },
    {
      label: 'ALS tax per promise created under hooks',
      value: taxPerPromise,
      unit: 'ns',
      note: `plain ALS tax / ${promisesPlain.toFixed(2)} promises per plain call`,
    },
    {
      label: "estimated ALS cost of a grain call ('async-local-storage')",
      value: alsGrain,
      unit: 'ns',
      share: share(alsGrain),
      note: `${promisesGrain.toFixed(2)} promises × tax per promise + als.run (estimate)`,
    },
    { label: 'deadline: performance.now() (1 per call)', value: clock, unit: 'ns', share: share(clock) },
    {
      label: 'deadline: sweeper, 1 sweep / 10 ms, per call',
      value: sweepPerCall,
      unit: 'ns',
      share: share(sweepPerCall),
      note: `${f.probe['sweep']!.toFixed(1)} µs/sweep; never fires during a pure-microtask round (timers starve)`,
    },
    {
      label: 'alternative: a setTimeout per call (arm + clear)',
      value: f.probe['timer']!,
      unit: 'ns',
      share: share(f.probe['timer']!),
      note: 'not used by the runtime; for comparison',
    },
  ];
}
