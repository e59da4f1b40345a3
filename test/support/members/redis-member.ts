/**
 * A cluster member process using the REDIS identity lookup, for the multi-process fault
 * tests (test/e2e/redis-faults.spec.ts). Runs from the tsc build
 * (`dist/test/support/members/redis-member.js`), spawned by `test/support/member-harness.ts`
 * (pass it as `script`: REDIS_MEMBER_SCRIPT in the spec).
 *
 * It hosts one kind, `list`: a list-append grain whose state is written through to Redis on
 * every append, fenced by the activation's epoch (see `ListGrain`).
 *
 * Configuration (environment):
 *   CLUSTER_NAME        the cluster's name (default `e2e`)
 *   HOST / PORT         where the remote serves (PORT required)
 *   STATIC_MEMBERS      comma-separated `host:port` of the hosting members (StaticProvider)
 *   EXPECT_MEMBERS      hosting members to know before "ready" (default: STATIC_MEMBERS count)
 *   REDIS_URL           the Redis of the identity lookup (and lease), and by default of the
 *                       grain's data too (may be a TCP proxy's URL: the member is then cut off
 *                       from Redis as a whole)
 *   DATA_REDIS_URL      the Redis of the grain's data when not REDIS_URL (e.g. the same server
 *                       directly, while the lookup goes through a proxy)
 *   LEASE               `fast` (default) or `safe`
 *   COMMAND_TIMEOUT_MS  the lookup's commandTimeoutMs (default: the lookup's), also the grain's
 *                       own Redis command timeout (default 1000)
 *   REQUEST_TIMEOUT_MS  default call deadline
 *   PROBE_INTERVAL_MS   StaticProvider probe interval (default 100)
 *   BROKEN              deliberately broken builds, for the checker's self-validation:
 *     no-fencing             the lookup's turn guard always allows: turns start and replies
 *                            are delivered whatever the lease says;
 *     unconditional-renewal  the lease renewer's compare-and-extend is replaced by an
 *                            unconditional `SET lease <incarnation> PX leaseMs`, so a lapsed
 *                            lease is revived by the next renewal.
 *
 * Output: stdout carries JSON lines only (written synchronously: stdout is a pipe) —
 *   {"event":"ready","memberId","incarnation","address","members":[...],"broken"}
 *   {"event":"activate","identity","activationId","epoch","generation","member","loaded","storedEpoch"}
 *       once per activation of the `list` grain, after it loaded its state;
 *   {"event":"turn","identity","activationId","start","end","member","op","method","ok","epoch","generation"}
 *       per grain method call (a turn), start/end from `process.hrtime.bigint()` as decimal
 *       strings (CLOCK_MONOTONIC: comparable across the processes of the host); `op` is the
 *       caller's operation id (the appended element for an append);
 *   {"event":"result","id",...}  per command.
 * stderr carries the runtime's log lines, `[nestjs-grains] <level>: <message>`.
 *
 * Control (stdin, one JSON object per line, each with a numeric `id` echoed in its result):
 *   the default member's commands (see member.ts): `call`, `batch`, `stats` (its value also
 *   has `generation` and `broken`; `stats.fenced` counts fenced activations), `shutdown`;
 *   and
 *   {"cmd":"ops","ops":[{op:"append",identity,element,timeoutMs?} | {op:"read",identity,opId,holdMs?,timeoutMs?}, ...],
 *    "sequential"?: boolean}
 *       runs the operations (all at once, or one after another) and answers
 *       {"event":"result","id","ok":true,"value":[{ok,value|error,invokedAt,settledAt}, ...]}
 *       with invokedAt/settledAt = process.hrtime.bigint() (decimal strings) just before the
 *       call was made and just after its outcome arrived.
 * When stdin ends (the parent is gone) the member exits, so it never outlives its test.
 */
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { Cluster, type ClusterLogger, type GrainContext, RedisIdentityLookup, type RedisIdentityLookupOptions, StaticProvider, type TurnGuard } from 'nestjs-grains';
// NOTE: the broken renewal swaps the lookup's renew script; this is the same module instance
// the package entry point loads (dist/lib/...).
import { RedisScript, scripts } from '../../../lib/cluster/identity/redis/redis-scripts.js';

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function env(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}

