/**
 * REAL `redis-server` processes for the Redis tests, each on a free loopback port with its
 * own temporary directory, driven over ioredis. The processes, ports, connections and the
 * never-leak machinery are the one launcher in bench/support/redis-server.ts (it is part of
 * the build, this file is not); this file adds what only tests need: restart on the same
 * port, kill, pause/resume, keepData, disableConfig and the command helpers below.
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
 *                startTimeoutMs? (10 s), label?, requirepass?, users?, tls? }
 *       disableConfig: CONFIG is renamed to a secret name, so clients get
 *         "ERR unknown command 'config'" (as on a managed Redis) while the handle's
 *         configGet/configSet still work. To remove CONFIG entirely instead, pass
 *         `args: ['--rename-command', 'CONFIG', '']` (then configGet/configSet reject);
 *         do not combine the two.
 *       requirepass: the default user's password (`redis://:<password>@…`); clients that do
 *         not AUTH get NOAUTH. users: ACL users `{ username, password }` with every
 *         permission (`redis://<username>:<password>@…`). Both are set with ACL SETUSER
 *         as soon as the server answers (the launcher's readiness PING sends no password),
 *         and again after every restart; the handle's own commands authenticate.
 *       tls: TLS on a second port, `redis.tlsPort` (the plain port stays for the handle):
 *         `true` or `{ authClients: 'yes' (default: clients must present a certificate
 *         signed by the CA) | 'optional' | 'no' }`. The CA, the server certificate
 *         (127.0.0.1 and localhost) and a client certificate are made once per process
 *         with the `openssl` CLI; `redis.tls` holds the PEMs a client needs.
 *
 *   redis.host ('127.0.0.1')  .port  .url ('redis://127.0.0.1:<port>')  .pid (undefined
 *   while down)  .alive  .paused  .dir  .label  .configCommand (the name CONFIG answers to)
 *   .password (requirepass)  .tlsPort  .tlsUrl ('rediss://127.0.0.1:<tlsPort>')
 *   .tls ({ ca, cert, key }: the CA and the client certificate and key, PEM) — undefined
 *   without the option
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
 *   redis.command(...args) → RedisReply   one command on a fresh ioredis connection (2 s
 *        budget); an error reply rejects with ioredis' ReplyError, no reply in time with
 *        RedisTimeoutError.
 *   redis.commandWithTimeout(args, timeoutMs) → RedisReply   the same, another budget.
 *   redis.ping(timeoutMs = 500) → boolean   PONG within the timeout (false, never throws)
 *   redis.flushAll()  redis.runId()  redis.info(section?) → Record<string, string>
 *   redis.configGet(name) → string | undefined   redis.configSet(name, value)
 *   redis.save()   SAVE (a snapshot for restart({ keepData: true }) after a kill)
 *   redis.connect({ timeoutMs? }) → a connected ioredis client (pipelined commands, each
 *        with that budget, 2 s by default); disconnect() it.
 *   redis.output() → the server's last log lines (stdout + stderr)
 *
 *   stopAllRedis()  stop every server this process started.
 *   Re-exported from the launcher: redisCommand(port, args, { host?, timeoutMs? }) (one
 *   command, one connection), openRedis(port, { host?, timeoutMs? }), RedisTimeoutError,
 *   RedisReply, parseInfo.
 *
 * Never leaks processes: see bench/support/redis-server.ts (setpriv --pdeathsig KILL where
 * available, and an exit hook that SIGKILLs every server and removes its directory).
 *
 * Needs `redis-server` on PATH (`.ci/run` installs it), or REDIS_SERVER_BIN; `tls` also
 * needs `openssl` (and a redis-server built with TLS, as Debian's is).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import {
  createRedisDir,
  type ExitStatus,
  freeLoopbackPort,
  launchRedisServer,
  OutputLines,
  openRedis,
  parseInfo,
  REDIS_HOST,
  type RedisArg,
  type RedisConnectOptions,
  redisCommand,
  type RedisProcess,
  type RedisReply,
  redisServerArgs,
  RedisTimeoutError,
  removeRedisDir,
} from '../../bench/support/redis-server.js';

export { openRedis, parseInfo, redisCommand, RedisTimeoutError } from '../../bench/support/redis-server.js';
export type { ExitStatus, RedisReply } from '../../bench/support/redis-server.js';

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
  /** The default user's password: clients must AUTH (`redis://:<password>@host:port`). */
  requirepass?: string;
  /** ACL users with every permission (`redis://<username>:<password>@host:port`). */
  users?: ReadonlyArray<{ username: string; password: string }>;
  /** TLS on `tlsPort` too; `authClients` default 'yes' (a client certificate is required). */
  tls?: boolean | { authClients?: 'yes' | 'no' | 'optional' };
}

