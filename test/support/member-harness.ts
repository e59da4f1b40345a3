/**
 * Runs cluster members as REAL processes (real gRPC between them) for the multi-process
 * tests. Children run the tsc build (see global-setup.ts), by default
 * `dist/test/support/members/member.js` (configured by environment, driven over stdin; see
 * that file), but any script can be spawned (e.g. `dist/sample-app/main.js`).
 *
 * API
 *
 *   const h = await MemberHarness.start(specs, common?)
 *     specs: one MemberSpec per member (or a number: that many default members).
 *     Every member that is not `clientOnly` gets a free port (`test/support/free-port.ts`);
 *     each child's environment gets, before the spec's own env:
 *       CLUSTER_NAME, STATIC_MEMBERS (every hosting member's 127.0.0.1:port), and PORT or
 *       CLIENT_ONLY=1.
 *     Resolves when every child is ready (default: printed `{"event":"ready"}` on stdout),
 *     within `readyTimeoutMs`; otherwise kills them all and throws with the child's
 *     last output lines.
 *   common: { clusterName? (default 'e2e'), env? (for every member), readyTimeoutMs? }
 *   MemberSpec: { script?, args?, env? (object, or (ctx) => object with ctx = { index,
 *     port, addresses, extraPorts }), clientOnly?, extraPorts? (more free ports, e.g. an
 *     HTTP port), isReady?(line, member) (custom readiness), readyTimeoutMs?, label?,
 *     wait? (false: do not wait for ready) }
 *
 *   h.members[i]          the current process of member i (MemberProcess, below)
 *   h.processes           every process started, restarted ones included (for their output)
 *   h.execEvents()        `exec` events of every process ever started, in arrival order
 *   h.readEvents()        resolves once every event the live, ready default members wrote so far
 *                         was read: call it before counting events after calls
 *   h.kill(i, signal?)    send a signal (default SIGKILL); resolves once the process is gone
 *                         and all its output was read
 *   h.stop(i) / h.cont(i) SIGSTOP / SIGCONT
 *   h.restart(i, { env? }) start member i again on the same port (after it exited); resolves when ready
 *   h.shutdown(graceMs?)  SIGCONT + SIGTERM to every live child, SIGKILL after the grace;
 *                         resolves when all are gone. Call it in afterEach/afterAll.
 *
 *   MemberProcess
 *     .port .address .label .pid .ready (the ready event) .alive .exitStatus
 *     .lines (every stdout/stderr line: { stream, text, json?, at }) .events (stdout JSON)
 *     .stderr() (stderr as one string)  .tail() (the last lines, for error messages)
 *     (request/call/batch/stats speak the default member's stdin protocol; other scripts use
 *     their own channel, e.g. HTTP on an `extraPorts` port)
 *     .request(command, timeoutMs?)  send a JSON command (an `id` is added), resolve to its
 *                                    `{"event":"result"}` line; rejects if the process exits
 *                                    or the timeout passes (never hangs)
 *     .call(kind, identity, method, args, { timeoutMs?, waitMs? }) → CallOutcome
 *     .batch(calls, waitMs?) → CallOutcome[]     .stats()
 *     .waitFor(predicate, timeoutMs, what) → the first line (past or future) matching
 *     .waitForExec(callIds, timeoutMs?)     every callId has an exec event here
 *     .signal(sig)
 *
 * Processes never leak: every child is tracked in this module; `shutdown()` ends a
 * harness's children, `killAllMembers()` ends every child still alive (it also runs on the
 * test process's exit), and the default member exits by itself when its stdin closes (the
 * parent died).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The built default member (see test/support/members/member.ts). */
export const MEMBER_SCRIPT = join(ROOT, 'dist', 'test', 'support', 'members', 'member.js');

export type Env = Record<string, string | undefined>;

export interface SpawnContext {
  index: number;
  /** This member's remote port (undefined for a client-only member). */
  port: number | undefined;
  /** Every hosting member's `127.0.0.1:port`. */
  addresses: string[];
  /** Free ports asked for with `extraPorts`. */
  extraPorts: number[];
}

