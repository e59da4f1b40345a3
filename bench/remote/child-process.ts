/**
 * Server processes of the remote-call scenario (member B, the grpc-js echo server): forked
 * from the build (dist/bench/remote/*.js) with an explicit `execArgv`, so they never inherit
 * a loader such as tsx, and driven over IPC.
 *
 * Parent side (`ServerChild`): start, wait for `ready` (bounded), request/reply, stop
 * (graceful, then SIGKILL of that one pid). Every child started here is also killed when this
 * process exits, however it exits. Child side (`serveParent`): report `ready` with the
 * address it listens on, answer requests, and exit when told to stop or when the parent's
 * IPC channel closes (the parent died).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Child → parent, once, when listening. */
interface ReadyMessage {
  readonly type: 'ready';
  readonly address: string;
  readonly pid: number;
}
/** Child → parent, once, when it could not start. */
interface StartFailedMessage {
  readonly type: 'start-failed';
  readonly error: string;
}
/** Parent → child. */
interface ChildRequest {
  readonly id: number;
  readonly op: string;
  /** The request's argument, when it has one (anything IPC can carry). */
  readonly arg?: unknown;
}
/** Child → parent, per request. */
type ChildReply =
  | { readonly type: 'reply'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly type: 'reply'; readonly id: number; readonly ok: false; readonly error: string };
type ChildMessage = ReadyMessage | StartFailedMessage | ChildReply;

const READY_TIMEOUT_MS = 20_000;
const REQUEST_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // NOTE: 'exit' handlers must be synchronous; kill() is. Covers process.exit() from the
  // worker's 'disconnect' handler (the orchestrator went away) and uncaught errors.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/** The compiled script next to this module's directory, refusing to run from TypeScript sources. */
export function builtScript(relativeUrl: string, base: string): string {
  const path = fileURLToPath(new URL(relativeUrl, base));
  if (!path.endsWith('.js') || !path.includes(`${'/'}dist${'/'}`) || !existsSync(path)) {
    throw new Error(`server children run from the build (dist/…/*.js), not ${path}: run \`npm run build\` and start dist/bench/run.js`);
  }
  return path;
}

export class ServerChild {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private exitCode: number | null | undefined = undefined;
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly address: string,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.on('message', (message: ChildMessage) => {
      if (message.type !== 'reply') return;
      const waiter = this.pending.get(message.id);
      if (waiter === undefined) return;
      this.pending.delete(message.id);
      clearTimeout(waiter.timer);
      if (message.ok) waiter.resolve(message.value);
      else waiter.reject(new Error(`${name}: ${message.error}`));
    });
    child.on('exit', (code, signal) => {
      this.exitCode = code;
      live.delete(child);
      for (const waiter of this.pending.values()) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error(`${name} exited (code ${code}, signal ${signal}) with a request pending`));
      }
      this.pending.clear();
    });
  }

  /** Fork `script` (from dist/) and wait until it reports the address it listens on. */
  static start(name: string, script: string, args: readonly string[], execArgv: readonly string[] = []): Promise<ServerChild> {
    installExitHook();
    const child = fork(script, [...args], { execArgv: [...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    live.add(child);
    return new Promise<ServerChild>((resolve, reject) => {
      const fail = (error: Error) => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(error);
      };
      const timer = setTimeout(() => fail(new Error(`${name} did not report ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      const onMessage = (message: ChildMessage) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          child.off('message', onMessage);
          child.off('exit', onExit);
          resolve(new ServerChild(name, child, message.address));
        } else if (message.type === 'start-failed') {
          fail(new Error(`${name} failed to start: ${message.error}`));
        }
      };
      const onExit = (code: number | null, signal: string | null) => fail(new Error(`${name} exited before it was ready (code ${code}, signal ${signal})`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** One request; `timeoutMs` (default 30 s) bounds the wait for its reply. */
  request<T>(op: string, arg?: unknown, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
    if (this.exitCode !== undefined || !this.child.connected) return Promise.reject(new Error(`${this.name} is not running`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${op} took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ id, op, ...(arg === undefined ? {} : { arg }) } satisfies ChildRequest);
    });
  }

  /**
   * Ask the child to stop (it shuts down and exits with code 0, which is also when
   * `--cpu-prof` writes its profile); SIGKILL this child if it has not exited in time.
   * Resolves to the exit code.
   */
  async stop(): Promise<number | null> {
    if (this.exitCode === undefined) {
      const killer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      try {
        await this.request('stop');
      } catch {
        // exited meanwhile, or did not answer: the timer (or the exit) settles it
      }
      await this.exited;
      clearTimeout(killer);
    }
    return this.exitCode ?? null;
  }

  /** Immediate SIGKILL of this child (failure paths). */
  kill(): void {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
  }

  /** SIGKILL this child and resolve once it has exited (the failover scenario's crash). */
  async killAndWait(): Promise<void> {
    this.kill();
    await this.exited;
  }
}

/** CPU time (user + system, every thread) this process has used, in µs. */
export function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

// Child side --------------------------------------------------------------------------------

export interface ChildHandlers {
  /** Answer `op` (anything but 'stop'), given the request's argument (undefined when none). */
  readonly [op: string]: (arg: unknown) => unknown;
}

/**
 * In the child: report `address` to the parent, then answer requests. `stop` runs `onStop`
 * (graceful shutdown), replies, and exits with code 0. Losing the parent exits at once.
 */
export function serveParent(address: string, handlers: ChildHandlers, onStop: () => Promise<void>): void {
  if (process.send === undefined) throw new Error('this script is a server child: start it with child_process.fork');
  process.on('message', (request: ChildRequest) => {
    void (async () => {
      let reply: ChildReply;
      try {
        if (request.op === 'stop') await onStop();
        const handler = handlers[request.op];
        if (request.op !== 'stop' && handler === undefined) throw new Error(`unknown op ${request.op}`);
        reply = { type: 'reply', id: request.id, ok: true, value: request.op === 'stop' ? null : await handler!(request.arg) };
      } catch (error) {
        reply = { type: 'reply', id: request.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
      }
      process.send!(reply, undefined, undefined, () => {
        if (request.op === 'stop') process.exit(0);
      });
    })();
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', address, pid: process.pid } satisfies ReadyMessage);
}

/** In the child: report a start-up failure, then exit non-zero. */
export function reportStartFailure(error: unknown): void {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  if (process.send !== undefined)
    process.send({ type: 'start-failed', error: message } satisfies StartFailedMessage, undefined, undefined, () => process.exit(1));
  else {
    process.stderr.write(`${message}\n`);
    process.exit(1);
  }
}
