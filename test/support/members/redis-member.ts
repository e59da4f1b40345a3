/**
 * A cluster member process using the REDIS identity lookup, for the multi-process fault
 * tests (test/e2e/redis-faults.spec.ts) and the rolling-change tests through Consul
 * (test/e2e/consul-cluster.spec.ts). Runs from the tsc build
 * (`dist/test/support/members/redis-member.js`), spawned by `test/support/member-harness.ts`
 * (pass it as `script`: REDIS_MEMBER_SCRIPT in the spec).
 *
 * It hosts one kind, `list`: a list-append grain whose state is written through to Redis on
 * every append, fenced by the activation's epoch (see `ListGrain`), in one of two versions
 * (GRAIN_VERSION, for rolling upgrades): v2 adds the method `size` and a `version: 2` field
 * in every reply; the stored state is the same.
 *
 * Configuration (environment):
 *   CLUSTER_NAME        the cluster's name (default `e2e`)
 *   HOST / PORT         where the remote serves (PORT required unless CLIENT_ONLY=1)
 *   CLIENT_ONLY=1       serve nothing, host no kind, only call (a gateway)
 *   STATIC_MEMBERS      comma-separated `host:port` of the hosting members (StaticProvider);
 *                       ignored when CONSUL_URL is set
 *   CONSUL_URL          use a ConsulProvider on this agent (ttl `2s`, watchWait `5s`) instead
 *                       of the StaticProvider
 *   CONSUL_TOKEN        its ACL token (default none)
 *   CONSUL_DEREGISTER_CRITICAL_AFTER  its deregisterCriticalAfter (default the provider's)
 *   EXPECT_MEMBERS      hosting members to know before "ready" (default: STATIC_MEMBERS count;
 *                       with CONSUL_URL: 1, this member or, client only, one hosting member)
 *   GRAIN_VERSION       `1` (default) or `2`: the version of the `list` grain hosted
 *   PROTOCOL_MIN/MAX    the protocol range spoken (both, or neither: this build's)
 *   REDIS_URL           the Redis of the identity lookup (and lease), and by default of the
 *                       grain's data too (may be a TCP proxy's URL: the member is then cut off
 *                       from Redis as a whole)
 *   DATA_REDIS_URL      the Redis of the grain's data when not REDIS_URL (e.g. the same server
 *                       directly, while the lookup goes through a proxy)
 *   LEASE               `fast` (default) or `safe`
 *   PLACEMENT           the lookup's placement (`prefer-local`, `random`, `rendezvous`, `least-loaded`; default the lookup's)
 *   GOSSIP=off, GOSSIP_INTERVAL_MS, HEARTBEAT_INTERVAL_MS, SUSPECT_AFTER_MS   gossip options (control.ts)
 *   COMMAND_TIMEOUT_MS  the lookup's commandTimeoutMs (default: the lookup's), also the grain's
 *                       own Redis command timeout (default 1000)
 *   REQUEST_TIMEOUT_MS  default call deadline
 *   PROBE_INTERVAL_MS   StaticProvider probe interval (default 100)
 *   STORE_FENCE         `load` (default): the grain's store raises its epoch on activation and
 *                       refuses older activations' loads and writes (the README's pattern);
 *                       `write`: it fences writes only and records loads without raising the
 *                       epoch, so a stale write after a newer load lands (for the checker's
 *                       self-validation, which must see forks on a broken build)
 *   BROKEN              deliberately broken builds, for the checker's self-validation:
 *     no-fencing             the lookup's turn guard always allows: turns start and replies
 *                            are delivered whatever the lease says;
 *     unconditional-renewal  the lease renewer's compare-and-extend is replaced by an
 *                            unconditional `SET lease <incarnation> PX leaseMs`, so a lapsed
 *                            lease is revived by the next renewal.
 *
 * Output: stdout carries JSON lines only (written synchronously: stdout is a pipe) —
 *   {"event":"ready","memberId","incarnation","address","members":[...],"broken","grainVersion"}
 *   {"event":"activate","identity","activationId","epoch","generation","member","loaded","storedEpoch","version"}
 *       once per activation of the `list` grain, after it loaded its state (`version`: the
 *       grain version);
 *   {"event":"turn","identity","activationId","start","end","member","op","method","ok","epoch","generation"}
 *       per grain method call (a turn), start/end from `process.hrtime.bigint()` as decimal
 *       strings (CLOCK_MONOTONIC: comparable across the processes of the host); `op` is the
 *       caller's operation id (the appended element for an append);
 *   {"event":"result","id",...}  per command.
 * stderr carries the runtime's log lines, `[nestjs-grains] <level>: <message>`.
 *
 * Replies of the `list` grain: {member, activation, epoch, generation, length, list? (read only),
 * version? (2 on a v2 grain; absent on v1)}.
 *
 * Control (stdin, one JSON object per line, each with a numeric `id` echoed in its result):
 *   the default member's commands (see member.ts): `call`, `batch`, `stats` (its value also
 *   has `generation`, `broken` and `grainVersion`; `stats.fenced` counts fenced activations),
 *   `shutdown`; and
 *   {"cmd":"ops","ops":[{op:"append",identity,element,timeoutMs?} | {op:"read",identity,opId,holdMs?,timeoutMs?}
 *                      | {op:"leave",identity,opId,timeoutMs?} (the grain deactivates after this turn)
 *                      | {op:"size",identity,opId,timeoutMs?} (v2 only: a v1 grain answers it with an
 *                        error, the method being unknown), ...],
 *    "sequential"?: boolean}
 *       runs the operations (all at once, or one after another) and answers
 *       {"event":"result","id","ok":true,"value":[{ok,value|error,invokedAt,settledAt}, ...]}
 *       with invokedAt/settledAt = process.hrtime.bigint() (decimal strings) just before the
 *       call was made and just after its outcome arrived.
 * When stdin ends (the parent is gone) the member exits, so it never outlives its test.
 */
