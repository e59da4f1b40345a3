import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ReplyError } from 'ioredis';
import ts from 'typescript';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisHandle, redisCommand, startRedis, stopAllRedis } from '../support/redis-server.js';

/** Is the process gone (no such pid, or a zombie waiting to be reaped)? */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

async function waitGone(pid: number, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!gone(pid)) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} still alive after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const started: RedisHandle[] = [];
async function redis(options?: Parameters<typeof startRedis>[0]): Promise<RedisHandle> {
  const handle = await startRedis(options);
  started.push(handle);
  return handle;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((h) => h.stop()));
});

afterAll(async () => {
  await stopAllRedis();
});

describe('startRedis', () => {
  it('starts a real redis-server on a free loopback port with the test defaults', async () => {
    const r = await redis();
    expect(r.host).toBe('127.0.0.1');
    expect(r.url).toBe(`redis://127.0.0.1:${r.port}`);
    expect(r.alive).toBe(true);
    expect(await r.command('PING')).toBe('PONG');
    const info = await r.info('server');
    expect(Number(info.process_id)).toBe(r.pid);
    expect(info.tcp_port).toBe(String(r.port));
    expect(await r.configGet('bind')).toBe('127.0.0.1');
    expect(await r.configGet('save')).toBe('');
    expect(await r.configGet('appendonly')).toBe('no');
    expect(await r.configGet('maxmemory-policy')).toBe('noeviction');
    expect(await r.configGet('dir')).toBe(r.dir);
    expect(existsSync(r.dir)).toBe(true);

    const pid = r.pid!;
    await r.stop();
    expect(r.alive).toBe(false);
    expect(existsSync(r.dir)).toBe(false);
    await waitGone(pid);
    await r.stop(); // idempotent
  });

  it('passes extra arguments after the defaults (another policy, a memory limit)', async () => {
    const r = await redis({ maxmemoryPolicy: 'allkeys-lru', args: ['--maxmemory', '1mb'] });
    expect(await r.configGet('maxmemory-policy')).toBe('allkeys-lru');
    expect(await r.configGet('maxmemory')).toBe('1048576');
    await r.configSet('maxmemory-policy', 'volatile-ttl');
    expect(await r.configGet('maxmemory-policy')).toBe('volatile-ttl');
  });

  it('restart(): same port, data gone, new run_id; keepData keeps the keys (run_id still new)', async () => {
    const r = await redis();
    const port = r.port;
    const run1 = await r.runId();
    expect(run1).toMatch(/^[0-9a-f]{40}$/);
    await r.command('SET', 'k', 'v1');

    await r.restart();
    expect(r.port).toBe(port);
    const run2 = await r.runId();
    expect(run2).not.toBe(run1);
    expect(await r.command('GET', 'k')).toBeNull();

    await r.command('SET', 'k', 'v2');
    await r.restart({ keepData: true });
    expect(r.port).toBe(port);
    expect(await r.runId()).not.toBe(run2);
    expect(await r.command('GET', 'k')).toBe('v2');

    await r.flushAll();
    expect(await r.command('DBSIZE')).toBe(0);
  });

  it('kill(): the server is down (connections refused) until restart()', async () => {
    const r = await redis();
    const pid = r.pid!;
    const status = await r.kill();
    expect(status.signal).toBe('SIGKILL');
    expect(r.alive).toBe(false);
    expect(r.pid).toBeUndefined();
    await waitGone(pid);
    await expect(redisCommand(r.port, ['PING'], { timeoutMs: 1_000 })).rejects.toThrow(/ECONNREFUSED/);
    expect(await r.ping()).toBe(false);
    await r.restart();
    expect(await r.ping()).toBe(true);
    expect(r.pid).not.toBe(pid);
  });

  it('pause(): PING times out while stopped, is answered after resume(); a held command completes', async () => {
    const r = await redis();
    const conn = await r.connect({ timeoutMs: 5_000 });
    try {
      await r.pause();
      expect(r.paused).toBe(true);
      const t0 = Date.now();
      expect(await r.ping(300)).toBe(false);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
      await expect(r.commandWithTimeout(['PING'], 200)).rejects.toThrow(/no reply within 200 ms/);
      const held = conn.call('INCR', 'n');
      await new Promise((resolve) => setTimeout(resolve, 100));
      await r.resume();
      expect(r.paused).toBe(false);
      expect(await held).toBe(1);
      expect(await r.ping(2_000)).toBe(true);
    } finally {
      conn.disconnect();
    }
  });

  it('restart() and stop() work on a paused server', async () => {
    const r = await redis();
    const run1 = await r.runId();
    await r.pause();
    await r.restart();
    expect(await r.runId()).not.toBe(run1);
    const pid = r.pid!;
    await r.pause();
    await r.stop();
    await waitGone(pid);
  });

  it('disableConfig: clients get "unknown command", the handle still reads and writes config', async () => {
    const r = await redis({ disableConfig: true });
    expect(r.configCommand).not.toBe('CONFIG');
    const error = await r.command('CONFIG', 'GET', 'maxmemory-policy').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReplyError);
    expect((error as Error).message).toMatch(/unknown command/i);
    expect(await r.configGet('maxmemory-policy')).toBe('noeviction');
    await r.configSet('maxmemory', '2mb');
    expect(await r.configGet('maxmemory')).toBe('2097152');
    // Survives a restart (a new secret name each time).
    await r.restart();
    await expect(r.command('CONFIG', 'GET', 'maxmemory')).rejects.toThrow(/unknown command/i);
    expect(await r.configGet('maxmemory')).toBe('0');
  });

  it('--rename-command CONFIG "" removes CONFIG for everyone', async () => {
    const r = await redis({ args: ['--rename-command', 'CONFIG', ''] });
    await expect(r.command('CONFIG', 'GET', 'save')).rejects.toThrow(/unknown command/i);
    await expect(r.configGet('save')).rejects.toThrow(/unknown command/i);
    expect(await r.command('PING')).toBe('PONG');
  });

  it('several servers start in parallel on distinct ports', async () => {
    const servers = await Promise.all([1, 2, 3, 4].map(() => redis()));
    expect(new Set(servers.map((s) => s.port)).size).toBe(4);
    expect(new Set(servers.map((s) => s.pid)).size).toBe(4);
    expect(new Set(await Promise.all(servers.map((s) => s.runId()))).size).toBe(4);
    await Promise.all(servers.map((s, i) => s.command('SET', 'who', String(i))));
    expect(await Promise.all(servers.map((s) => s.command('GET', 'who')))).toEqual(['0', '1', '2', '3']);
  });

  it('a server that cannot start rejects with its output and leaves nothing behind', async () => {
    const error = (await startRedis({ maxmemoryPolicy: 'no-such-policy', startTimeoutMs: 5_000 }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(/did not start/);
    expect(error.message).toMatch(/maxmemory-policy/);
  });

  it('never mistakes another server on its port for its own', async () => {
    const other = await redis();
    const error = (await startRedis({ port: other.port, startTimeoutMs: 1_000 }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(new RegExp(`port ${other.port} stayed in use`));
    expect(await other.ping()).toBe(true);
  });

  it('connect(): an ioredis connection pipelines commands and reports error replies as ReplyError', async () => {
    const r = await redis();
    const conn = await r.connect();
    try {
      const replies = await Promise.all([
        conn.call('SET', 'a', '1'),
        conn.call('INCR', 'a'),
        conn.call('MGET', 'a', 'missing'),
        conn.call('HGET', 'a', 'f').catch((e: unknown) => e),
      ]);
      expect(replies.slice(0, 3)).toEqual(['OK', 2, ['2', null]]);
      expect(replies[3]).toBeInstanceOf(ReplyError);
      expect((replies[3] as Error).message).toMatch(/^WRONGTYPE/);
      expect(await conn.call('EVAL', "return {1, 'x', redis.status_reply('S')}", '0')).toEqual([1, 'x', 'S']);
    } finally {
      conn.disconnect();
    }
  });
});

describe('no redis-server outlives the process that started it', () => {
  // Runs the harness in a plain Node child (compiled here with TypeScript's transpiler), laid
  // out as in the repo, since the handle imports the launcher from bench/support; the repo's
  // node_modules is linked in for ioredis.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'redis-harness-child-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function compile(): string {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    for (const file of ['test/support/redis-server', 'bench/support/redis-server']) {
      const source = readFileSync(join(root, `${file}.ts`), 'utf8');
      const out = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      writeFileSync(join(dir, `${file}.js`), out.outputText);
    }
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
    writeFileSync(
      join(dir, 'child.js'),
      `import { startRedis } from './test/support/redis-server.js';
const r = await startRedis();
console.log(JSON.stringify({ pid: r.pid, port: r.port, dir: r.dir }));
process.stdin.on('data', () => process.exit(0));
`,
    );
    return join(dir, 'child.js');
  }

  async function startChild(): Promise<{ child: ReturnType<typeof spawn>; pid: number; port: number; dir: string }> {
    const script = existsSync(join(dir, 'child.js')) ? join(dir, 'child.js') : compile();
    const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout! });
      rl.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`child exited (${code}) before starting redis`)));
    });
    return { child, ...(JSON.parse(line) as { pid: number; port: number; dir: string }) };
  }

  it('the process exits normally: its servers are killed and their directories removed', async () => {
    const { child, pid, port, dir: redisDir } = await startChild();
    expect(gone(pid)).toBe(false);
    expect(await redisCommand(port, ['PING'])).toBe('PONG');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.stdin!.write('exit\n');
    await exited;
    await waitGone(pid);
    expect(existsSync(redisDir)).toBe(false);
  });

  // Only the kernel can do this (setpriv --pdeathsig, util-linux); no exit hook runs on SIGKILL.
  const pdeathsig = process.platform === 'linux' && (spawnSync('setpriv', ['--help'], { encoding: 'utf8' }).stdout ?? '').includes('--pdeathsig');
  it.skipIf(!pdeathsig)('the process is SIGKILLed: its servers die with it', async () => {
    const { child, pid, dir: redisDir } = await startChild();
    expect(gone(pid)).toBe(false);
    child.kill('SIGKILL');
    await waitGone(pid);
    rmSync(redisDir, { recursive: true, force: true });
  });
});
