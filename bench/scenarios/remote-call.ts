/**
 * Scenario "remote call": grain calls between two processes. Member A (the runtime worker,
 * a client-only member that hosts nothing) calls `echo` grains hosted by member B (a server
 * child forked from dist/, bench/remote/member.ts), one grain per caller, 64 bytes of
 * arguments and 64 bytes back. Figures: calls/s with `concurrency` callers, and p50/p99
 * latency at 1 and at `concurrency` callers; at 1 caller also with each call made from a task
 * of its own (after `setImmediate`, so in the check phase; a call for a new HTTP request starts
 * in the poll phase), rather than from the last answer's continuation.
 *
 * Baselines, same machine, same run, same concurrency, same 64-byte payloads, both between
 * two processes (the pristine worker and a grpc-js echo server child, bench/remote/echo-server.ts,
 * neither of which ever loads nestjs-grains):
 *   (a) grpc-js unary calls (one call per operation: the usual way to call a service);
 *   (b) a grpc-js bidirectional stream carrying echo messages coalesced per event-loop turn
 *       into frames of up to 1,000 (bench/remote/echo-wire.ts): what the runtime's transport
 *       scheme can carry at best, without the runtime.
 *
 * Nothing here loads the runtime or grpc-js at import time (the worker imports every scenario).
 */
import { performance } from 'node:perf_hooks';
import type { Cluster, GrainRef } from 'nestjs-grains';
import { builtScript, cpuMicros, ServerChild } from '../remote/child-process.js';
import { ECHO_KIND, type EchoGrain, REMOTE_CLUSTER_NAME } from '../remote/echo-grain.js';
import { BatchedEchoClient, echoService } from '../remote/echo-wire.js';
import { type BenchCerts, makeBenchCerts } from '../remote/tls-certs.js';
import { loadRuntime, SilentLogger } from '../support/runtime.js';
import type { BenchParams, LatencySample, ScenarioSpec, Subject } from '../support/scenario.js';
import { hrtimeNs, nsSince, yieldToEventLoop } from '../support/timing.js';

export const PAYLOAD_BYTES = 64;

/** The 64-byte argument: the same bytes for every call of every subject. */
function makePayload(): Buffer {
  const bytes = Buffer.alloc(PAYLOAD_BYTES);
  for (let i = 0; i < PAYLOAD_BYTES; i++) bytes[i] = (i * 31 + 7) & 0xff;
  return bytes;
}

function perCaller(ops: number, callers: number): number {
  return Math.max(1, Math.ceil(ops / callers));
}

/** Nearest-rank percentiles of per-call latencies (ms) → µs. */
function latencySample(samples: Float64Array, ns: number): LatencySample {
  samples.sort();
  const n = samples.length;
  const at = (q: number) => samples[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]! * 1000;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += samples[i]!;
  return { calls: n, ns, p50Us: at(0.5), p99Us: at(0.99), meanUs: (sum / n) * 1000, maxUs: samples[n - 1]! * 1000 };
}

// Caller loops. NOTE: one function per subject and per kind of round (see local-call.ts): a
// shared loop would go polymorphic at the call site. Each sums the bytes it got back.

async function grainLoop(ref: GrainRef<EchoGrain>, data: Uint8Array, count: number): Promise<number> {
  let bytes = 0;
  for (let i = 0; i < count; i++) bytes += (await ref.echo(data)).byteLength;
  return bytes;
}

async function grainLatencyLoop(ref: GrainRef<EchoGrain>, data: Uint8Array, count: number, out: Float64Array, from: number): Promise<number> {
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    bytes += (await ref.echo(data)).byteLength;
    out[from + i] = performance.now() - t0;
  }
  return bytes;
}

/**
 * As grainLatencyLoop, each call made from a task of its own (an untimed `setImmediate` first:
 * the check phase), as a call made for a new HTTP request or a timer is, rather than from the
 * last answer's continuation.
 */
async function grainTaskLatencyLoop(ref: GrainRef<EchoGrain>, data: Uint8Array, count: number, out: Float64Array, from: number): Promise<number> {
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    await nextTask();
    const t0 = performance.now();
    bytes += (await ref.echo(data)).byteLength;
    out[from + i] = performance.now() - t0;
  }
  return bytes;
}

interface UnaryClient {
  unary(request: Buffer, callback: (error: Error | null, response?: Buffer) => void): unknown;
  close(): void;
}

function unaryEcho(client: UnaryClient, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.unary(data, (error, response) => (error ? reject(error) : resolve(response!)));
  });
}

