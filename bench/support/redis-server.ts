/**
 * The one redis-server launcher of this repo: REAL `redis-server` processes on free loopback
 * ports, each in its own temporary directory, and ioredis connections to drive them. The
 * bench's Redis group uses `startRedisServer()`; the tests' richer handle
 * (test/support/redis-server.ts: restart on the same port, pause/resume, kill, keepData,
 * disableConfig) is built on `launchRedisServer()`. It lives here because bench/ is part of
 * the build and test/support is not.
 *
 * API
 *
 *   startRedisServer(extraArgs?) → { port, url, pid, output(), stop() }
 *     `redisServerArgs()` + `extraArgs` (which come last, so they win) on a free port;
 *     resolves once it answers PING and INFO says it is this process. stop(): SIGTERM
 *     (SIGKILL after 2 s), resolves once it exited, removes its directory; idempotent.
 *
 *   redisServerArgs(port, dir, maxmemoryPolicy = 'noeviction')
 *     --port <port> --bind 127.0.0.1 --save '' --appendonly no --maxmemory-policy <policy>
 *     --dir <dir> --dbfilename dump.rdb --daemonize no --logfile ''
 *   launchRedisServer({ port?, anyPort, args(port), log, timeoutMs?, label? }) → RedisProcess
 *     Spawns redis-server with `args(port)` and resolves when it answers PING and INFO says
 *     it is this process (not another server that took the port). A port someone else holds
 *     is replaced by another free one when `anyPort`, else waited for. Rejects (with the
 *     server's last output lines) when it exits or does not answer within `timeoutMs`.
 *   RedisProcess: .pid .port .status (undefined while running) .exited .signal(sig)
 *     .terminate() (SIGTERM + SIGCONT, SIGKILL after 2 s; resolves once exited)
 *   createRedisDir() / removeRedisDir(dir)   a temporary directory the exit hook also removes
 *   OutputLines   the last 200 lines a server wrote (stdout + stderr), kept across restarts
 *   freeLoopbackPort()   a TCP port free on 127.0.0.1 right now
 *
 *   redisCommand(port, args, { host?, timeoutMs? = 2000 }) → RedisReply
 *     one command on its own ioredis connection, always disconnected. An error reply rejects
 *     with ioredis' ReplyError; no connection or no reply within `timeoutMs` (connect and
 *     reply together) with RedisTimeoutError; a refused connection with its ECONNREFUSED.
 *   openRedis(port, { host?, timeoutMs? = 2000 }) → ioredis Redis, connected: commands are
 *     pipelined; each one rejects with "Command timed out" after `timeoutMs`. disconnect() it.
 *   parseInfo(text), parseCommandStats(text)
 *
 * Never leaks processes: every server is started through util-linux `setpriv --pdeathsig
 * KILL` when available (it execs redis-server, so the pid is the server's), so the kernel
 * kills it even if this process is SIGKILLed; and a synchronous 'exit' hook SIGKILLs every
 * server still running and removes every directory from createRedisDir() not yet removed.
 * Connections never hang on a paused (SIGSTOPped) server: no offline queue, no retries,
 * no reconnects, and a deadline of our own around connect + reply.
 *
 * Needs `redis-server` on PATH (`.ci/run` installs it), or REDIS_SERVER_BIN.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';

export const REDIS_HOST = '127.0.0.1';
const DEFAULT_TIMEOUT_MS = 2_000;
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 2_000;
const OUTPUT_LINES = 200;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------
// ioredis connections
// ---------------------------------------------------------------------------------------

/** A reply as `call()` returns it (ioredis' default `legacy` mapping: RESP2 shapes, even on RESP3). */
export type RedisReply = string | number | null | Error | RedisReply[];
export type RedisArg = string | number | Buffer;

/** No connection or no reply within the budget (a hung, e.g. paused, server). */
export class RedisTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisTimeoutError';
  }
}

export interface RedisConnectOptions {
  host?: string;
  /** Budget (ms) for connect + reply (redisCommand) or for connect and each command (openRedis); default 2000. */
  timeoutMs?: number;
}

/** A client that fails instead of waiting: nothing is queued, retried or reconnected. */
function failFastClient(port: number, options: RedisConnectOptions): Redis {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const settings: RedisOptions = {
    host: options.host ?? REDIS_HOST,
    port,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    // NOTE: no INFO ready check and no CLIENT SETINFO: fewer round trips per connection,
    // and nothing of ours in the server's command counts but the command itself (and HELLO).
    enableReadyCheck: false,
    disableClientInfo: true,
    // NOTE: a paused server never answers our FIN; destroy the socket at once instead of after
    // ioredis' 2 s grace (nothing is left to send once we disconnect).
    disconnectTimeout: 0,
  };
  return new Redis(settings);
}

