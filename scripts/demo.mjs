#!/usr/bin/env node
/**
 * `npm run demo`: three members of the sample bank through Consul, with placement in Redis, on
 * this machine.
 *
 * Starts, in order: a redis-server (port 6379, or a free port when 6379 is taken; no
 * persistence, `noeviction`, its own temporary directory), the Consul test agent
 * (dist/test/support/consul-agent-main.js: a Consul-compatible agent in memory, port 8500 or a
 * free one), and three sample-app members (dist/sample-app/main.js) with CLUSTER_PROVIDER=consul,
 * IDENTITY_LOOKUP=redis, HTTP ports 3001-3003 and remote ports 4001-4003 on 127.0.0.1. Waits
 * until `GET /health` answers 200 on all three, then prints what runs where and a few curl
 * lines to try.
 *
 * Ctrl-C (SIGINT) or SIGTERM stops everything: the members first, with SIGTERM, so they leave
 * the cluster gracefully (their grains drain, their Redis entries are released, they
 * deregister from Consul), then the agent, then Redis. A second signal kills what is left at
 * once. The children run in their own process groups (so a Ctrl-C reaches this script only and
 * the members stop before Redis and the agent do) and, where util-linux `setpriv` exists,
 * with a parent-death signal, so they never outlive this script even if it is killed.
 *
 * Logs go to files in a temporary directory (printed), removed after a clean stop.
 * Builds first when dist/ is missing (`npm run demo` always builds first).
 *
 * Plain Node (>= 20), no dependencies.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MEMBER_SCRIPT = join(ROOT, 'dist/sample-app/main.js');
const AGENT_SCRIPT = join(ROOT, 'dist/test/support/consul-agent-main.js');
const MEMBERS = [
  { name: 'member 1', httpPort: 3001, remotePort: 4001 },
  { name: 'member 2', httpPort: 3002, remotePort: 4002 },
  { name: 'member 3', httpPort: 3003, remotePort: 4003 },
];
const CLUSTER_NAME = 'bank';
const READY_TIMEOUT_MS = 60_000;
/** A member gets this long to leave after SIGTERM (its drain timeout is 10 s) before SIGKILL. */
const MEMBER_STOP_MS = 20_000;
const SERVICE_STOP_MS = 5_000;
const HAS_SETPRIV = spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (line = '') => process.stdout.write(`${line}\n`);

/** @typedef {{ name: string, child: import('node:child_process').ChildProcess, log: string, exited: Promise<void>, exit: { code: number | null, signal: string | null } | undefined }} Proc */

/** @type {Proc[]} */
const procs = [];
let logDir = '';
let stopping = false;

/** Is `port` free on every interface (what the members' HTTP servers bind)? */
function portFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port free on 127.0.0.1 now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/**
 * Start `command` in its own process group, stdout and stderr to `<logDir>/<file>`; with a
 * parent-death signal (`deathSignal`) when setpriv is available.
 */