import { Redis } from 'ioredis';
import {
  Cluster,
  type ClusterProvider,
  ConsulProvider,
  type Duration,
  type GrainContext,
  type Placement,
  RedisIdentityLookup,
  type RedisIdentityLookupOptions,
  type RemoteOptions,
  StaticProvider,
  type TurnGuard,
} from 'nestjs-grains';
// NOTE: the broken renewal swaps the lookup's renew script; this is the same module instance
// the package entry point loads (dist/lib/...).
import { RedisScript, scripts } from '../../../lib/cluster/identity/redis/redis-scripts.js';
import { type Command, describeError, emit, env, gossipEnv, intEnv, serveMember, staticMembersEnv, stderrLogger as logger } from './control.js';

const hrtime = () => process.hrtime.bigint().toString();

const clusterName = env('CLUSTER_NAME') ?? 'e2e';
const clientOnly = env('CLIENT_ONLY') === '1';
const host = env('HOST') ?? '127.0.0.1';
const port = intEnv('PORT');
if (!clientOnly && port === undefined) throw new Error('PORT is required (or CLIENT_ONLY=1)');
const redisUrl = env('REDIS_URL');
if (redisUrl === undefined) throw new Error('REDIS_URL is required');
const consulUrl = env('CONSUL_URL');
const staticMembers = consulUrl === undefined ? staticMembersEnv() : [];
const expectMembers = intEnv('EXPECT_MEMBERS') ?? (consulUrl === undefined ? staticMembers.length : 1);
const grainVersion = intEnv('GRAIN_VERSION') ?? 1;
if (grainVersion !== 1 && grainVersion !== 2) throw new Error(`GRAIN_VERSION must be 1 or 2, got "${grainVersion}"`);
const protocolMin = intEnv('PROTOCOL_MIN');
const protocolMax = intEnv('PROTOCOL_MAX');
if ((protocolMin === undefined) !== (protocolMax === undefined)) throw new Error('PROTOCOL_MIN and PROTOCOL_MAX go together');
const lease = env('LEASE') ?? 'fast';
if (lease !== 'fast' && lease !== 'safe') throw new Error(`LEASE must be fast or safe, got "${lease}"`);
const commandTimeoutMs = intEnv('COMMAND_TIMEOUT_MS');
const requestTimeout = intEnv('REQUEST_TIMEOUT_MS');
const broken = env('BROKEN');
if (broken !== undefined && broken !== 'no-fencing' && broken !== 'unconditional-renewal')
  throw new Error(`BROKEN must be no-fencing or unconditional-renewal, got "${broken}"`);

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
/** What the store accepted for one identity, in Redis' own order: `load|write <epoch> <activation>`. */
const historyKey = (identity: string) => `${keyTag}:testhist:${identity}`;
const fenceOnLoad = (env('STORE_FENCE') ?? 'load') === 'load';

/**
 * The grain's fenced write: refuse when the lookup's generation is not the activation's (Redis
 * lost its data since, the lists with it), or when a newer activation (a higher epoch) has
 * loaded or written; otherwise store the whole list with the epoch, and record the write in
 * the identity's history.
 * KEYS[1] data key, KEYS[2] generation key, KEYS[3] history key; ARGV[1] epoch, ARGV[2]
 * generation, ARGV[3] list (JSON), ARGV[4] activation id
 */
