import type { Duration } from '../duration.js';
import { toMs } from '../duration.js';
import { GrainConfigurationError } from '../errors.js';
import { MAX_ORIGIN_BYTES } from './gossip-state.js';
import { GOSSIP_WIRE_LIMITS } from './gossip-wire.js';

/** Gossip between members (`ClusterOptions.gossip`). Every field has a default. */
export interface GossipOptions {
  /**
   * Gossip at all. Off, members share no state: no heartbeats, no suspicion, no topology
   * consensus, no load for least-loaded placement. @default true
   */
  enabled?: boolean;
  /**
   * How often this member pushes what its peers have not seen. Proto.Actor's value: a change
   * reaches every member of a small cluster within a few rounds, for a few frames per second.
   * @default '300ms'
   */
  interval?: Duration;
  /** Peers pushed to per round, chosen at random (Proto.Actor: 3). @default 3 */
  fanout?: number;
  /** How often this member publishes its heartbeat (activations per kind, mailbox depth, calls/s). @default '1s' */
  heartbeatInterval?: Duration;
  /**
   * A member whose heartbeat has not advanced for this long is suspected: no new grains go to
   * it and cached routes to it are dropped, until it is heard again. Long enough for a few
   * heartbeats to be lost or late (GC, a busy event loop), well under the provider's TTL
   * (Consul: 10 s). Suspicion never moves a grain: only its lease ending does. @default '5s'
   */
  suspectAfter?: Duration;
  /**
   * Keys a member may set with `cluster.gossip.set` (deleted ones count until set again).
   * `maxKeys × maxValueBytes` must stay under 4 MiB (what members keep of each other). @default 64
   */
  maxKeys?: number;
  /** Bytes of one value, as JSON. @default 4096 */
  maxValueBytes?: number;
}

export interface GossipSettings {
  readonly enabled: boolean;
  readonly intervalMs: number;
  readonly fanout: number;
  readonly heartbeatIntervalMs: number;
  readonly suspectAfterMs: number;
  readonly maxKeys: number;
  readonly maxValueBytes: number;
}

export const DEFAULT_GOSSIP_INTERVAL = '300ms';
export const DEFAULT_GOSSIP_FANOUT = 3;
export const DEFAULT_HEARTBEAT_INTERVAL = '1s';
export const DEFAULT_SUSPECT_AFTER = '5s';
export const DEFAULT_GOSSIP_MAX_KEYS = 64;
export const DEFAULT_GOSSIP_MAX_VALUE_BYTES = 4096;
/** Keys the runtime sets for itself besides the user's. */
export const BUILT_IN_KEYS = 8;
/** Room for the runtime's own keys (a heartbeat lists activations per kind). */
const BUILT_IN_BYTES = 64 * 1024;

/** The settings of `options`; throws GrainConfigurationError naming the option that is not valid. */
export function gossipSettings(options: GossipOptions | undefined): GossipSettings {
  const integer = (name: keyof GossipOptions, fallback: number, min: number, max: number): number => {
    const value = options?.[name] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new GrainConfigurationError(`gossip.${name} must be an integer from ${min} to ${max}, got ${String(value)}.`);
    }
    return value;
  };
  const settings: GossipSettings = {
    enabled: options?.enabled ?? true,
    intervalMs: toMs(options?.interval ?? DEFAULT_GOSSIP_INTERVAL, 'gossip.interval'),
    fanout: integer('fanout', DEFAULT_GOSSIP_FANOUT, 1, 64),
    heartbeatIntervalMs: toMs(options?.heartbeatInterval ?? DEFAULT_HEARTBEAT_INTERVAL, 'gossip.heartbeatInterval'),
    suspectAfterMs: toMs(options?.suspectAfter ?? DEFAULT_SUSPECT_AFTER, 'gossip.suspectAfter'),
    maxKeys: integer('maxKeys', DEFAULT_GOSSIP_MAX_KEYS, 1, GOSSIP_WIRE_LIMITS.maxEntriesPerOrigin - BUILT_IN_KEYS),
    maxValueBytes: integer('maxValueBytes', DEFAULT_GOSSIP_MAX_VALUE_BYTES, 1, GOSSIP_WIRE_LIMITS.maxValueBytes),
  };
  // NOTE: a heartbeat goes out on a round: every heartbeatInterval, or every interval if longer.
  const beat = Math.max(settings.heartbeatIntervalMs, settings.intervalMs);
  if (settings.suspectAfterMs < 2 * beat) {
    throw new GrainConfigurationError(
      `gossip.suspectAfter (${settings.suspectAfterMs} ms) must be at least twice the heartbeat period (${beat} ms: gossip.heartbeatInterval, or gossip.interval when longer): one late heartbeat would make a member suspected.`,
    );
  }
  // NOTE: what a member may set must fit in what the others keep of it (gossip-state.ts), or
  // they would drop its changes, heartbeats included, and suspect it while it runs.
  const most = settings.maxKeys * (settings.maxValueBytes + GOSSIP_WIRE_LIMITS.maxNameLength) + BUILT_IN_BYTES;
  if (most > MAX_ORIGIN_BYTES) {
    throw new GrainConfigurationError(
      `gossip.maxKeys × gossip.maxValueBytes allow ${most} bytes of state per member (keys included); members keep at most ${MAX_ORIGIN_BYTES} of each other's. Lower one of them.`,
    );
  }
  return settings;
}
