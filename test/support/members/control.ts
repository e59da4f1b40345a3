/**
 * What every test member process shares: its environment helpers, stderr logger, and the
 * control channel the harness speaks (test/support/member-harness.ts): JSON commands on
 * stdin (`call`, `batch`, `stats`, `stall`, `gossip`, `gossipSet`, `shutdown`, plus a member's own), one JSON `result` line
 * each on stdout, `{"event":"ready"}` once every expected hosting member is known, and a
 * graceful exit on SIGTERM/SIGINT or when stdin closes (the parent is gone).
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import type { Cluster, ClusterLogger, GossipOptions, GossipValue } from 'nestjs-grains';

export function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** An environment variable; empty counts as unset. */
export function env(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}

export function intEnv(name: string): number | undefined {
  const value = env(name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got "${value}"`);
  return n;
}

/** STATIC_MEMBERS as a list. */
export function staticMembersEnv(): string[] {
  return (env('STATIC_MEMBERS') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Runtime logs go to stderr; stdout carries JSON only. */
/**
 * `ClusterOptions.gossip` from the environment: GOSSIP=off turns it off; GOSSIP_INTERVAL_MS,
 * HEARTBEAT_INTERVAL_MS and SUSPECT_AFTER_MS set its timings (default: the library's).
 */
export function gossipEnv(): GossipOptions {
  const interval = intEnv('GOSSIP_INTERVAL_MS');
  const heartbeat = intEnv('HEARTBEAT_INTERVAL_MS');
  const suspect = intEnv('SUSPECT_AFTER_MS');
  return {
    ...(env('GOSSIP') === 'off' && { enabled: false }),
    ...(interval !== undefined && { interval }),
    ...(heartbeat !== undefined && { heartbeatInterval: heartbeat }),
    ...(suspect !== undefined && { suspectAfter: suspect }),
  };
}

export const stderrLogger: ClusterLogger = {
  log: (message) => process.stderr.write(`[nestjs-grains] log: ${message}\n`),
  warn: (message) => process.stderr.write(`[nestjs-grains] warn: ${message}\n`),
  error: (message, stack) => process.stderr.write(`[nestjs-grains] error: ${message}${stack ? `\n${stack}` : ''}\n`),
};

/** An error as plain data: its name, code, message and the typed fields callers act on. */
export function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { name: 'NonError', message: String(error) };
  const out: Record<string, unknown> = { name: error.name, message: error.message };
  for (const [key, value] of Object.entries(error)) {
    if (value === undefined || typeof value === 'function') continue;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) continue;
    out[key] = value;
  }
  return out;
}

interface CallSpec {
  kind: string;
  identity: string;
  method: string;
  args?: unknown[];
  timeoutMs?: number;
}

export type Command = { id?: unknown; cmd?: unknown } & Record<string, unknown>;

export interface ControlOptions {
  cluster: Cluster;
  /** Hosting members to wait for before `ready`. */
  expectMembers: number;
  /** A member's own commands, answered as `{ ok: true, value }`. */
  commands?: Record<string, (command: Command) => Promise<unknown>>;
  /** Extra fields of the `stats` and `ready` answers. */
  extra?: () => Record<string, unknown>;
  /** Before the cluster starts (connect stores, …). */
  beforeStart?: () => Promise<void>;
  /** After the cluster shut down, before the process exits. */
  afterStop?: () => void;
  /** Exit anyway this long after a stop began. */
  forceExitMs: number;
}

/** Start the member and serve the control channel until it stops. */
export async function serveMember(options: ControlOptions): Promise<void> {
  const { cluster } = options;
  const extra = options.extra ?? (() => ({}));
  // NOTE: how long this process's event loop was held since the last `stall` command (a
  // member that stalls about 750 ms loses a FAST_LEASE).
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();

  async function runCall(spec: CallSpec): Promise<Record<string, unknown>> {
    const started = performance.now();
    try {
      const value = await cluster.request(
        spec.kind,
        spec.identity,
        spec.method,
        spec.args ?? [],
        spec.timeoutMs === undefined ? undefined : { timeout: spec.timeoutMs },
      );
      return { ok: true, value: value ?? null, elapsedMs: Math.round(performance.now() - started) };
    } catch (error) {
      return { ok: false, error: describeError(error), elapsedMs: Math.round(performance.now() - started) };
    }
  }

  let stopping: Promise<void> | undefined;
  const stop = (code: number): Promise<void> => {
    stopping ??= (async () => {
      const force = setTimeout(() => process.exit(code), options.forceExitMs);
      force.unref();
      try {
        await cluster.shutdown();
      } catch (error) {
        stderrLogger.error(`shutdown failed: ${(error as Error).message}`);
      }
      options.afterStop?.();
      process.exit(code);
    })();
    return stopping;
  };

  async function handle(line: string): Promise<void> {
    if (line.trim() === '') return;
    let command: Command;
    try {
      command = JSON.parse(line) as Command;
    } catch {
      emit({ event: 'result', id: null, ok: false, error: { name: 'CommandError', message: `not JSON: ${line.slice(0, 200)}` } });
      return;
    }
    const id = command.id;
    const own = typeof command.cmd === 'string' ? options.commands?.[command.cmd] : undefined;
    if (own !== undefined) {
      emit({ event: 'result', id, ok: true, value: await own(command) });
      return;
    }
    switch (command.cmd) {
      case 'call':
        emit({ event: 'result', id, ...(await runCall(command as unknown as CallSpec)) });
        return;
      case 'batch': {
        const calls = (command['calls'] ?? []) as CallSpec[];
        emit({ event: 'result', id, ok: true, value: await Promise.all(calls.map((c) => runCall(c))) });
        return;
      }
      case 'stats':
        emit({
          event: 'result',
          id,
          ok: true,
          value: {
            memberId: cluster.memberId,
            incarnation: cluster.incarnation,
            address: cluster.remoteAddress,
            members: cluster.members(),
            stats: cluster.stats(),
            ...extra(),
          },
        });
        return;
      case 'gossip': {
        // {"cmd":"gossip","key"?} → every member's gossip status, topology consensus, and every member's value of `key`
        const key = typeof command['key'] === 'string' ? command['key'] : undefined;
        emit({
          event: 'result',
          id,
          ok: true,
          value: {
            members: cluster.gossip.members(),
            consensus: cluster.topologyConsensus(),
            ...(key !== undefined && { values: Object.fromEntries(cluster.gossip.values(key)) }),
          },
        });
        return;
      }
      case 'gossipSet':
        // {"cmd":"gossipSet","key","value"} → sets this member's key
        try {
          cluster.gossip.set(String(command['key']), command['value'] as GossipValue);
          emit({ event: 'result', id, ok: true, value: null });
        } catch (error) {
          emit({ event: 'result', id, ok: false, error: describeError(error) });
        }
        return;
      case 'stall':
        // {"cmd":"stall"} → the longest and the 99th percentile event-loop delay (ms) since the last one; resets
        emit({ event: 'result', id, ok: true, value: { maxMs: loopDelay.max / 1e6, p99Ms: loopDelay.percentile(99) / 1e6, samples: loopDelay.count } });
        loopDelay.reset();
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

  await options.beforeStart?.();
  await cluster.start();
  markStarted();
  const hosting = () => cluster.members().filter((m) => m.address !== '').length;
  // NOTE: a member told to expect no one (EXPECT_MEMBERS=0) may never know its membership (a
  // stranger nobody answers); it reports ready without waiting for it.
  while (hosting() < options.expectMembers || (options.expectMembers > 0 && !cluster.ready)) await new Promise((resolve) => setTimeout(resolve, 20));
  emit({
    event: 'ready',
    memberId: cluster.memberId,
    incarnation: cluster.incarnation,
    address: cluster.remoteAddress,
    kinds: cluster.kindNames,
    members: cluster.members(),
    ...extra(),
  });
}