const WRITE = `
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 'GEN' end
local stored = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if stored > tonumber(ARGV[1]) then return 'STALE:' .. stored end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'list', ARGV[3])
redis.call('RPUSH', KEYS[3], 'write ' .. ARGV[1] .. ' ' .. ARGV[4])
return 'OK'
`;

/**
 * The grain's fenced load, on activation (the pattern the README teaches): refuse when a newer
 * activation has loaded or written; otherwise raise the stored epoch to this one's, record the
 * load, and return the list. So an older activation's write can never land after it.
 * (ARGV[4] '0', STORE_FENCE=write: record and read only.)
 * KEYS as WRITE; ARGV[1] epoch, ARGV[2] generation, ARGV[3] activation id, ARGV[4] '1' to fence
 * Returns {'GEN'} | {'STALE', stored} | {'OK', list or false, stored epoch before}
 */
const LOAD = `
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return {'GEN'} end
local stored = redis.call('HGET', KEYS[1], 'epoch')
if ARGV[4] == '1' then
  if stored and tonumber(stored) > tonumber(ARGV[1]) then return {'STALE', stored} end
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1])
end
redis.call('RPUSH', KEYS[3], 'load ' .. ARGV[1] .. ' ' .. ARGV[3])
return {'OK', redis.call('HGET', KEYS[1], 'list'), stored or false}
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
data.defineCommand('listWrite', { numberOfKeys: 3, lua: WRITE });
data.defineCommand('listLoad', { numberOfKeys: 3, lua: LOAD });
type DataRedis = Redis & {
  listWrite(key: string, gen: string, history: string, epoch: number, generation: string, list: string, activation: string): Promise<string>;
  listLoad(key: string, gen: string, history: string, epoch: number, generation: string, activation: string, fence: '0' | '1'): Promise<Array<string | null>>;
};

function redisOptionsFromUrl(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 6379) };
}

const placement = env('PLACEMENT') as Placement | undefined;
const lookup = new TestLookup({
  url: redisUrl,
  lease,
  ...(commandTimeoutMs !== undefined && { commandTimeoutMs }),
  ...(placement !== undefined && { placement }),
});

interface ListReply {
  member: string;
  activation: string;
  epoch: number;
  generation: string;
  length: number;
  list?: string[];
  /** v2 only. */
  version?: 2;
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
    const { identity, epoch, activationId } = this.ctx;
    const [status, list, storedEpoch] = await (data as DataRedis).listLoad(
      dataKey(identity),
      generationKey,
      historyKey(identity),
      epoch,
      this.generation,
      activationId,
      fenceOnLoad ? '1' : '0',
    );
    if (status !== 'OK') throw Object.assign(new Error(`load refused: ${String(status)} ${String(list)} (epoch ${epoch})`), { code: 'LOAD_REFUSED' });
    this.list = list == null ? [] : (JSON.parse(list) as string[]);
    emit({
      event: 'activate',
      identity,
      activationId,
      epoch,
      generation: this.generation,
      member: this.ctx.memberId,
      loaded: this.list.length,
      storedEpoch: storedEpoch == null ? null : Number(storedEpoch),
      version: grainVersion,
    });
  }

  async append(element: string): Promise<ListReply> {
    return this.turn(element, 'append', async () => {
      const next = [...this.list, element];
      const { identity, epoch, activationId } = this.ctx;
      const written = await (data as DataRedis).listWrite(
        dataKey(identity),
        generationKey,
        historyKey(identity),
        epoch,
        this.generation,
        JSON.stringify(next),
        activationId,
      );
      if (written !== 'OK') throw Object.assign(new Error(`write refused: ${written} (epoch ${this.ctx.epoch})`), { code: 'WRITE_REFUSED' });
      this.list = next;
      return this.reply(false);
    });
  }

  /** Deactivate after this turn (the entry is released once the activation ended). */
  async leave(opId: string): Promise<ListReply> {
    return this.turn(opId, 'leave', async () => {
      this.ctx.deactivate();
      return this.reply(false);
    });
  }

  async read(opId: string, holdMs = 0): Promise<ListReply> {
    return this.turn(opId, 'read', async () => {
      if (holdMs > 0) await new Promise((resolve) => setTimeout(resolve, holdMs));
      return this.reply(true);
    });
  }

  protected reply(withList: boolean): ListReply {
    return {
      member: this.ctx.memberId,
      activation: this.ctx.activationId,
      epoch: this.ctx.epoch,
      generation: this.generation,
      length: this.list.length,
      ...(withList && { list: [...this.list] }),
    };
  }

  protected async turn(op: string, method: string, body: () => Promise<ListReply>): Promise<ListReply> {
    const start = hrtime();
    let ok = false;
    try {
      const reply = await body();
      ok = true;
      return reply;
    } finally {
      emit({
        event: 'turn',
        identity: this.ctx.identity,
        activationId: this.ctx.activationId,
        start,
        end: hrtime(),
        member: this.ctx.memberId,
        op,
        method,
        ok,
        epoch: this.ctx.epoch,
        generation: this.generation,
      });
    }
  }
}

/**
 * Version 2 of kind `list`, for rolling upgrades: the same state and methods, plus `size`, and
 * `version: 2` in every reply (a v1 caller that ignores it is not disturbed).
 */
class ListGrainV2 extends ListGrain {
  /** The list's length (a turn like the others, logged with `op` = opId). */
  async size(opId: string): Promise<ListReply> {
    return this.turn(opId, 'size', async () => this.reply(false));
  }

  protected override reply(withList: boolean): ListReply {
    return { ...super.reply(withList), version: 2 };
  }
}

const consulToken = env('CONSUL_TOKEN');
const deregisterCriticalAfter = env('CONSUL_DEREGISTER_CRITICAL_AFTER');
const provider: ClusterProvider =
  consulUrl === undefined
    ? new StaticProvider({ members: staticMembers, probeInterval: intEnv('PROBE_INTERVAL_MS') ?? 100 })
    : new ConsulProvider({
        url: consulUrl,
        ttl: '2s',
        watchWait: '5s',
        ...(consulToken !== undefined && { token: consulToken }),
        // NOTE: a malformed value is the provider's to refuse (GrainConfigurationError at construction).
        ...(deregisterCriticalAfter !== undefined && { deregisterCriticalAfter: deregisterCriticalAfter as Duration }),
      });

const remote: RemoteOptions = {
  ...(!clientOnly && { host, port: port! }),
  ...(protocolMin !== undefined && protocolMax !== undefined && { protocol: { min: protocolMin, max: protocolMax } }),
};

const cluster = new Cluster({
  clusterName,
  logger,
  provider,
  identityLookup: lookup,
  remote,
  gossip: gossipEnv(),
  ...(requestTimeout !== undefined && { requestTimeout }),
});
if (!clientOnly) {
  const Grain = grainVersion === 2 ? ListGrainV2 : ListGrain;
  cluster.registerKind({ name: 'list', grainClass: Grain, create: (ctx) => new Grain(ctx) });
}

// Control channel (test/support/members/control.ts) plus `ops` ------------------------------

type OpSpec =
  | { op: 'append'; identity: string; element: string; timeoutMs?: number }
  | { op: 'read'; identity: string; opId: string; holdMs?: number; timeoutMs?: number }
  | { op: 'leave'; identity: string; opId: string; timeoutMs?: number }
  | { op: 'size'; identity: string; opId: string; timeoutMs?: number };

/** The grain method and arguments of an operation. */
function methodOf(op: OpSpec): { method: string; args: unknown[] } {
  switch (op.op) {
    case 'append':
      return { method: 'append', args: [op.element] };
    case 'read':
      return { method: 'read', args: [op.opId, op.holdMs ?? 0] };
    case 'leave':
      return { method: 'leave', args: [op.opId] };
    case 'size':
      return { method: 'size', args: [op.opId] };
  }
}

async function runOp(op: OpSpec): Promise<Record<string, unknown>> {
  const options = op.timeoutMs === undefined ? undefined : { timeout: op.timeoutMs };
  const invokedAt = hrtime();
  try {
    const { method, args } = methodOf(op);
    const value = await cluster.request('list', op.identity, method, args, options);
    return { ok: true, value, invokedAt, settledAt: hrtime() };
  } catch (error) {
    return { ok: false, error: describeError(error), invokedAt, settledAt: hrtime() };
  }
}

await serveMember({
  cluster,
  expectMembers,
  forceExitMs: 3_000,
  beforeStart: async () => {
    await data.connect();
  },
  afterStop: () => data.disconnect(),
  extra: () => ({ generation: lookup.currentGeneration, broken: broken ?? null, grainVersion }),
  commands: {
    ops: async (command: Command) => {
      const ops = (command['ops'] ?? []) as OpSpec[];
      if (command['sequential'] !== true) return Promise.all(ops.map((op) => runOp(op)));
      const value: Array<Record<string, unknown>> = [];
      for (const op of ops) value.push(await runOp(op));
      return value;
    },
  },
});