async function unaryLoop(client: UnaryClient, data: Buffer, count: number): Promise<number> {
  let bytes = 0;
  for (let i = 0; i < count; i++) bytes += (await unaryEcho(client, data)).byteLength;
  return bytes;
}

async function unaryLatencyLoop(client: UnaryClient, data: Buffer, count: number, out: Float64Array, from: number): Promise<number> {
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    bytes += (await unaryEcho(client, data)).byteLength;
    out[from + i] = performance.now() - t0;
  }
  return bytes;
}

async function streamLoop(client: BatchedEchoClient, data: Buffer, count: number): Promise<number> {
  let bytes = 0;
  for (let i = 0; i < count; i++) bytes += (await client.echo(data)).byteLength;
  return bytes;
}

async function streamLatencyLoop(client: BatchedEchoClient, data: Buffer, count: number, out: Float64Array, from: number): Promise<number> {
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    bytes += (await client.echo(data)).byteLength;
    out[from + i] = performance.now() - t0;
  }
  return bytes;
}

async function streamTaskLatencyLoop(client: BatchedEchoClient, data: Buffer, count: number, out: Float64Array, from: number): Promise<number> {
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    await nextTask();
    const t0 = performance.now();
    bytes += (await client.echo(data)).byteLength;
    out[from + i] = performance.now() - t0;
  }
  return bytes;
}

/** Resolves from a task of its own (the check phase), not from the caller's continuation. */
function nextTask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Runs `callers` loops of `per` operations; checks every call came back with 64 bytes. */
async function runLoops(callers: number, per: number, start: (j: number) => Promise<number>): Promise<number> {
  const loops = new Array<Promise<number>>(callers);
  for (let j = 0; j < callers; j++) loops[j] = start(j);
  const bytes = await Promise.all(loops);
  let total = 0;
  for (const b of bytes) total += b;
  if (total !== callers * per * PAYLOAD_BYTES) throw new Error(`echoed ${total} bytes, expected ${callers * per * PAYLOAD_BYTES}`);
  return callers * per;
}

async function runLatencyLoops(
  callers: number,
  calls: number,
  start: (j: number, per: number, out: Float64Array) => Promise<number>,
): Promise<{ sample: LatencySample; ops: number }> {
  const per = perCaller(calls, callers);
  const out = new Float64Array(callers * per);
  const t0 = hrtimeNs();
  const ops = await runLoops(callers, per, (j) => start(j, per, out));
  const ns = nsSince(t0);
  return { sample: latencySample(out, ns), ops };
}

/**
 * CPU time of both processes over a timed round: this one's read at the round's start and end
 * (inside the timer, ~1 µs), the server child's asked over IPC just before and just after it
 * (outside the timer; the child is idle then). Busy % is CPU time / wall time of the round
 * (more than 100% when GC or libuv threads run beside the main thread).
 */
class CpuMeter {
  private child0 = 0;
  private own0 = 0;
  private t0 = 0n;
  private ownUs = 0;
  private wallUs = 0;
  private ops = 0;
  private last: Record<string, number> | undefined;

  async before(child: ServerChild): Promise<void> {
    this.ops = 0;
    this.last = undefined;
    this.child0 = await child.request<number>('cpu');
  }

  start(): void {
    this.t0 = hrtimeNs();
    this.own0 = cpuMicros();
  }

  stop(ops: number): void {
    this.ownUs = cpuMicros() - this.own0;
    this.wallUs = nsSince(this.t0) / 1000;
    this.ops = ops;
  }

  async after(child: ServerChild): Promise<void> {
    const childUs = (await child.request<number>('cpu')) - this.child0;
    if (this.ops === 0) return; // a latency round, or no round
    this.last = {
      'caller CPU µs/call': this.ownUs / this.ops,
      'server CPU µs/call': childUs / this.ops,
      'caller busy %': (100 * this.ownUs) / this.wallUs,
      'server busy %': (100 * childUs) / this.wallUs,
    };
  }

  figures(): Record<string, number> | undefined {
    return this.last;
  }
}

// Subjects ----------------------------------------------------------------------------------

export interface GrainSubjectOptions {
  /** execArgv of member B (e.g. --cpu-prof flags); none by default. */
  readonly memberExecArgv?: readonly string[];
  /** Mutual TLS between A and B (`remote.tls`, certificates made with openssl for the run). */
  readonly tls?: boolean;
}