export interface MemberSpec {
  /** Script to run with node; default MEMBER_SCRIPT. */
  script?: string;
  args?: string[];
  nodeArgs?: string[];
  env?: Env | ((ctx: SpawnContext) => Env);
  clientOnly?: boolean;
  /** More free ports to allocate for this member (e.g. an HTTP port); see SpawnContext. */
  extraPorts?: number;
  /** Ready when this returns true for an output line; default: stdout JSON `{"event":"ready"}`. */
  isReady?: (line: OutputLine, member: MemberProcess) => boolean;
  readyTimeoutMs?: number;
  label?: string;
  /** Wait for readiness in start()/restart() (default true). */
  wait?: boolean;
}

export interface CommonOptions {
  clusterName?: string;
  /** Env for every member (a spec's env wins). */
  env?: Env;
  readyTimeoutMs?: number;
}

export interface OutputLine {
  stream: 'stdout' | 'stderr';
  text: string;
  /** The line parsed, when stdout carried a JSON object. */
  json?: Record<string, unknown>;
  /** performance.now() when read. */
  at: number;
}

export interface CallError {
  name: string;
  message: string;
  code?: string;
  neverRan?: boolean;
  remoteName?: string;
  remoteCode?: string;
  remoteMessage?: string;
  origin?: string;
  cycle?: string[];
  [key: string]: unknown;
}

export type CallOutcome<T = unknown> = { ok: true; value: T; elapsedMs: number } | { ok: false; error: CallError; elapsedMs: number };

export interface CallSpec {
  kind: string;
  identity: string;
  method: string;
  args?: unknown[];
  timeoutMs?: number;
}

export interface ExecEvent {
  event: 'exec';
  callId: string;
  kind: string;
  identity: string;
  method: string;
  member: string;
  incarnation: string;
  activation: string;
  count: number;
}

const DEFAULT_READY_TIMEOUT_MS = 30_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** SIGKILL every child process this module started that is still alive. */
export function killAllMembers(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', killAllMembers);
}

interface Waiter {
  predicate: (line: OutputLine) => boolean;
  resolve: (line: OutputLine) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** One child process. */
export class MemberProcess {
  readonly lines: OutputLine[] = [];
  readonly events: Array<Record<string, unknown>> = [];
  readonly child: ChildProcess;
  /** Resolves once the process exited and its stdout/stderr were read to the end. */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  ready: Record<string, unknown> | undefined;
  exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private waiters: Waiter[] = [];

