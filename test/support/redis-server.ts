/**
 * REAL `redis-server` processes for the Redis tests, each on a free loopback port with its
 * own temporary directory, plus a minimal RESP client (no npm dependency) to drive them.
 *
 * API
 *
 *   const redis = await startRedis(options?)
 *     Spawns `redis-server --port <free> --bind 127.0.0.1 --save '' --appendonly no
 *     --maxmemory-policy noeviction --dir <tmpdir>` (+ `options.args`, which come last, so
 *     e.g. `['--maxmemory', '1mb']` or another policy win) and resolves when it answers PING
 *     and INFO says it is this process (not another server that took the port). If the
 *     port was taken meanwhile, it retries on another free port. Rejects (with the
 *     server's output) when it exits or does not answer within `startTimeoutMs`.
 *     options: { args?, maxmemoryPolicy? ('noeviction'), disableConfig?, port?,
 *                startTimeoutMs? (10 s), label? }
 *       disableConfig: CONFIG is renamed to a secret name, so clients get
 *         "ERR unknown command 'config'" (as on a managed Redis) while the handle's
 *         configGet/configSet still work. To remove CONFIG entirely instead, pass
 *         `args: ['--rename-command', 'CONFIG', '']` (then configGet/configSet reject);
 *         do not combine the two.
 *
 *   redis.host ('127.0.0.1')  .port  .url ('redis://127.0.0.1:<port>')  .pid (undefined
 *   while down)  .alive  .paused  .dir  .label  .configCommand (the name CONFIG answers to)
 *   redis.restart({ keepData?, ...options }?)  stop the server (SIGCONT, SIGTERM, SIGKILL
 *        after 2 s) and start it again on the SAME port; resolves when it answers. Without
 *        persistence the data is lost and the run_id is new. keepData: SAVE first (when the
 *        server is up) and load that snapshot, so keys survive (the run_id still changes);
 *        if the server was already down, the last snapshot taken by save() or an earlier
 *        keepData restart is loaded (none: empty). Other options replace the start
 *        options for this and later restarts (e.g. `{ disableConfig: true }`).
 *   redis.kill(signal = 'SIGKILL')  signal the server and resolve once it exited (its exit
 *        status); a paused server also gets SIGCONT so it can act on the signal.
 *        restart() brings it back.
 *   redis.pause() / redis.resume()  SIGSTOP / SIGCONT; resolve once /proc says the process
 *        is stopped / running. Connections to a paused server are accepted by the kernel
 *        but nothing is answered (a hung server).
 *   redis.stop()   end it for good (SIGCONT + SIGTERM, SIGKILL after 2 s) and remove its
 *        directory; idempotent. Call it in afterEach/afterAll (or stopAllRedis()).
 *   redis.command(...args) → RespValue   one command on a fresh connection (2 s budget);
 *        an error reply rejects with RespError, no reply in time with RespTimeoutError.
 *   redis.commandWithTimeout(args, timeoutMs) → RespValue   the same, another budget.
 *   redis.ping(timeoutMs = 500) → boolean   PONG within the timeout (false, never throws)
 *   redis.flushAll()  redis.runId()  redis.info(section?) → Record<string, string>
 *   redis.configGet(name) → string | undefined   redis.configSet(name, value)
 *   redis.save()   SAVE (a snapshot for restart({ keepData: true }) after a kill)
 *   redis.connect() → RespConnection (a persistent connection; pipelined commands)
 *   redis.output() → the server's last log lines (stdout + stderr)
 *
 *   stopAllRedis()  stop every server this process started.
 *   respCommand(port, args, { host?, timeoutMs? })  one command, one connection.
 *   RespConnection.open(port, { host?, timeoutMs? })  .command(args, timeoutMs?)  .close()
 *
 * Never leaks processes: every server is tracked here; all are SIGKILLed (and their
 * directories removed) when this process exits, and where util-linux `setpriv` is available
 * the server is started through it with `--pdeathsig KILL` (it execs redis-server, so the
 * pid is the server's), so the kernel kills it even if this process is SIGKILLed.
 *
 * Needs `redis-server` on PATH (`.ci/run` installs it), or REDIS_SERVER_BIN.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

// ---------------------------------------------------------------------------------------
// RESP (protocol 2): just enough of a client to start, probe and fault-inject servers.
// ---------------------------------------------------------------------------------------

/** An error reply (`-ERR ...`). Inside arrays (EXEC) it is a value; at top level it rejects. */
export class RespError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RespError';
  }
}