/** Member A here (client-only), member B in a child process; one `echo` grain per caller. */
export class RemoteGrainSubject implements Subject {
  private member: ServerChild | undefined;
  private cluster: Cluster | undefined;
  private refs: GrainRef<EchoGrain>[] = [];
  /** A plain Uint8Array (msgpack `bin`): a Buffer would travel as the codec's Buffer extension. */
  private readonly data = new Uint8Array(makePayload());
  private expected = 0;
  private readonly logger = new SilentLogger();
  private memberProblems = 0;
  private readonly cpu = new CpuMeter();
  private certs: BenchCerts | undefined;

  constructor(
    private readonly params: BenchParams,
    private readonly options: GrainSubjectOptions = {},
  ) {}

  get memberPid(): number | undefined {
    return this.member?.pid;
  }

  async setup(): Promise<void> {
    try {
      const certs = (this.certs = this.options.tls ? makeBenchCerts() : undefined);
      const tlsArgs = certs === undefined ? [] : [certs.b.caFile, certs.b.certFile, certs.b.keyFile];
      this.member = await ServerChild.start('member B', builtScript('../remote/member.js', import.meta.url), tlsArgs, this.options.memberExecArgv ?? []);
      const { Cluster, HashIdentityLookup, StaticProvider } = await loadRuntime();
      const cluster = new Cluster({
        clusterName: REMOTE_CLUSTER_NAME,
        logger: this.logger,
        provider: new StaticProvider({ members: [this.member.address] }),
        identityLookup: new HashIdentityLookup(),
        remote: certs === undefined ? {} : { tls: certs.a },
      });
      this.cluster = cluster;
      await cluster.start();
      // Bounded: B's handshake tells A that B hosts `echo` (a few ms on loopback).
      for (let i = 0; i < 500 && !cluster.members().some((m) => m.kinds.includes(ECHO_KIND)); i++) await new Promise((r) => setTimeout(r, 10));
      if (!cluster.members().some((m) => m.kinds.includes(ECHO_KIND))) throw new Error(`member A did not learn member B (${this.member.address}) within 5 s`);
      const client = cluster.client<EchoGrain>(ECHO_KIND);
      for (let j = 0; j < this.params.concurrency; j++) this.refs.push(client.get(`echo-${j}`));
      // Activate every grain on B (and fill A's actor cache) before timing.
      await Promise.all(this.refs.map((ref) => ref.echo(this.data)));
      this.expected = this.refs.length;
      await this.check();
    } catch (error) {
      await this.teardown().catch(() => {});
      throw error;
    }
  }

  async prepare(): Promise<void> {
    await this.cpu.before(this.member!);
  }

  async round(ops: number): Promise<number> {
    const c = this.params.concurrency;
    const per = perCaller(ops, c);
    const refs = this.refs;
    const data = this.data;
    this.cpu.start();
    const done = await runLoops(c, per, (j) => grainLoop(refs[j]!, data, per));
    this.cpu.stop(done);
    this.expected += done;
    return done;
  }

  roundFigures(): Record<string, number> | undefined {
    return this.cpu.figures();
  }

  async latency(callers: number, calls: number, fromTask = false): Promise<LatencySample> {
    const refs = this.refs;
    const data = this.data;
    const loop = fromTask ? grainTaskLatencyLoop : grainLatencyLoop;
    const { sample, ops } = await runLatencyLoops(callers, calls, (j, per, out) => loop(refs[j % refs.length]!, data, per, out, j * per));
    this.expected += ops;
    return sample;
  }

  async cleanup(): Promise<void> {
    await this.cpu.after(this.member!);
    await this.check();
  }

  /** Outside the timer: every grain's count adds up, B still has exactly one activation per grain, A resolved each grain once. */
  private async check(): Promise<void> {
    const counts = await Promise.all(this.refs.map((ref) => ref.count()));
    const total = counts.reduce((a, b) => a + b, 0);
    if (total !== this.expected) throw new Error(`member B's grains counted ${total} calls, expected ${this.expected}`);
    const stats = await this.member!.request<{ activations: number; activated: number; loggedProblems: number; lastProblem: string | null }>('stats');
    this.memberProblems = stats.loggedProblems;
    if (stats.activations !== this.refs.length || stats.activated !== this.refs.length) {
      throw new Error(`member B has ${stats.activations} activations (${stats.activated} created), expected ${this.refs.length}`);
    }
    if (stats.loggedProblems > 0) throw new Error(`member B logged ${stats.loggedProblems} problem(s), last: ${stats.lastProblem}`);
    if (this.logger.problems > 0) throw new Error(`member A logged ${this.logger.problems} problem(s), last: ${this.logger.lastProblem}`);
    const { pidCache } = this.cluster!.stats();
    if (pidCache.size !== this.refs.length) throw new Error(`member A caches ${pidCache.size} grain locations, expected ${this.refs.length}`);
  }