function start(name, command, args, { env = {}, file, deathSignal }) {
  if (stopping) throw new Error('stopping');
  const log = join(logDir, file);
  const fd = openSync(log, 'a');
  const [cmd, argv] = HAS_SETPRIV ? ['setpriv', ['--pdeathsig', deathSignal, '--', command, ...args]] : [command, args];
  const child = spawn(cmd, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  /** @type {Proc} */
  const proc = { name, child, log, exit: undefined, exited: Promise.resolve() };
  proc.exited = new Promise((resolve) => {
    child.once('error', (error) => {
      proc.exit ??= { code: null, signal: null };
      say(`[demo] ${name} could not start: ${error.message}`);
      resolve();
    });
    child.once('exit', (code, signal) => {
      proc.exit ??= { code, signal };
      if (!stopping) say(`[demo] ${name} (pid ${child.pid}) exited (${signal ? `signal ${signal}` : `code ${code}`}); log: ${log}`);
      resolve();
    });
  });
  procs.push(proc);
  return proc;
}

function signal(proc, sig) {
  if (proc.exit !== undefined || proc.child.pid === undefined) return;
  try {
    proc.child.kill(sig);
  } catch {
    // already gone
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
async function stopProc(proc, graceMs) {
  if (proc.exit !== undefined) return;
  signal(proc, 'SIGTERM');
  const timer = setTimeout(() => signal(proc, 'SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

/** Stops the members (gracefully, all at once), then the agent and Redis. */
async function stopAll() {
  const members = procs.filter((p) => p.name.startsWith('member'));
  const services = procs.filter((p) => !members.includes(p));
  const running = members.filter((p) => p.exit === undefined);
  if (running.length > 0) say(`[demo] stopping ${running.map((p) => `${p.name} (pid ${p.child.pid})`).join(', ')} with SIGTERM: they leave the cluster`);
  await Promise.all(members.map((p) => stopProc(p, MEMBER_STOP_MS)));
  for (const p of services.reverse()) await stopProc(p, SERVICE_STOP_MS);
}

/** Resolves when `check()` is true; rejects after `timeoutMs` or once `proc` exited. */
async function waitFor(what, check, timeoutMs, proc) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (stopping) throw new Error('stopping');
    if (proc?.exit !== undefined) throw new Error(`${proc.name} exited while waiting for ${what}; see ${proc.log}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s${proc ? `; see ${proc.log}` : ''}`);
    await sleep(200);
  }
}

/** One Redis PING over a raw socket. */
function redisPing(port) {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** GET `url`: its status (0 when it did not answer). */
async function status(url) {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}

function build() {
  say('[demo] dist/ is missing: npm run build');
  const result = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) throw new Error('npm run build failed');
}

async function main() {
  if (!existsSync(MEMBER_SCRIPT) || !existsSync(AGENT_SCRIPT)) build();
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0)
    throw new Error('redis-server is not on PATH: install Redis (e.g. `apt-get install redis-server` or `brew install redis`)');
  const busy = [];
  for (const m of MEMBERS) for (const port of [m.httpPort, m.remotePort]) if (!(await portFree(port))) busy.push(port);
  if (busy.length > 0) throw new Error(`port(s) ${busy.join(', ')} are in use: the demo's members need 3001-3003 and 4001-4003`);
  const redisPort = (await portFree(6379)) ? 6379 : await freePort();
  const consulPort = (await portFree(8500)) ? 8500 : await freePort();
  logDir = mkdtempSync(join(tmpdir(), 'nestjs-grains-demo-'));
  const redisDir = join(logDir, 'redis');
  mkdirSync(redisDir);

  say(`[demo] starting redis-server on 127.0.0.1:${redisPort} and the Consul test agent on 127.0.0.1:${consulPort}`);
  const redis = start(
    'redis-server',
    'redis-server',
    [
      ...['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      ...['--maxmemory-policy', 'noeviction', '--dir', redisDir, '--daemonize', 'no'],
    ],
    { file: 'redis.log', deathSignal: 'KILL' },
  );
  const agent = start('consul test agent', process.execPath, [AGENT_SCRIPT, '--port', String(consulPort), '--host', '127.0.0.1'], {
    file: 'consul-agent.log',
    deathSignal: 'KILL',
  });
  await waitFor('redis-server to answer PING', () => redisPing(redisPort), 10_000, redis);
  const consulUrl = `http://127.0.0.1:${consulPort}`;
  await waitFor('the Consul test agent to answer', async () => (await status(`${consulUrl}/v1/health/service/${CLUSTER_NAME}`)) === 200, 10_000, agent);

  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  say(`[demo] starting ${MEMBERS.length} members (CLUSTER_PROVIDER=consul CONSUL_URL=${consulUrl} IDENTITY_LOOKUP=redis REDIS_URL=${redisUrl})`);
  const members = MEMBERS.map((m, k) =>
    start(m.name, process.execPath, [MEMBER_SCRIPT], {
      env: {
        CLUSTER_NAME,
        HTTP_PORT: String(m.httpPort),
        REMOTE_PORT: String(m.remotePort),
        REMOTE_HOST: '127.0.0.1',
        CLUSTER_PROVIDER: 'consul',
        CONSUL_URL: consulUrl,
        IDENTITY_LOOKUP: 'redis',
        REDIS_URL: redisUrl,
      },
      file: `member-${k + 1}.log`,
      // NOTE: should this script die without stopping them, the members still leave gracefully.
      deathSignal: 'TERM',
    }),
  );
  await Promise.all(
    members.map((p, k) =>
      waitFor(`${p.name} /health 200`, async () => (await status(`http://127.0.0.1:${MEMBERS[k].httpPort}/health`)) === 200, READY_TIMEOUT_MS, p),
    ),
  );

  const pid = (p) => String(p.child.pid).padEnd(8);
  say();
  say('nestjs-grains demo: three members of the sample bank, membership through Consul, placement in Redis');
  say();
  say(`  redis-server        pid ${pid(redis)} ${redisUrl}`);
  say(`  consul test agent   pid ${pid(agent)} ${consulUrl}   (in memory, like \`consul agent -dev\`)`);
  MEMBERS.forEach((m, k) => say(`  ${m.name}            pid ${pid(members[k])} http://localhost:${m.httpPort}   remote 127.0.0.1:${m.remotePort}`));
  say(`  logs                ${logDir}/ (removed after a clean stop)`);
  say();
  say('Try, in another terminal:');
  say();
  say(`  curl -sw '\\n' -X POST localhost:3001/accounts/alice/deposit -H 'content-type: application/json' -d '{"amount":100}'`);
  say(`  curl -sw '\\n' localhost:3002/accounts/alice        # same account from another member: "member" says where it lives`);
  say(`  curl -sw '\\n' localhost:3003/cluster/members       # the three members, as Consul lists them`);
  say(`  curl -s '${consulUrl}/v1/health/service/${CLUSTER_NAME}?passing' | head -c 300; echo   # Consul's view`);
  say(`  kill -TERM ${members[1].child.pid}                      # member 2 leaves gracefully (drains, deregisters)`);
  say(`  curl -sw '\\n' localhost:3001/cluster/members       # now two members`);
  say(`  curl -sw '\\n' localhost:3003/accounts/alice        # still 100, from Redis, wherever alice lives now`);
  say();
  say('Ctrl-C stops everything (the members first, with SIGTERM, so they leave gracefully).');
}

async function shutdown(exitCode) {
  if (stopping) {
    say('[demo] second signal: killing what is left');
    for (const p of procs) signal(p, 'SIGKILL');
    process.exit(1);
  }
  stopping = true;
  await stopAll();
  const clean = procs.every((p) => p.exit !== undefined) && exitCode === 0;
  if (logDir !== '') {
    if (clean) rmSync(logDir, { recursive: true, force: true });
    else say(`[demo] logs kept in ${logDir}`);
  }
  say('[demo] stopped');
  process.exit(exitCode);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
process.on('SIGHUP', () => void shutdown(0));
// Synchronous last resort: nothing outlives this script.
process.on('exit', () => {
  for (const p of procs) signal(p, 'SIGKILL');
});

main().catch((error) => {
  if (stopping) return; // a signal arrived during the start: its shutdown is under way
  say(`[demo] ${error instanceof Error ? error.message : String(error)}`);
  void shutdown(1);
});