/** No reply (or no connection) within the timeout. */
export class RespTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RespTimeoutError';
  }
}

export type RespValue = string | number | null | RespError | RespValue[];

/** Encodes one command as a RESP array of bulk strings. */
export function encodeCommand(args: ReadonlyArray<string | number | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg), 'utf8');
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Parses one value at `pos`; undefined when the buffer does not hold all of it yet. */
function parseAt(buf: Buffer, pos: number): [RespValue, number] | undefined {
  if (pos >= buf.length) return undefined;
  const lineEnd = buf.indexOf('\r\n', pos);
  if (lineEnd < 0) return undefined;
  const type = buf[pos];
  const line = buf.toString('utf8', pos + 1, lineEnd);
  const after = lineEnd + 2;
  switch (type) {
    case 0x2b /* + */:
      return [line, after];
    case 0x2d /* - */:
      return [new RespError(line), after];
    case 0x3a /* : */:
      return [Number(line), after];
    case 0x24 /* $ */: {
      const length = Number(line);
      if (length < 0) return [null, after];
      if (buf.length < after + length + 2) return undefined;
      return [buf.toString('utf8', after, after + length), after + length + 2];
    }
    case 0x2a /* * */: {
      const count = Number(line);
      if (count < 0) return [null, after];
      const items: RespValue[] = [];
      let p = after;
      for (let i = 0; i < count; i++) {
        const item = parseAt(buf, p);
        if (item === undefined) return undefined;
        items.push(item[0]);
        p = item[1];
      }
      return [items, p];
    }
    default:
      throw new Error(`RESP: unexpected type byte 0x${(type ?? 0).toString(16)} in ${JSON.stringify(buf.toString('latin1', pos, Math.min(buf.length, pos + 40)))}`);
  }
}

/** Incremental RESP reply parser: push() bytes, take complete values from next(). */
export class RespParser {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
  }

  /** The next complete value, or undefined when more bytes are needed. */
  next(): { value: RespValue } | undefined {
    const parsed = parseAt(this.buffer, 0);
    if (parsed === undefined) return undefined;
    this.buffer = this.buffer.subarray(parsed[1]);
    return { value: parsed[0] };
  }
}

export interface RespConnectOptions {
  host?: string;
  /** Connect timeout (ms); default 2000. */
  timeoutMs?: number;
}

interface Pending {
  resolve: (value: RespValue) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * One persistent RESP connection; commands are pipelined and answered in order. A command
 * that times out destroys the connection (later replies would be out of step) and rejects
 * everything pending.
 */
export class RespConnection {
  private readonly parser = new RespParser();
  private readonly pending: Pending[] = [];
  private closedError: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.parser.push(chunk);
      try {
        for (let reply = this.parser.next(); reply !== undefined; reply = this.parser.next()) {
          const waiter = this.pending.shift();
          if (waiter === undefined) continue;
          clearTimeout(waiter.timer);
          if (reply.value instanceof RespError) waiter.reject(reply.value);
          else waiter.resolve(reply.value);
        }
      } catch (error) {
        this.fail(error as Error);
      }
    });
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static open(port: number, options: RespConnectOptions = {}): Promise<RespConnection> {
    const host = options.host ?? '127.0.0.1';
    const timeoutMs = options.timeoutMs ?? 2_000;
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RespTimeoutError(`connect to ${host}:${port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      const onError = (error: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new RespConnection(socket));
      });
    });
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Sends one command; resolves to its reply (an error reply rejects with RespError). */
  command(args: ReadonlyArray<string | number | Buffer>, timeoutMs = 2_000): Promise<RespValue> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new RespTimeoutError(`${String(args[0])}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.push({ resolve, reject, timer });
      this.socket.write(encodeCommand(args));
    });
  }

  close(): void {
    this.fail(new Error('connection closed by the client'));
  }

  private fail(error: Error): void {
    if (this.closedError === undefined) this.closedError = error;
    this.socket.destroy();
    for (const waiter of this.pending.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }
}

/** One command on its own connection; `timeoutMs` (default 2000) covers connect and reply. */
export async function respCommand(port: number, args: ReadonlyArray<string | number | Buffer>, options: RespConnectOptions = {}): Promise<RespValue> {
  const timeoutMs = options.timeoutMs ?? 2_000;
  const started = Date.now();
  const connection = await RespConnection.open(port, { ...options, timeoutMs });
  try {
    return await connection.command(args, Math.max(1, timeoutMs - (Date.now() - started)));
  } catch (error) {
    // Report the whole budget (connect + reply), not what was left of it.
    if (error instanceof RespTimeoutError) throw new RespTimeoutError(`${String(args[0])}: no reply within ${timeoutMs} ms`);
    throw error;
  } finally {
    connection.close();
  }
}