  async teardown(): Promise<void> {
    try {
      await this.cluster?.shutdown();
    } finally {
      this.cluster = undefined;
      await this.member?.stop();
      this.member = undefined;
      this.certs?.remove();
      this.certs = undefined;
    }
  }

  loggedProblems(): number {
    return this.logger.problems + this.memberProblems;
  }
}

type ClientCtor = new (address: string, credentials: unknown) => UnaryClient & { stream(): import('@grpc/grpc-js').ClientDuplexStream<Buffer, Buffer> };

async function echoClient(address: string): Promise<InstanceType<ClientCtor>> {
  const grpc = await import('@grpc/grpc-js');
  const Ctor = grpc.makeGenericClientConstructor(echoService, 'Echo') as unknown as ClientCtor;
  const client = new Ctor(address, grpc.credentials.createInsecure());
  await new Promise<void>((resolve, reject) =>
    (client as unknown as import('@grpc/grpc-js').Client).waitForReady(Date.now() + 10_000, (error) => (error ? reject(error) : resolve())),
  );
  return client;
}

interface EchoServerStats {
  unary: number;
  streamed: number;
  badFrames: number;
}

/** The pristine worker here, the grpc-js echo server in a child process. */
abstract class EchoSubject implements Subject {
  protected server: ServerChild | undefined;
  protected client: InstanceType<ClientCtor> | undefined;
  protected readonly data = makePayload();
  protected expected = 0;
  protected readonly cpu = new CpuMeter();

  constructor(protected readonly params: BenchParams) {}

  protected abstract counted(stats: EchoServerStats): number;

  async setup(): Promise<void> {
    try {
      this.server = await ServerChild.start('echo server', builtScript('../remote/echo-server.js', import.meta.url), []);
      this.client = await echoClient(this.server.address);
      await this.open();
      await this.round(this.params.concurrency); // one call per caller, to open everything before timing
      await this.cleanup();
    } catch (error) {
      await this.teardown().catch(() => {});
      throw error;
    }
  }

  protected async open(): Promise<void> {}

  abstract round(ops: number): Promise<number>;

  async prepare(): Promise<void> {
    await this.cpu.before(this.server!);
  }

  roundFigures(): Record<string, number> | undefined {
    return this.cpu.figures();
  }

  async cleanup(): Promise<void> {
    await this.cpu.after(this.server!);
    const stats = await this.server!.request<EchoServerStats>('stats');
    if (this.counted(stats) !== this.expected) throw new Error(`the echo server answered ${this.counted(stats)} calls, expected ${this.expected}`);
    if (stats.badFrames > 0) throw new Error(`the echo server dropped ${stats.badFrames} malformed frames`);
  }

  async teardown(): Promise<void> {
    this.client?.close();
    this.client = undefined;
    await this.server?.stop();
    this.server = undefined;
  }
}

class UnarySubject extends EchoSubject {
  protected counted(stats: EchoServerStats): number {
    return stats.unary;
  }

  async round(ops: number): Promise<number> {
    const c = this.params.concurrency;
    const per = perCaller(ops, c);
    const client = this.client!;
    const data = this.data;
    this.cpu.start();
    const done = await runLoops(c, per, () => unaryLoop(client, data, per));
    this.cpu.stop(done);
    this.expected += done;
    return done;
  }

  async latency(callers: number, calls: number, fromTask = false): Promise<LatencySample> {
    if (fromTask) throw new Error('the unary subject measures latency from the last answer’s continuation only');
    const client = this.client!;
    const data = this.data;
    const { sample, ops } = await runLatencyLoops(callers, calls, (j, per, out) => unaryLatencyLoop(client, data, per, out, j * per));
    this.expected += ops;
    return sample;
  }
}

class StreamSubject extends EchoSubject {
  private stream: BatchedEchoClient | undefined;
  private duplex: import('@grpc/grpc-js').ClientDuplexStream<Buffer, Buffer> | undefined;

  protected counted(stats: EchoServerStats): number {
    return stats.streamed;
  }

  protected override async open(): Promise<void> {
    this.duplex = this.client!.stream();
    this.stream = new BatchedEchoClient(this.duplex);
    await yieldToEventLoop();
  }

  async round(ops: number): Promise<number> {
    const c = this.params.concurrency;
    const per = perCaller(ops, c);
    const stream = this.stream!;
    const data = this.data;
    this.cpu.start();
    const done = await runLoops(c, per, () => streamLoop(stream, data, per));
    this.cpu.stop(done);
    this.expected += done;
    return done;
  }

