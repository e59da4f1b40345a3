/**
 * A redis-server for the Redis scenarios: one real process on a free loopback port, with no
 * persistence and `noeviction` (RedisIdentityLookup refuses any other policy), in its own
 * temporary directory. (test/support/redis-server.ts is not part of the build, so the bench
 * has this small starter of its own.)
 *
 *   redis-server --port <free> --bind 127.0.0.1 --save '' --appendonly no
 *                --maxmemory-policy noeviction --dir <tmp> --daemonize no --logfile ''
 *
 * Never leaks the process: it is started through util-linux `setpriv --pdeathsig KILL` when
 * available (the kernel kills it if this process dies, even by SIGKILL; setpriv execs, so
 * the pid is the server's), and SIGKILLed from a synchronous 'exit' hook otherwise.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 2_000;

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

let pdeathsig: boolean | undefined;
function hasPdeathsig(): boolean {
  if (pdeathsig === undefined) {
    const probe = spawnSync('setpriv', ['--help'], { encoding: 'utf8', timeout: 10_000 });
    pdeathsig = process.platform === 'linux' && probe.status === 0 && probe.stdout.includes('--pdeathsig');
  }
  return pdeathsig;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/** A whole reply: `+PONG\r\n`, `-ERR …\r\n`, or a bulk string `$<n>\r\n<n bytes>\r\n` (INFO). */
function complete(text: string): boolean {
  if (text.startsWith('+') || text.startsWith('-')) return text.endsWith('\r\n');
  const bulk = /^\$(\d+)\r\n/.exec(text);
  return bulk !== null && Buffer.byteLength(text) >= bulk[0].length + Number(bulk[1]) + 2;
}

/** One inline command on a fresh connection; resolves to the raw reply text (bounded). */
function rawCommand(port: number, command: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${command}: no reply within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (complete(text)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      }
    });
  });
}

export interface BenchRedisServer {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  /** The server's last output lines (for error messages). */
  output(): string;
  /** SIGTERM (SIGKILL after 2 s); resolves once it exited; removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** Start a redis-server on a free loopback port; resolves once it answers PING and INFO says it is this process. */
export async function startRedisServer(extraArgs: readonly string[] = []): Promise<BenchRedisServer> {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.error !== undefined || probe.status !== 0) throw new Error(`the Redis scenarios need redis-server on PATH (${probe.error?.message ?? probe.stderr})`);
  installExitHook();
  for (let attempt = 1; ; attempt++) {
    const port = await freeLoopbackPort();
    const dir = mkdtempSync(join(tmpdir(), 'nestjs-grains-bench-redis-'));
    const args = ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--dir', dir, '--daemonize', 'no', '--logfile', '', ...extraArgs];
    const [command, argv] = hasPdeathsig() ? ['setpriv', ['--pdeathsig', 'KILL', '--', 'redis-server', ...args]] : ['redis-server', args];
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let lines = '';
    for (const stream of [child.stdout, child.stderr]) stream?.setEncoding('utf8').on('data', (text: string) => (lines = (lines + text).slice(-4_000)));
    let exited = child.exitCode !== null;
    const exit = new Promise<void>((resolve) =>
      child.once('exit', () => {
        exited = true;
        live.delete(child);
        resolve();
      }),
    );
    const stop = async () => {
      if (!exited) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exit;
        clearTimeout(killer);
      }
      rmSync(dir, { recursive: true, force: true });
    };
    const deadline = Date.now() + START_TIMEOUT_MS;
    let ready = false;
    while (!exited && Date.now() < deadline) {
      try {
        if ((await rawCommand(port, 'PING', 500)) === '+PONG\r\n') {
          const info = await rawCommand(port, 'INFO server', 1_000);
          // Another server on this port would be answering instead; ours then fails to bind.
          if (new RegExp(`process_id:${child.pid}\\r\\n`).test(info)) {
            ready = true;
            break;
          }
        }
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (ready) {
      let stopping: Promise<void> | undefined;
      return { port, url: `redis://${HOST}:${port}`, pid: child.pid!, output: () => lines, stop: () => (stopping ??= stop()) };
    }
    await stop();
    if (!lines.includes('Address already in use') || attempt >= 5) throw new Error(`redis-server did not start on ${HOST}:${port}:\n${lines.slice(-1_500)}`);
  }
}

/** `INFO` text → key/value pairs. */
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