/** What a TLS client needs: the CA that signed the server's certificate, and a client certificate and key (PEM). */
export interface RedisTlsMaterial {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface RestartOptions extends Omit<RedisServerOptions, 'port'> {
  /** SAVE before stopping (when up) and load the snapshot: keys survive. Default false. */
  keepData?: boolean;
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
  readonly password: string | undefined;
  readonly tlsPort: number | undefined;
  readonly tlsUrl: string | undefined;
  readonly tls: RedisTlsMaterial | undefined;
  restart(options?: RestartOptions): Promise<void>;
  stop(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<ExitStatus>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  command(...args: RedisArg[]): Promise<RedisReply>;
  commandWithTimeout(args: ReadonlyArray<RedisArg>, timeoutMs: number): Promise<RedisReply>;
  ping(timeoutMs?: number): Promise<boolean>;
  flushAll(): Promise<void>;
  runId(): Promise<string>;
  info(section?: string): Promise<Record<string, string>>;
  configGet(name: string): Promise<string | undefined>;
  configSet(name: string, value: string | number): Promise<void>;
  save(): Promise<void>;
  connect(options?: Pick<RedisConnectOptions, 'timeoutMs'>): Promise<Redis>;
  output(): string[];
}

const live = new Set<RedisServer>();

/** Stops every server started by this process. */
export async function stopAllRedis(): Promise<void> {
  await Promise.all([...live].map((server) => server.stop()));
}

/** Starts a redis-server on a free loopback port; see the module comment. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisHandle> {
  const server = new RedisServer(options);
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

const DEFAULT_TIMEOUT_MS = 2_000;

interface TlsFiles extends RedisTlsMaterial {
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
}

let tlsFiles: Promise<TlsFiles> | undefined;

/** A CA, a server certificate (127.0.0.1, localhost) and a client certificate, made once per process with openssl. */
function makeTlsFiles(): Promise<TlsFiles> {
  tlsFiles ??= (async () => {
    const dir = createRedisDir(); // removed at exit
    const openssl = (...args: string[]) => promisify(execFile)('openssl', args, { cwd: dir, timeout: 30_000 });
    const file = (name: string) => join(dir, name);
    const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    try {
      await openssl(
        'req',
        '-x509',
        ...key,
        '-keyout',
        'ca.key',
        '-out',
        'ca.crt',
        '-days',
        '2',
        '-subj',
        '/CN=nestjs-grains test CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      );
      for (const [name, cn, extensions] of [
        ['server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'],
        ['client', 'nestjs-grains test client', 'extendedKeyUsage=clientAuth\n'],
      ] as const) {
        writeFileSync(file(`${name}.ext`), extensions);
        await openssl('req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
        await openssl(
          'x509',
          '-req',
          '-in',
          `${name}.csr`,
          '-CA',
          'ca.crt',
          '-CAkey',
          'ca.key',
          '-CAcreateserial',
          '-days',
          '2',
          '-out',
          `${name}.crt`,
          '-extfile',
          `${name}.ext`,
        );
      }
    } catch (error) {
      tlsFiles = undefined;
      throw new Error(`redis tls: could not make the certificates with openssl: ${(error as Error).message}`);
    }
    return {
      caFile: file('ca.crt'),
      serverCertFile: file('server.crt'),
      serverKeyFile: file('server.key'),
      ca: readFileSync(file('ca.crt'), 'utf8'),
      cert: readFileSync(file('client.crt'), 'utf8'),
      key: readFileSync(file('client.key'), 'utf8'),
    };
  })();
  return tlsFiles;
}

/** A client of the handle's own that authenticates: fails instead of waiting (nothing queued, retried or reconnected). */
async function openAuthenticated(port: number, password: string, timeoutMs: number): Promise<Redis> {
  const client = new Redis({
    host: REDIS_HOST,
    port,
    password,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    enableReadyCheck: false,
    disableClientInfo: true,
    disconnectTimeout: 0,
  });
  let socketError: Error | undefined;
  client.on('error', (error: Error) => (socketError ??= error));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RedisTimeoutError(`connect to ${REDIS_HOST}:${port}: no reply within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    client.disconnect();
    throw socketError ?? error;
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/** The process state letter from /proc (R, S, T, Z, ...); undefined when unknown. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

class RedisServer implements RedisHandle {
  readonly host = REDIS_HOST;
  port = 0;
  readonly dir = createRedisDir();
  readonly label: string;
  configCommand = 'CONFIG';
  paused = false;
  private options: RedisServerOptions;
  private running: RedisProcess | undefined;
  tlsPort: number | undefined;
  tls: RedisTlsMaterial | undefined;
  private readonly log = new OutputLines();
  private stopped = false;
  private tlsFiles: TlsFiles | undefined;
  /** Ports for TLS to try, one per launch attempt (the launcher moves to another port when one is taken). */
  private tlsPortCandidates: number[] = [];

  constructor(options: RedisServerOptions) {
    this.options = { ...options };
    this.label = options.label ?? 'redis';
    if (options.port !== undefined) this.port = options.port;
  }

  get url(): string {
    return `redis://${REDIS_HOST}:${this.port}`;
  }

  get password(): string | undefined {
    return this.options.requirepass;
  }

  get tlsUrl(): string | undefined {
    return this.tlsPort === undefined ? undefined : `rediss://${REDIS_HOST}:${this.tlsPort}`;
  }

  get pid(): number | undefined {
    return this.alive ? this.running?.pid : undefined;
  }

  get alive(): boolean {
    return this.running !== undefined && this.running.status === undefined;
  }

  output(): string[] {
    return this.log.lines();
  }

  /** Starts the server; `anyPort`: a port taken by someone else is replaced by another free one. */
  async launch(anyPort: boolean): Promise<void> {
    this.paused = false;
    if (this.options.tls) {
      this.tlsFiles = await makeTlsFiles();
      this.tls = { ca: this.tlsFiles.ca, cert: this.tlsFiles.cert, key: this.tlsFiles.key };
      // NOTE: a restart keeps its TLS port, as it keeps its plain one.
      this.tlsPortCandidates = this.tlsPort !== undefined ? [this.tlsPort] : await Promise.all([1, 2, 3].map(() => freeLoopbackPort()));
    } else {
      this.tlsFiles = undefined;
      this.tls = undefined;
      this.tlsPort = undefined;
    }
    this.running = await launchRedisServer({
      port: this.port === 0 ? undefined : this.port,
      anyPort,
      args: (port) => this.args(port),
      log: this.log,
      timeoutMs: this.options.startTimeoutMs,
      label: this.label,
    });
    this.port = this.running.port;
    await this.applyAuth();
  }

  /** The ACL users, then the default user's password (after which every client must AUTH). */
  private async applyAuth(): Promise<void> {
    const { requirepass, users = [] } = this.options;
    for (const { username, password } of users) {
      await redisCommand(this.port, ['ACL', 'SETUSER', username, 'reset', 'on', `>${password}`, '~*', '&*', '+@all']);
    }
    if (requirepass !== undefined) await redisCommand(this.port, ['ACL', 'SETUSER', 'default', 'resetpass', `>${requirepass}`]);
  }

  private args(port: number): string[] {
    const args = redisServerArgs(port, this.dir, this.options.maxmemoryPolicy);
    if (this.options.disableConfig) {
      this.configCommand = `CONFIG-${randomBytes(8).toString('hex')}`;
      args.push('--rename-command', 'CONFIG', this.configCommand);
    } else {
      this.configCommand = 'CONFIG';
    }
    const files = this.tlsFiles;
    if (files !== undefined && this.options.tls) {
      this.tlsPort = this.tlsPortCandidates.length > 1 ? this.tlsPortCandidates.shift()! : this.tlsPortCandidates[0]!;
      const authClients = this.options.tls === true ? 'yes' : (this.options.tls.authClients ?? 'yes');
      args.push('--tls-port', String(this.tlsPort), '--tls-cert-file', files.serverCertFile, '--tls-key-file', files.serverKeyFile);
      args.push('--tls-ca-cert-file', files.caFile, '--tls-auth-clients', authClients);
    }
    return [...args, ...(this.options.args ?? [])];
  }

  private async waitProcState(want: (state: string | undefined) => boolean, what: string): Promise<void> {
    const pid = this.running?.pid;
    if (pid === undefined || process.platform !== 'linux') return;
    const deadline = Date.now() + 2_000;
    while (!want(procState(pid))) {
      if (Date.now() > deadline) throw new Error(`${this.label}: pid ${pid} not ${what} after 2 s (state ${procState(pid)})`);
      await sleep(2);
    }
  }

  async pause(): Promise<void> {
    this.requireAlive('pause').signal('SIGSTOP');
    this.paused = true;
    await this.waitProcState((s) => s === 'T' || s === 't', 'stopped');
  }

  async resume(): Promise<void> {
    this.requireAlive('resume').signal('SIGCONT');
    this.paused = false;
    await this.waitProcState((s) => s !== 'T' && s !== 't', 'running');
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ExitStatus> {
    const running = this.running;
    if (running === undefined) throw new Error(`${this.label}: not started`);
    if (running.status !== undefined) return running.status;
    running.signal(signal);
    if (signal !== 'SIGKILL' && this.paused) running.signal('SIGCONT');
    this.paused = false;
    return running.exited;
  }

  private async terminate(): Promise<void> {
    await this.running?.terminate();
    this.paused = false;
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
    removeRedisDir(this.dir);
    live.delete(this);
  }

  private requireAlive(what: string): RedisProcess {
    const running = this.running;
    if (running === undefined || running.status !== undefined) throw new Error(`${this.label}: cannot ${what}: the server is not running`);
    return running;
  }

  command(...args: RedisArg[]): Promise<RedisReply> {
    return this.commandWithTimeout(args, DEFAULT_TIMEOUT_MS);
  }

  /** One command on its own connection (authenticated with `requirepass` when set). */
  async commandWithTimeout(args: ReadonlyArray<RedisArg>, timeoutMs: number): Promise<RedisReply> {
    const password = this.options.requirepass;
    if (password === undefined) return redisCommand(this.port, args, { timeoutMs });
    const [name, ...rest] = args;
    if (name === undefined) throw new Error('command: no command');
    let timer: NodeJS.Timeout | undefined;
    let client: Redis | undefined;
    const reply = (async () => {
      client = await openAuthenticated(this.port, password, timeoutMs);
      return (await client.call(String(name), ...rest)) as RedisReply;
    })();
    try {
      return await Promise.race([
        reply,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new RedisTimeoutError(`${String(name)}: no reply within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      reply.catch(() => {}).finally(() => client?.disconnect());
    }
  }

  async ping(timeoutMs = 500): Promise<boolean> {
    try {
      return (await this.commandWithTimeout(['PING'], timeoutMs)) === 'PONG';
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

  connect(options: Pick<RedisConnectOptions, 'timeoutMs'> = {}): Promise<Redis> {
    const password = this.options.requirepass;
    if (password === undefined) return openRedis(this.port, options);
    return openAuthenticated(this.port, password, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }
}