  async latency(callers: number, calls: number, fromTask = false): Promise<LatencySample> {
    const stream = this.stream!;
    const data = this.data;
    const loop = fromTask ? streamTaskLatencyLoop : streamLatencyLoop;
    const { sample, ops } = await runLatencyLoops(callers, calls, (j, per, out) => loop(stream, data, per, out, j * per));
    this.expected += ops;
    return sample;
  }

  override async teardown(): Promise<void> {
    this.duplex?.end();
    this.duplex = undefined;
    await super.teardown();
  }
}

// The scenario ------------------------------------------------------------------------------

/** The targets. */
export const TARGET_CALLS_PER_SECOND = 200_000;
export const TARGET_OVER_UNARY = 60;

export const scenario: ScenarioSpec = {
  id: 'remote-call',
  title: 'remote call',
  unit: 'calls',
  description:
    'Grain calls between two processes: member A (client-only, hosts nothing) awaits `ref.echo(bytes64)` on grains hosted by member B, ' +
    'one grain per caller, all activated before timing; 64 bytes each way. Baselines: grpc-js between two processes, same payloads and callers.',
  notes: [
    'grain rows: the runtime worker is member A (client-only; it runs no turns), member B is a child process forked from dist/ (HashIdentityLookup, StaticProvider, gRPC on 127.0.0.1).',
    'grpc-js rows: the pristine worker (never loads nestjs-grains) calls an echo server child (grpc-js only, raw-bytes serializers). Unary: one grpc-js call per operation, one channel, no deadline.',
    "Batched stream: one bidi stream, messages coalesced per event-loop turn into frames of <= 1,000 on both ends (the runtime's scheme, nothing else): an upper bound of the transport.",
    'single-threaded GC row (diagnostic, not a target): the same grain subject with both members under V8 --single-threaded-gc, in a third worker; on this 2-vCPU machine the parallel scavenger of member A is what varies most.',
  ],
  subjects: [
    {
      id: 'grain',
      label: 'grain call, A → B',
      role: 'runtime',
      process: 'member A (runtime worker) → member B (child)',
      target: TARGET_CALLS_PER_SECOND,
      create: (p) => new RemoteGrainSubject(p),
    },
    {
      id: 'grain-stgc',
      label: 'grain call, A → B, single-threaded GC',
      role: 'runtime-stgc',
      process: 'same, both members --single-threaded-gc',
      create: (p) => new RemoteGrainSubject(p, { memberExecArgv: ['--single-threaded-gc'] }),
    },
    { id: 'unary', label: 'grpc-js unary echo', role: 'pristine', process: 'pristine worker → echo server (child)', create: (p) => new UnarySubject(p) },
    {
      id: 'stream',
      label: 'grpc-js bidi stream, batched ≤1000',
      role: 'pristine',
      process: 'pristine worker → echo server (child)',
      create: (p) => new StreamSubject(p),
    },
  ],
  ratios: [
    { id: 'grain/unary', label: 'remote grain calls / grpc-js unary', numerator: 'grain', denominator: 'unary', target: TARGET_OVER_UNARY },
    { id: 'grain/stream', label: 'remote grain calls / grpc-js batched stream', numerator: 'grain', denominator: 'stream' },
    { id: 'stream/unary', label: 'grpc-js batched stream / grpc-js unary', numerator: 'stream', denominator: 'unary' },
    { id: 'grain-stgc/grain', label: 'grain calls, --single-threaded-gc / default GC (diagnostic)', numerator: 'grain-stgc', denominator: 'grain' },
  ],
  probes: [],
  latency: [
    { id: 'grain-1', label: 'grain call, A → B', subject: 'grain', callers: 1 },
    { id: 'unary-1', label: 'grpc-js unary echo', subject: 'unary', callers: 1 },
    { id: 'stream-1', label: 'grpc-js bidi stream, batched', subject: 'stream', callers: 1 },
    { id: 'grain-task-1', label: 'grain call, A → B, each from a task', subject: 'grain', callers: 1, fromTask: true },
    { id: 'stream-task-1', label: 'grpc-js bidi stream, each from a task', subject: 'stream', callers: 1, fromTask: true },
    { id: 'grain-c', label: 'grain call, A → B', subject: 'grain', callers: 'all' },
    { id: 'unary-c', label: 'grpc-js unary echo', subject: 'unary', callers: 'all' },
    { id: 'stream-c', label: 'grpc-js bidi stream, batched', subject: 'stream', callers: 'all' },
  ],
};