/** Rejects with RedisTimeoutError unless `work` settles within `timeoutMs`. */
async function withDeadline<T>(work: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisTimeoutError(message)), timeoutMs);
  });
  try {
    // NOTE: race() subscribes to `work`, so its late rejection (after the disconnect) is handled.
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** connect(), rejecting with the socket's own error (ECONNREFUSED, ...) rather than "Connection is closed." */
async function connectClient(client: Redis): Promise<void> {
  let socketError: Error | undefined;
  client.on('error', (error: Error) => (socketError ??= error));
  try {
    await client.connect();
  } catch (error) {
    throw socketError ?? error;
  }
}

/** One command on its own connection; see the module comment. */
export async function redisCommand(port: number, args: ReadonlyArray<RedisArg>, options: RedisConnectOptions = {}): Promise<RedisReply> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const [name, ...rest] = args;
  if (name === undefined) throw new Error('redisCommand: no command');
  const client = failFastClient(port, options);
  const reply = connectClient(client).then(() => client.call(String(name), ...rest) as Promise<RedisReply>);
  try {
    return await withDeadline(reply, timeoutMs, `${String(name)}: no reply within ${timeoutMs} ms`);
  } finally {
    client.disconnect();
  }
}

/** A persistent connection, connected; the caller disconnect()s it. */
export async function openRedis(port: number, options: RedisConnectOptions = {}): Promise<Redis> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const client = failFastClient(port, options);
  try {
    await withDeadline(connectClient(client), timeoutMs, `connect to ${options.host ?? REDIS_HOST}:${port}: no reply within ${timeoutMs} ms`);
  } catch (error) {
    client.disconnect();
    throw error;
  }
  return client;
}

/** `INFO` text → key/value pairs (section headers and blank lines skipped). */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) out[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return out;
}