function intEnv(name: string): number | undefined {
  const value = env(name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got "${value}"`);
  return n;
}

const hrtime = () => process.hrtime.bigint().toString();

const logger: ClusterLogger = {
  log: (message) => process.stderr.write(`[nestjs-grains] log: ${message}\n`),
  warn: (message) => process.stderr.write(`[nestjs-grains] warn: ${message}\n`),
  error: (message, stack) => process.stderr.write(`[nestjs-grains] error: ${message}${stack ? `\n${stack}` : ''}\n`),
};

const clusterName = env('CLUSTER_NAME') ?? 'e2e';
const host = env('HOST') ?? '127.0.0.1';
const port = intEnv('PORT');
if (port === undefined) throw new Error('PORT is required');
const redisUrl = env('REDIS_URL');
if (redisUrl === undefined) throw new Error('REDIS_URL is required');
const staticMembers = (env('STATIC_MEMBERS') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
const expectMembers = intEnv('EXPECT_MEMBERS') ?? staticMembers.length;
const lease = env('LEASE') ?? 'fast';
if (lease !== 'fast' && lease !== 'safe') throw new Error(`LEASE must be fast or safe, got "${lease}"`);
const commandTimeoutMs = intEnv('COMMAND_TIMEOUT_MS');
const requestTimeout = intEnv('REQUEST_TIMEOUT_MS');
const broken = env('BROKEN');
if (broken !== undefined && broken !== 'no-fencing' && broken !== 'unconditional-renewal') throw new Error(`BROKEN must be no-fencing or unconditional-renewal, got "${broken}"`);

// Broken builds ------------------------------------------------------------------------------

const ALWAYS: TurnGuard = { canStart: () => true, canSettle: () => true };

/** The lookup, with the generation it holds visible (the grain fences its writes by it). */
class TestLookup extends RedisIdentityLookup {
  constructor(options: RedisIdentityLookupOptions) {
    super(options);
    // BROKEN=no-fencing: turns start, and replies are delivered, whatever the lease says.
    if (broken === 'no-fencing') (this as { turnGuard: TurnGuard }).turnGuard = ALWAYS;
  }

  /** The Redis generation this member's claims are made under. */
  get currentGeneration(): string {
    return (this as unknown as { generation: string }).generation;
  }
}

if (broken === 'unconditional-renewal') {
  // BROKEN=unconditional-renewal: the renewer SETs the lease (PX leaseMs) instead of
  // extending it only while it still holds this incarnation — a lapsed lease comes back.
  scripts.renew = new RedisScript(
    'renew',
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'GEN' end\nredis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])\nreturn 1\n",
  );
}

// The grain ------------------------------------------------------------------------------------

const keyTag = `{grains:${clusterName}}`;
const generationKey = `${keyTag}:gen`;
const dataKey = (identity: string) => `${keyTag}:testlist:${identity}`;

/**
 * The grain's fenced write: refuse when the lookup's generation is not the activation's (Redis
 * lost its data since: the epochs restarted), or when a newer activation (a higher epoch)
 * has written; otherwise store the whole list with the epoch.
 * KEYS[1] data key, KEYS[2] generation key; ARGV[1] epoch, ARGV[2] generation, ARGV[3] list (JSON)
 */
const WRITE = `
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 'GEN' end
local stored = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if stored > tonumber(ARGV[1]) then return 'STALE:' .. stored end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'list', ARGV[3])
return 'OK'
`;

const data = new Redis({
  ...redisOptionsFromUrl(env('DATA_REDIS_URL') ?? redisUrl),
  // NOTE: like the lookup: nothing waits in an offline queue or is resent after a reconnect.
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  commandTimeout: commandTimeoutMs ?? 1_000,
  lazyConnect: true,
});
data.on('error', () => {});
data.defineCommand('listWrite', { numberOfKeys: 2, lua: WRITE });
type DataRedis = Redis & { listWrite(key: string, gen: string, epoch: number, generation: string, list: string): Promise<string> };

function redisOptionsFromUrl(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 6379) };
}

const lookup = new TestLookup({ url: redisUrl, lease, ...(commandTimeoutMs !== undefined && { commandTimeoutMs }) });

interface ListReply {
  member: string;
  activation: string;
  epoch: number;
  generation: string;
  length: number;
  list?: string[];
}

/**
 * Kind `list`: an append-only list of unique strings. `append` writes the whole new list
 * through to Redis, fenced by (generation, epoch), before it changes its memory; `read`
 * answers from memory. Every call logs one `turn` line (start and end of the turn).
 */
class ListGrain {
  private list: string[] = [];
  private readonly generation: string;

  constructor(private readonly ctx: GrainContext) {
    // NOTE: constructed synchronously right after the claim, under the generation it was made in.
    this.generation = lookup.currentGeneration;
  }

  async onGrainActivate(): Promise<void> {
    const [list, epoch] = await data.hmget(dataKey(this.ctx.identity), 'list', 'epoch');
    this.list = list === null ? [] : (JSON.parse(list) as string[]);
    emit({ event: 'activate', identity: this.ctx.identity, activationId: this.ctx.activationId, epoch: this.ctx.epoch, generation: this.generation, member: this.ctx.memberId, loaded: this.list.length, storedEpoch: epoch === null ? null : Number(epoch) });
  }

  async append(element: string): Promise<ListReply> {
    return this.turn(element, 'append', async () => {
      const next = [...this.list, element];
      const written = await (data as DataRedis).listWrite(dataKey(this.ctx.identity), generationKey, this.ctx.epoch, this.generation, JSON.stringify(next));
      if (written !== 'OK') throw Object.assign(new Error(`write refused: ${written} (epoch ${this.ctx.epoch})`), { code: 'WRITE_REFUSED' });
      this.list = next;
      return this.reply(false);
    });
  }

  async read(opId: string, holdMs = 0): Promise<ListReply> {
    return this.turn(opId, 'read', async () => {
      if (holdMs > 0) await new Promise((resolve) => setTimeout(resolve, holdMs));
      return this.reply(true);
    });
  }

  private reply(withList: boolean): ListReply {
    return { member: this.ctx.memberId, activation: this.ctx.activationId, epoch: this.ctx.epoch, generation: this.generation, length: this.list.length, ...(withList && { list: [...this.list] }) };
  }

  private async turn(op: string, method: string, body: () => Promise<ListReply>): Promise<ListReply> {
    const start = hrtime();
    let ok = false;
    try {
      const reply = await body();
      ok = true;
      return reply;
    } finally {
      emit({ event: 'turn', identity: this.ctx.identity, activationId: this.ctx.activationId, start, end: hrtime(), member: this.ctx.memberId, op, method, ok, epoch: this.ctx.epoch, generation: this.generation });
    }
  }
}

const cluster = new Cluster({
  clusterName,
  logger,
  provider: new StaticProvider({ members: staticMembers, probeIntervalMs: intEnv('PROBE_INTERVAL_MS') ?? 100 }),
  identityLookup: lookup,
  remote: { host, port },
  ...(requestTimeout !== undefined && { requestTimeout }),
});
cluster.registerKind({ name: 'list', grainClass: ListGrain, create: (ctx) => new ListGrain(ctx) });

// Control channel ---------------------------------------------------------------------------

interface CallSpec {
  kind: string;
  identity: string;
  method: string;
  args?: unknown[];
  timeoutMs?: number;
}

type OpSpec = { op: 'append'; identity: string; element: string; timeoutMs?: number } | { op: 'read'; identity: string; opId: string; holdMs?: number; timeoutMs?: number };

/** An error as plain data: its name, code, message and the typed fields callers act on. */
function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { name: 'NonError', message: String(error) };
  const out: Record<string, unknown> = { name: error.name, message: error.message };
  for (const [key, value] of Object.entries(error)) {
    if (value === undefined || typeof value === 'function') continue;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) continue;
    out[key] = value;
  }
  return out;
}

async function runCall(spec: CallSpec): Promise<Record<string, unknown>> {
  const started = performance.now();
  try {
    const value = await cluster.request(spec.kind, spec.identity, spec.method, spec.args ?? [], spec.timeoutMs === undefined ? undefined : { timeout: spec.timeoutMs });
    return { ok: true, value: value ?? null, elapsedMs: Math.round(performance.now() - started) };
  } catch (error) {
    return { ok: false, error: describeError(error), elapsedMs: Math.round(performance.now() - started) };
  }
}

async function runOp(op: OpSpec): Promise<Record<string, unknown>> {
  const options = op.timeoutMs === undefined ? undefined : { timeout: op.timeoutMs };
  const invokedAt = hrtime();
  try {
    const value =
      op.op === 'append'
        ? await cluster.request('list', op.identity, 'append', [op.element], options)
        : await cluster.request('list', op.identity, 'read', [op.opId, op.holdMs ?? 0], options);
    return { ok: true, value, invokedAt, settledAt: hrtime() };
  } catch (error) {
    return { ok: false, error: describeError(error), invokedAt, settledAt: hrtime() };
  }
}

let stopping: Promise<void> | undefined;
function stop(code: number): Promise<void> {
  stopping ??= (async () => {
    const force = setTimeout(() => process.exit(code), 3_000);
    force.unref();
    try {
      await cluster.shutdown();
    } catch (error) {
      logger.error(`shutdown failed: ${(error as Error).message}`);
    }
    data.disconnect();
    process.exit(code);
  })();
  return stopping;
}

async function handle(line: string): Promise<void> {
  if (line.trim() === '') return;
  let command: { id?: unknown; cmd?: unknown } & Record<string, unknown>;
  try {
    command = JSON.parse(line) as typeof command;
  } catch {
    emit({ event: 'result', id: null, ok: false, error: { name: 'CommandError', message: `not JSON: ${line.slice(0, 200)}` } });
    return;
  }
  const id = command.id;
  switch (command.cmd) {
    case 'call':
      emit({ event: 'result', id, ...(await runCall(command as unknown as CallSpec)) });
      return;
    case 'batch': {
      const calls = (command['calls'] ?? []) as CallSpec[];
      emit({ event: 'result', id, ok: true, value: await Promise.all(calls.map((c) => runCall(c))) });
      return;
    }
    case 'ops': {
      const ops = (command['ops'] ?? []) as OpSpec[];
      let value: Array<Record<string, unknown>>;
      if (command['sequential'] === true) {
        value = [];
        for (const op of ops) value.push(await runOp(op));
      } else {
        value = await Promise.all(ops.map((op) => runOp(op)));
      }
      emit({ event: 'result', id, ok: true, value });
      return;
    }
    case 'stats':
      emit({
        event: 'result',
        id,
        ok: true,
        value: { memberId: cluster.memberId, incarnation: cluster.incarnation, address: cluster.remoteAddress, members: cluster.members(), stats: cluster.stats(), generation: lookup.currentGeneration, broken: broken ?? null },
      });
      return;
    case 'shutdown':
      emit({ event: 'result', id, ok: true, value: null });
      await stop(0);
      return;
    default:
      emit({ event: 'result', id, ok: false, error: { name: 'CommandError', message: `unknown command ${String(command.cmd)}` } });
  }
}

let markStarted!: () => void;
const started = new Promise<void>((resolve) => (markStarted = resolve));
const input = createInterface({ input: process.stdin });
// NOTE: commands wait for the member to start (they may arrive before it has).
input.on('line', (line) => void started.then(() => handle(line)));
// NOTE: stdin ends when the parent goes away (even if it was killed): never outlive it.
input.on('close', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));

await data.connect();
await cluster.start();
markStarted();
const hosting = () => cluster.members().filter((m) => m.address !== '').length;
while (hosting() < expectMembers) await new Promise((resolve) => setTimeout(resolve, 20));
emit({ event: 'ready', memberId: cluster.memberId, incarnation: cluster.incarnation, address: cluster.remoteAddress, kinds: cluster.kindNames, members: cluster.members(), broken: broken ?? null });