/** `INFO` text → key/value pairs (section headers and blank lines skipped). */
export function parseInfo(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) result[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// redis-server processes
// ---------------------------------------------------------------------------------------

export interface RedisServerOptions {
  /** More redis-server arguments, after the defaults (so they win), e.g. `['--maxmemory', '1mb']`. */
  args?: string[];
  /** Default `noeviction`. */
  maxmemoryPolicy?: string;
  /** CONFIG answers "unknown command" to clients; the handle's configGet/configSet still work. */
  disableConfig?: boolean;
  /** A fixed port (default: a free one). */
  port?: number;
  /** How long start/restart wait for PING (ms); default 10 000. */
  startTimeoutMs?: number;
  /** For messages. */
  label?: string;
}

export interface RestartOptions extends Omit<RedisServerOptions, 'port'> {
  /** SAVE before stopping (when up) and load the snapshot: keys survive. Default false. */
  keepData?: boolean;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RedisHandle {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly pid: number | undefined;
  readonly alive: boolean;
  readonly paused: boolean;
  readonly dir: string;
  readonly label: string;
  readonly configCommand: string;
  restart(options?: RestartOptions): Promise<void>;
  stop(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<ExitStatus>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  command(...args: Array<string | number | Buffer>): Promise<RespValue>;
  commandWithTimeout(args: ReadonlyArray<string | number | Buffer>, timeoutMs: number): Promise<RespValue>;
  ping(timeoutMs?: number): Promise<boolean>;
  flushAll(): Promise<void>;
  runId(): Promise<string>;
  info(section?: string): Promise<Record<string, string>>;
  configGet(name: string): Promise<string | undefined>;
  configSet(name: string, value: string | number): Promise<void>;
  save(): Promise<void>;
  connect(): Promise<RespConnection>;
  output(): string[];
}

const HOST = '127.0.0.1';
const OUTPUT_LINES = 200;
const STOP_GRACE_MS = 2_000;

let redisBin: string | undefined;
let pdeathsig: boolean | undefined;

function redisServerBinary(): string {
  if (redisBin !== undefined) return redisBin;
  const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server';
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(
      `test/support/redis-server.ts: cannot run ${JSON.stringify(bin)} (${probe.error?.message ?? `exit ${probe.status}: ${probe.stderr}`}). ` +
        'The Redis tests start their own servers and need redis-server on PATH: `apt-get install -y redis-server` (what .ci/run does), or set REDIS_SERVER_BIN.',
    );
  }
  redisBin = bin;
  return bin;
}

/** util-linux setpriv with --pdeathsig (Linux): the server dies with the process that spawned it. */
function hasPdeathsig(): boolean {
  if (pdeathsig === undefined) {
    const probe = spawnSync('setpriv', ['--help'], { encoding: 'utf8', timeout: 10_000 });
    pdeathsig = process.platform === 'linux' && probe.status === 0 && probe.stdout.includes('--pdeathsig');
  }
  return pdeathsig;
}

const live = new Set<RedisServer>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const server of live) server.killSync();
  });
}

/** Stops every server started by this process. */
export async function stopAllRedis(): Promise<void> {
  await Promise.all([...live].map((server) => server.stop()));
}