  constructor(
    readonly index: number,
    readonly label: string,
    readonly port: number | undefined,
    readonly spec: MemberSpec,
    script: string,
    env: Env,
  ) {
    installExitHook();
    this.child = spawn(process.execPath, [...(spec.nodeArgs ?? []), script, ...(spec.args ?? [])], {
      cwd: ROOT,
      env: cleanEnv({ ...process.env, ...env }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    live.add(this.child);
    // NOTE: writing to a dead child's stdin fails asynchronously (EPIPE): not a test failure.
    this.child.stdin!.on('error', () => {});
    let streams = 2;
    let resolveClosed!: (s: { code: number | null; signal: NodeJS.Signals | null }) => void;
    this.closed = new Promise((resolve) => (resolveClosed = resolve));
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const done = () => {
      if (exit === undefined || streams > 0) return;
      this.exitStatus = exit;
      live.delete(this.child);
      const why = new Error(`${this.label} exited (${this.exitDescription()})${this.tail()}`);
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(why);
      }
      this.pending.clear();
      for (const w of this.waiters) {
        clearTimeout(w.timer);
        w.reject(why);
      }
      this.waiters = [];
      resolveClosed(exit);
    };
    this.child.on('exit', (code, signal) => {
      exit = { code, signal };
      done();
    });
    this.child.on('error', (error) => {
      // spawn failure: no exit event follows
      this.lines.push({ stream: 'stderr', text: `spawn error: ${error.message}`, at: performance.now() });
      exit ??= { code: null, signal: null };
      streams = 0;
      done();
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      const rl = createInterface({ input: this.child[stream]! });
      rl.on('line', (text) => this.onLine(stream, text));
      rl.on('close', () => {
        streams--;
        done();
      });
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Sent SIGSTOP by the harness (`h.stop`) and not SIGCONT since: it answers nothing. */
  stopped = false;

  get alive(): boolean {
    return this.exitStatus === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Where its remote listens (`127.0.0.1:port`), '' for a client-only member. */
  get address(): string {
    return this.port === undefined ? '' : `127.0.0.1:${this.port}`;
  }

  stderr(): string {
    return this.lines
      .filter((l) => l.stream === 'stderr')
      .map((l) => l.text)
      .join('\n');
  }

  execEvents(): ExecEvent[] {
    return this.events.filter((e) => e['event'] === 'exec') as unknown as ExecEvent[];
  }

  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }

  /** Send a command; resolves to its result line. */
  request(command: Record<string, unknown>, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS): Promise<Record<string, unknown>> {
    if (!this.alive) return Promise.reject(new Error(`${this.label} is not running (${this.exitDescription()})${this.tail()}`));
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.label}: no result for ${JSON.stringify(command).slice(0, 200)} within ${timeoutMs} ms${this.tail()}`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.child.stdin!.write(`${JSON.stringify({ ...command, id })}\n`);
    });
  }

  /** Call a grain from this member. `timeoutMs` is the call's deadline; `waitMs` how long the harness waits for the answer. */
  async call<T = unknown>(
    kind: string,
    identity: string,
    method: string,
    args: unknown[] = [],
    options: { timeoutMs?: number; waitMs?: number } = {},
  ): Promise<CallOutcome<T>> {
    const result = await this.request(
      { cmd: 'call', kind, identity, method, args, ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }) },
      options.waitMs,
    );
    return toOutcome<T>(result);
  }

  /** Make all `calls` from this member at once; outcomes in the same order. */
  async batch<T = unknown>(calls: CallSpec[], waitMs?: number): Promise<Array<CallOutcome<T>>> {
    const result = await this.request({ cmd: 'batch', calls }, waitMs);
    if (result['ok'] !== true) throw new Error(`${this.label}: batch failed: ${JSON.stringify(result['error'])}`);
    return (result['value'] as Array<Record<string, unknown>>).map((r) => toOutcome<T>(r));
  }

  async stats(): Promise<{
    memberId: string;
    incarnation: string;
    address: string;
    members: Array<{ id: string; incarnation: string; address: string; kinds: string[] }>;
    stats: { activations: number; activated: number };
  }> {
    const result = await this.request({ cmd: 'stats' });
    return result['value'] as never;
  }

  /** The first output line (already read or still to come) for which `predicate` holds. */
  waitFor(predicate: (line: OutputLine) => boolean, timeoutMs: number, what: string): Promise<OutputLine> {
    const found = this.lines.find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    if (this.exitStatus !== undefined) return Promise.reject(new Error(`${this.label} exited (${this.exitDescription()}) before ${what}${this.tail()}`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new Error(`${this.label}: ${what} did not happen within ${timeoutMs} ms${this.tail()}`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Resolves once every callId has an exec event on this process. */
  async waitForExec(callIds: readonly string[], timeoutMs = 15_000): Promise<void> {
    for (const callId of callIds) {
      await this.waitFor((l) => l.json?.['event'] === 'exec' && l.json['callId'] === callId, timeoutMs, `exec of ${callId}`);
    }
  }

  /** Resolves when ready (as `spec.isReady` says). */
  whenReady(timeoutMs: number): Promise<void> {
    const isReady = this.spec.isReady ?? ((line: OutputLine) => line.json?.['event'] === 'ready');
    return this.waitFor((line) => isReady(line, this), timeoutMs, 'ready').then((line) => {
      this.ready = line.json ?? { line: line.text };
    });
  }

  exitDescription(): string {
    const s = this.exitStatus ?? { code: this.child.exitCode, signal: this.child.signalCode };
    return s.signal !== null ? `signal ${s.signal}` : s.code !== null ? `code ${s.code}` : 'still running';
  }

  /** The last lines of output (stderr, and stdout other than exec events), for error messages. */
  tail(lines = 40): string {
    const last = this.lines.filter((l) => l.stream === 'stderr' || l.json?.['event'] !== 'exec').slice(-lines);
    return last.length === 0
      ? ' (no output)'
      : `\n--- ${this.label} output (last ${last.length} lines) ---\n${last.map((l) => `${l.stream}: ${l.text.slice(0, 2_000)}`).join('\n')}`;
  }

  private onLine(stream: 'stdout' | 'stderr', text: string): void {
    const line: OutputLine = { stream, text, at: performance.now() };
    if (stream === 'stdout' && text.startsWith('{')) {
      try {
        line.json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        // a log line that starts with "{"
      }
    }
    this.lines.push(line);
    if (line.json !== undefined) {
      this.events.push(line.json);
      if (line.json['event'] === 'result' && typeof line.json['id'] === 'number') {
        const p = this.pending.get(line.json['id']);
        if (p !== undefined) {
          this.pending.delete(line.json['id']);
          clearTimeout(p.timer);
          p.resolve(line.json);
        }
      }
    }
    if (this.waiters.length > 0) {
      const still: Waiter[] = [];
      for (const w of this.waiters) {
        if (w.predicate(line)) {
          clearTimeout(w.timer);
          w.resolve(line);
        } else still.push(w);
      }
      this.waiters = still;
    }
  }
}

/** Without the keys set to undefined (spawn would pass them as the string "undefined"). */
function cleanEnv(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value;
  return out;
}

function toOutcome<T>(result: Record<string, unknown>): CallOutcome<T> {
  const elapsedMs = Number(result['elapsedMs'] ?? NaN);
  if (result['ok'] === true) return { ok: true, value: result['value'] as T, elapsedMs };
  return { ok: false, error: result['error'] as CallError, elapsedMs };
}

/** Several member processes of one cluster. */
export class MemberHarness {
  readonly members: MemberProcess[] = [];
  /** Every process started, in order, restarted ones included. */
  readonly processes: MemberProcess[] = [];

  private constructor(
    readonly specs: MemberSpec[],
    readonly ports: Array<number | undefined>,
    readonly extraPorts: number[][],
    readonly common: CommonOptions,
  ) {}

  /** Every hosting member's address. */
  get addresses(): string[] {
    return this.ports.filter((p): p is number => p !== undefined).map((p) => `127.0.0.1:${p}`);
  }

  static async start(specs: MemberSpec[] | number, common: CommonOptions = {}): Promise<MemberHarness> {
    const list: MemberSpec[] = typeof specs === 'number' ? Array.from({ length: specs }, () => ({})) : specs;
    const ports = await Promise.all(list.map((s) => (s.clientOnly ? undefined : freePort())));
    const extraPorts = await Promise.all(list.map((s) => Promise.all(Array.from({ length: s.extraPorts ?? 0 }, () => freePort()))));
    const harness = new MemberHarness(list, ports, extraPorts, common);
    try {
      for (let i = 0; i < list.length; i++) harness.members.push(harness.spawn(i));
      await Promise.all(
        harness.members.map((m) =>
          m.spec.wait === false ? undefined : m.whenReady(m.spec.readyTimeoutMs ?? common.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS),
        ),
      );
    } catch (error) {
      await harness.shutdown(0);
      throw error;
    }
    return harness;
  }

  /** `exec` events of every process this harness started, restarted ones included. */
  execEvents(): ExecEvent[] {
    return this.processes.flatMap((p) => p.execEvents());
  }

  /**
   * Resolves once every event the harness's processes wrote before now has been read. NOTE:
   * a call's reply can reach its caller, and the caller's result the harness, before the
   * serving member's own `exec` event was read from that member's stdout. A member answers a
   * request on the same stdout, after its earlier events (a pipe: written in order, at once),
   * so one answered request per live member is a barrier; a process that exited has all its
   * output read once `closed` resolved. Not covered (nothing to ask): members stopped with
   * `h.stop`, members not ready yet (`wait: false`) and other scripts than the default member.
   * Call it before counting events.
   */
  async readEvents(): Promise<void> {
    await Promise.all(
      this.processes.map((m) => {
        if (!m.alive) return m.closed;
        const i = this.members.indexOf(m);
        if (i < 0 || m.stopped || m.ready === undefined || this.specs[i]!.script !== undefined) return undefined;
        return m.stats();
      }),
    );
  }

  /** Signal member i (default SIGKILL) and wait until it is gone and its output read. */
  async kill(i: number, signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 10_000): Promise<void> {
    const member = this.members[i]!;
    if (!member.alive) return;
    if (signal !== 'SIGKILL') member.signal('SIGCONT');
    member.signal(signal);
    await waitClosed(member, timeoutMs);
  }

  stop(i: number): void {
    this.members[i]!.signal('SIGSTOP');
    this.members[i]!.stopped = true;
  }

  cont(i: number): void {
    this.members[i]!.signal('SIGCONT');
    this.members[i]!.stopped = false;
  }

  /** Start member i again (same port, same spec; `env` added), once its process is gone. */
  async restart(i: number, overrides: { env?: Env; wait?: boolean } = {}): Promise<MemberProcess> {
    const previous = this.members[i]!;
    if (previous.alive) throw new Error(`${previous.label} is still running; kill it first`);
    await previous.closed;
    const member = this.spawn(i, overrides.env);
    this.members[i] = member;
    if (overrides.wait ?? member.spec.wait ?? true) {
      try {
        await member.whenReady(member.spec.readyTimeoutMs ?? this.common.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
      } catch (error) {
        member.signal('SIGKILL');
        throw error;
      }
    }
    return member;
  }

  /** End every live child: SIGCONT + SIGTERM, then SIGKILL after `graceMs`. */
  async shutdown(graceMs = 3_000): Promise<void> {
    const alive = this.processes.filter((p) => p.alive);
    for (const p of alive) {
      p.signal('SIGCONT');
      p.signal(graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
    }
    await Promise.all(
      alive.map(async (p) => {
        const timer = setTimeout(() => p.signal('SIGKILL'), graceMs);
        try {
          await waitClosed(p, graceMs + 10_000);
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }

  private spawn(i: number, extraEnv: Env = {}): MemberProcess {
    const spec = this.specs[i]!;
    const port = this.ports[i];
    const ctx: SpawnContext = { index: i, port, addresses: this.addresses, extraPorts: this.extraPorts[i]! };
    const specEnv = typeof spec.env === 'function' ? spec.env(ctx) : (spec.env ?? {});
    const env: Env = {
      CLUSTER_NAME: this.common.clusterName ?? 'e2e',
      STATIC_MEMBERS: this.addresses.join(','),
      ...(port === undefined ? { CLIENT_ONLY: '1', PORT: undefined } : { PORT: String(port), CLIENT_ONLY: undefined }),
      ...this.common.env,
      ...specEnv,
      ...extraEnv,
    };
    const run = this.processes.filter((p) => p.index === i).length;
    const label = `${spec.label ?? `member ${i}`}${port === undefined ? ' (client only)' : ` (:${port})`}${run > 0 ? ` run ${run + 1}` : ''}`;
    const member = new MemberProcess(i, label, port, spec, spec.script ?? MEMBER_SCRIPT, env);
    this.processes.push(member);
    return member;
  }
}

async function waitClosed(member: MemberProcess, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  const result = await Promise.race([member.closed, timedOut]);
  clearTimeout(timer);
  if (result === 'timeout') {
    member.signal('SIGKILL');
    await member.closed;
  }
}
