import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Envelope, ReplyEnvelope, Request, RoundReply, StatusReply } from './protocol.js';
import type { LatencySample, Role } from './scenario.js';
import type { Summary } from './stats.js';

const WORKER = fileURLToPath(new URL('../worker.js', import.meta.url));
/** No single request (setup, one round, one probe) may take longer than this. */
const REQUEST_TIMEOUT_MS = 120_000;

/** A forked worker process (bench/worker.ts) driven request by request over IPC. */
export class Worker {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private exited = false;

  private constructor(
    readonly role: Role,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (reply: ReplyEnvelope) => {
      const waiter = this.pending.get(reply.id);
      if (waiter === undefined) return;
      this.pending.delete(reply.id);
      clearTimeout(waiter.timer);
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new Error(`${role} worker: ${reply.error}`));
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      for (const waiter of this.pending.values()) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error(`${role} worker exited (code ${code}, signal ${signal}) with a request pending`));
      }
      this.pending.clear();
    });
  }

  /**
   * `gc`: run the worker with `--expose-gc`, so it collects garbage before each round (outside
   * the timer). Off by default: a forced full GC also shrinks the young generation, and the
   * round then pays for growing it again (measured here: grain rounds ~20% slower, plain
   * rounds unchanged), which is not how a long-running member behaves.
   */
  static start(role: Role, gc = false): Worker {
    const execArgv = [...(gc ? ['--expose-gc'] : []), ...(role === 'runtime-stgc' ? ['--single-threaded-gc'] : [])];
    const child = fork(WORKER, [role], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Worker(role, child);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private request<T>(request: Request): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.role} worker has exited`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.role} worker: ${request.op} took longer than ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ id, request } satisfies Envelope);
    });
  }

  setup(scenario: string, subject: string, concurrency: number): Promise<void> {
    return this.request({ op: 'setup', scenario, subject, concurrency });
  }

  round(subject: string, ops: number): Promise<RoundReply> {
    return this.request({ op: 'round', subject, ops });
  }

  latency(subject: string, callers: number, calls: number, fromTask = false): Promise<LatencySample> {
    return this.request({ op: 'latency', subject, callers, calls, fromTask });
  }

  probe(scenario: string, probe: string, concurrency: number): Promise<Summary> {
    return this.request({ op: 'probe', scenario, probe, concurrency });
  }

  teardown(): Promise<void> {
    return this.request({ op: 'teardown' });
  }

  status(): Promise<StatusReply> {
    return this.request({ op: 'status' });
  }

  /** Disconnect (the worker exits on disconnect); kill this child only if it lingers. */
  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