/** `INFO commandstats` → calls per command (`cmdstat_evalsha:calls=3,...` → { evalsha: 3 }). */
export function parseCommandStats(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(parseInfo(text))) {
    if (!key.startsWith('cmdstat_')) continue;
    const calls = /(?:^|,)calls=(\d+)/.exec(value);
    if (calls !== null) out[key.slice('cmdstat_'.length)] = Number(calls[1]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// redis-server processes
// ---------------------------------------------------------------------------------------

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, REDIS_HOST, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

let redisBin: string | undefined;
let pdeathsig: boolean | undefined;

function redisServerBinary(): string {
  if (redisBin !== undefined) return redisBin;
  const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server';
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(
      `cannot run ${JSON.stringify(bin)} (${probe.error?.message ?? `exit ${probe.status}: ${probe.stderr}`}). ` +
        'The Redis tests and the bench Redis group start their own servers and need redis-server on PATH: ' +
        '`apt-get install -y redis-server` (what .ci/run does), or set REDIS_SERVER_BIN.',
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

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

/** On exit (synchronous, best effort): SIGKILL what still runs, remove the directories. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** A temporary directory for a server (its dump.rdb); removed by removeRedisDir() or at exit. */
export function createRedisDir(): string {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-grains-redis-'));
  liveDirs.add(dir);
  return dir;
}

export function removeRedisDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}

/** The defaults: loopback only, no persistence, `noeviction` (RedisIdentityLookup refuses any other policy). */
export function redisServerArgs(port: number, dir: string, maxmemoryPolicy = 'noeviction'): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    REDIS_HOST,
    '--save',
    '',
    '--appendonly',
    'no',
    '--maxmemory-policy',
    maxmemoryPolicy,
    '--dir',
    dir,
    '--dbfilename',
    'dump.rdb',
    '--daemonize',
    'no',
    '--logfile',
    '',
  ];
}

/** The last lines a server wrote (stdout + stderr); one per handle, so it spans restarts. */
export class OutputLines {
  private readonly kept: string[] = [];

  push(line: string): void {
    this.kept.push(line);
    if (this.kept.length > OUTPUT_LINES) this.kept.splice(0, this.kept.length - OUTPUT_LINES);
  }

  lines(): string[] {
    return [...this.kept];
  }

  /** Feeds a child's stdout/stderr in, line by line. */
  follow(child: ChildProcess): void {
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
  }
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One redis-server process (a restart is another one). */
export class RedisProcess {
  /** Undefined while it runs. */
  status: ExitStatus | undefined;
  readonly exited: Promise<ExitStatus>;

  constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    log: OutputLines,
  ) {
    liveChildren.add(child);
    log.follow(child);
    this.exited = new Promise<ExitStatus>((resolve) => {
      const done = (status: ExitStatus): void => {
        this.status ??= status;
        liveChildren.delete(child);
        resolve(this.status);
      };
      child.once('exit', (code, signal) => done({ code, signal }));
      child.once('error', (error) => {
        log.push(`spawn error: ${error.message}`);
        done({ code: null, signal: null });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** No-op once it exited. */
  signal(signal: NodeJS.Signals): void {
    if (this.status !== undefined) return;
    try {
      this.child.kill(signal);
    } catch {
      // already gone
    }
  }

  /** SIGTERM + SIGCONT (a paused server must run to act on it), SIGKILL after the grace. */
  async terminate(): Promise<ExitStatus> {
    if (this.status !== undefined) return this.status;
    this.signal('SIGTERM');
    this.signal('SIGCONT');
    const killer = setTimeout(() => this.signal('SIGKILL'), STOP_GRACE_MS);
    try {
      return await this.exited;
    } finally {
      clearTimeout(killer);
    }
  }
}

function spawnRedisServer(port: number, args: string[], log: OutputLines): RedisProcess {
  const bin = redisServerBinary();
  installExitHook();
  const [command, argv] = hasPdeathsig() ? ['setpriv', ['--pdeathsig', 'KILL', '--', bin, ...args]] : [bin, args];
  return new RedisProcess(spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] }), port, log);
}

export interface LaunchOptions {
  /** The port to start on; default a free one. */
  port?: number;
  /** A port someone else holds is replaced by another free one (else: wait for it). */
  anyPort: boolean;
  /** redis-server's arguments for a port (called again when the port changes). */
  args(port: number): string[];
  log: OutputLines;
  /** How long to wait for PING (ms); default 10 000. */
  timeoutMs?: number;
  /** For messages. */
  label?: string;
}

type Outcome = 'ready' | 'exited' | 'port-taken' | 'timeout';

/** Starts a server; see the module comment. */
export async function launchRedisServer(options: LaunchOptions): Promise<RedisProcess> {
  const timeoutMs = options.timeoutMs ?? START_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let port = options.port ?? (await freeLoopbackPort());
  let portTaken = false;
  for (let attempt = 1; ; attempt++) {
    const server = spawnRedisServer(port, options.args(port), options.log);
    let outcome = await waitReady(server, options.log, deadline);
    if (outcome === 'ready') return server;
    if (outcome === 'port-taken') portTaken = true;
    else if (outcome === 'timeout' && portTaken) outcome = 'port-taken';
    if (outcome === 'port-taken' && Date.now() < deadline) {
      if (options.anyPort && attempt < 10) port = await freeLoopbackPort();
      else await sleep(100); // the same port: wait for it to be free again
      continue;
    }
    const reason =
      outcome === 'port-taken'
        ? `port ${port} stayed in use`
        : outcome === 'timeout'
          ? `no PONG within ${timeoutMs} ms`
          : `it exited (${JSON.stringify(server.status)})`;
    server.signal('SIGKILL');
    await server.exited;
    throw new Error(
      `${options.label ?? 'redis'}: redis-server did not start on ${REDIS_HOST}:${port}: ${reason}.\n${options.log.lines().slice(-20).join('\n')}`,
    );
  }
}

async function waitReady(server: RedisProcess, log: OutputLines, deadline: number): Promise<Outcome> {
  const addressInUse = (): boolean =>
    log
      .lines()
      .slice(-10)
      .some((line) => line.includes('Address already in use'));
  const exited = server.exited.then(() => 'exited' as const);
  while (Date.now() < deadline) {
    if (server.status !== undefined) return addressInUse() ? 'port-taken' : 'exited';
    try {
      if ((await redisCommand(server.port, ['PING'], { timeoutMs: 500 })) === 'PONG') {
        const info = parseInfo(String(await redisCommand(server.port, ['INFO', 'server'], { timeoutMs: 1_000 })));
        if (Number(info.process_id) === server.pid && server.status === undefined) return 'ready';
        // Another server answers on this port: ours will fail to bind and exit.
      }
    } catch {
      // not listening yet
    }
    await Promise.race([sleep(20), exited]);
  }
  if (server.status !== undefined && addressInUse()) return 'port-taken';
  return 'timeout';
}

// ---------------------------------------------------------------------------------------
// The bench's handle
// ---------------------------------------------------------------------------------------

export interface BenchRedisServer {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  /** The server's last output lines (for error messages). */
  output(): string[];
  /** SIGTERM (SIGKILL after 2 s); resolves once it exited; removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** Starts a redis-server with the defaults (+ `extraArgs`) on a free loopback port. */
export async function startRedisServer(extraArgs: readonly string[] = []): Promise<BenchRedisServer> {
  const dir = createRedisDir();
  const log = new OutputLines();
  let server: RedisProcess;
  try {
    server = await launchRedisServer({ anyPort: true, log, args: (port) => [...redisServerArgs(port, dir), ...extraArgs] });
  } catch (error) {
    removeRedisDir(dir);
    throw error;
  }
  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    await server.terminate();
    removeRedisDir(dir);
  };
  return { port: server.port, url: `redis://${REDIS_HOST}:${server.port}`, pid: server.pid ?? 0, output: () => log.lines(), stop: () => (stopping ??= stop()) };
}