/** Starts a redis-server on a free loopback port; see the module comment. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisHandle> {
  const bin = redisServerBinary();
  installExitHook();
  const server = new RedisServer(bin, options);
  live.add(server);
  try {
    await server.launch(options.port === undefined);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The process state letter from /proc (R, S, T, Z, ...); undefined when unknown. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

interface Running {
  child: ChildProcess;
  exited: Promise<ExitStatus>;
  status: ExitStatus | undefined;
}

class RedisServer implements RedisHandle {
  readonly host = HOST;
  port = 0;
  readonly dir: string;
  readonly label: string;
  configCommand = 'CONFIG';
  paused = false;
  private options: RedisServerOptions;
  private running: Running | undefined;
  private readonly lines: string[] = [];
  private stopped = false;

  constructor(
    private readonly bin: string,
    options: RedisServerOptions,
  ) {
    this.options = { ...options };
    this.dir = mkdtempSync(join(tmpdir(), 'nestjs-grains-redis-'));
    this.label = options.label ?? 'redis';
    if (options.port !== undefined) this.port = options.port;
  }

  get url(): string {
    return `redis://${HOST}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.alive ? this.running?.child.pid : undefined;
  }

  get alive(): boolean {
    return this.running !== undefined && this.running.status === undefined;
  }

  output(): string[] {
    return [...this.lines];
  }

  /** Starts the server; `anyPort`: a port taken by someone else is replaced by another free one. */
  async launch(anyPort: boolean): Promise<void> {
    const timeoutMs = this.options.startTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    if (this.port === 0) this.port = await freePort();
    let portTaken = false;
    for (let attempt = 1; ; attempt++) {
      const running = this.spawn();
      let outcome = await this.waitReady(running, deadline);
      if (outcome === 'ready') return;
      if (outcome === 'port-taken') portTaken = true;
      else if (outcome === 'timeout' && portTaken) outcome = 'port-taken';
      if (outcome === 'port-taken' && Date.now() < deadline) {
        if (anyPort && attempt < 10) this.port = await freePort();
        else await sleep(100); // restart on the same port: wait for it to be free again
        continue;
      }
      const reason = outcome === 'port-taken' ? `port ${this.port} stayed in use` : outcome === 'timeout' ? `no PONG within ${timeoutMs} ms` : `it exited (${JSON.stringify(running.status)})`;
      this.signal(running, 'SIGKILL');
      await running.exited;
      throw new Error(`${this.label}: redis-server did not start on ${HOST}:${this.port}: ${reason}.\n${this.lines.slice(-20).join('\n')}`);
    }
  }

  private args(): string[] {
    const o = this.options;
    const args = [
      '--port', String(this.port),
      '--bind', HOST,
      '--save', '',
      '--appendonly', 'no',
      '--maxmemory-policy', o.maxmemoryPolicy ?? 'noeviction',
      '--dir', this.dir,
      '--dbfilename', 'dump.rdb',
      '--daemonize', 'no',
      '--logfile', '',
    ];
    if (o.disableConfig) {
      this.configCommand = `CONFIG-${randomBytes(8).toString('hex')}`;
      args.push('--rename-command', 'CONFIG', this.configCommand);
    } else {
      this.configCommand = 'CONFIG';
    }
    return [...args, ...(o.args ?? [])];
  }

  private spawn(): Running {
    const args = this.args();
    const [command, argv] = hasPdeathsig() ? ['setpriv', ['--pdeathsig', 'KILL', '--', this.bin, ...args]] : [this.bin, args];
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const running: Running = {
      child,
      status: undefined,
      exited: new Promise<ExitStatus>((resolve) => {
        child.once('exit', (code, signal) => {
          running.status = { code, signal };
          resolve(running.status);
        });
        child.once('error', (error) => {
          this.push(`spawn error: ${error.message}`);
          running.status = { code: null, signal: null };
          resolve(running.status);
        });
      }),
    };
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (text: string) => {
        const parts = (rest + text).split('\n');
        rest = parts.pop() ?? '';
        for (const line of parts) this.push(line);
      });
      stream?.on('end', () => rest !== '' && this.push(rest));
    }
    this.running = running;
    this.paused = false;
    return running;
  }

  private push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > OUTPUT_LINES) this.lines.splice(0, this.lines.length - OUTPUT_LINES);
  }

  private async waitReady(running: Running, deadline: number): Promise<'ready' | 'exited' | 'port-taken' | 'timeout'> {
    const exited = running.exited.then(() => 'exited' as const);
    while (Date.now() < deadline) {
      if (running.status !== undefined) return this.addressInUse() ? 'port-taken' : 'exited';
      try {
        const pong = await respCommand(this.port, ['PING'], { timeoutMs: 500 });
        if (pong === 'PONG') {
          const info = parseInfo(String(await respCommand(this.port, ['INFO', 'server'], { timeoutMs: 1_000 })));
          if (Number(info.process_id) === running.child.pid && running.status === undefined) return 'ready';
          // Another server answers on this port: ours will fail to bind and exit.
        }
      } catch {
        // not listening yet
      }
      await Promise.race([sleep(20), exited]);
    }
    if (running.status !== undefined && this.addressInUse()) return 'port-taken';
    return 'timeout';
  }

  private addressInUse(): boolean {
    return this.lines.slice(-10).some((line) => line.includes('Address already in use'));
  }

  private signal(running: Running, signal: NodeJS.Signals): void {
    if (running.status !== undefined) return;
    try {
      running.child.kill(signal);
    } catch {
      // already gone
    }
  }

  private async waitProcState(want: (state: string | undefined) => boolean, what: string): Promise<void> {
    const pid = this.running?.child.pid;
    if (pid === undefined || process.platform !== 'linux') return;
    const deadline = Date.now() + 2_000;
    while (!want(procState(pid))) {
      if (Date.now() > deadline) throw new Error(`${this.label}: pid ${pid} not ${what} after 2 s (state ${procState(pid)})`);
      await sleep(2);
    }
  }

  async pause(): Promise<void> {
    const running = this.requireAlive('pause');
    this.signal(running, 'SIGSTOP');
    this.paused = true;
    await this.waitProcState((s) => s === 'T' || s === 't', 'stopped');
  }

  async resume(): Promise<void> {
    const running = this.requireAlive('resume');
    this.signal(running, 'SIGCONT');
    this.paused = false;
    await this.waitProcState((s) => s !== 'T' && s !== 't', 'running');
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ExitStatus> {
    const running = this.running;
    if (running === undefined) throw new Error(`${this.label}: not started`);
    if (running.status !== undefined) return running.status;
    this.signal(running, signal);
    if (signal !== 'SIGKILL' && this.paused) this.signal(running, 'SIGCONT');
    this.paused = false;
    return running.exited;
  }

  /** SIGCONT + SIGTERM, SIGKILL after the grace; resolves when gone. */
  private async terminate(): Promise<void> {
    const running = this.running;
    if (running === undefined || running.status !== undefined) return;
    this.signal(running, 'SIGTERM');
    this.signal(running, 'SIGCONT');
    this.paused = false;
    const timer = setTimeout(() => this.signal(running, 'SIGKILL'), STOP_GRACE_MS);
    await running.exited;
    clearTimeout(timer);
  }

  async restart(options: RestartOptions = {}): Promise<void> {
    if (this.stopped) throw new Error(`${this.label}: stopped for good; start another server`);
    const { keepData = false, ...startOptions } = options;
    if (keepData && this.alive) {
      if (this.paused) await this.resume();
      await this.save();
    }
    await this.terminate();
    if (!keepData) rmSync(join(this.dir, 'dump.rdb'), { force: true });
    this.options = { ...this.options, ...startOptions };
    await this.launch(false);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.terminate();
    if (this.running !== undefined) await this.running.exited;
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  /** For the process exit hook: synchronous, best effort. */
  killSync(): void {
    const pid = this.alive ? this.running?.child.pid : undefined;
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }

  private requireAlive(what: string): Running {
    const running = this.running;
    if (running === undefined || running.status !== undefined) throw new Error(`${this.label}: cannot ${what}: the server is not running`);
    return running;
  }

  command(...args: Array<string | number | Buffer>): Promise<RespValue> {
    return respCommand(this.port, args);
  }

  commandWithTimeout(args: ReadonlyArray<string | number | Buffer>, timeoutMs: number): Promise<RespValue> {
    return respCommand(this.port, args, { timeoutMs });
  }

  async ping(timeoutMs = 500): Promise<boolean> {
    try {
      return (await respCommand(this.port, ['PING'], { timeoutMs })) === 'PONG';
    } catch {
      return false;
    }
  }

  async flushAll(): Promise<void> {
    await this.command('FLUSHALL');
  }

  async info(section?: string): Promise<Record<string, string>> {
    return parseInfo(String(await this.command(...(section === undefined ? ['INFO'] : ['INFO', section]))));
  }

  async runId(): Promise<string> {
    const runId = (await this.info('server')).run_id;
    if (runId === undefined) throw new Error(`${this.label}: INFO server has no run_id`);
    return runId;
  }

  async configGet(name: string): Promise<string | undefined> {
    const reply = await this.command(this.configCommand, 'GET', name);
    if (!Array.isArray(reply)) throw new Error(`${this.label}: CONFIG GET ${name}: unexpected reply ${JSON.stringify(reply)}`);
    for (let i = 0; i + 1 < reply.length; i += 2) if (String(reply[i]).toLowerCase() === name.toLowerCase()) return String(reply[i + 1]);
    return undefined;
  }

  async configSet(name: string, value: string | number): Promise<void> {
    await this.command(this.configCommand, 'SET', name, value);
  }

  async save(): Promise<void> {
    await this.command('SAVE');
  }

  connect(): Promise<RespConnection> {
    return RespConnection.open(this.port);
  }
}
