import type { RemoteOptions } from '../remote/remote-options.js';
import type { Duration } from './duration.js';
import type { GossipOptions } from './gossip/gossip-options.js';
import type { IdentityLookup } from './identity/identity-lookup.js';
import type { ClusterLogger } from './logger.js';
import type { ClusterProvider } from './providers/cluster-provider.js';
import type { CallChainTracking } from '../actor/turn.js';

/** Options of a cluster member. Every field but `clusterName` has a default. */
export interface ClusterOptions {
  /** The cluster's name; members of different clusters never talk. */
  clusterName: string;
  /** This member's id. @default its advertised remote address when it serves on a fixed port, else a random id */
  memberId?: string;
  /** Membership. @default `InMemoryProvider` (a cluster of this one member) */
  provider?: ClusterProvider;
  /** Where grains live. @default `InMemoryIdentityLookup` (every grain on this member) */
  identityLookup?: IdentityLookup;
  /** Deadline of a call, unless the call gives its own. @default '10s' */
  requestTimeout?: Duration;
  /** Deactivate an activation after this long without calls (per kind: `@Grain({ idleTimeout })`). @default '15m' */
  idleTimeout?: Duration;
  /** Calls that may wait per activation before new ones are refused with `GrainOverloadedError`. @default 10000 */
  maxQueueLength?: number;
  /**
   * The longest grain identity, in UTF-8 bytes. Longer identities (and ones that are not
   * well-formed strings) are refused with `InvalidGrainCallError` before anything is sent or
   * stored; a member refuses them from peers too. @default 1024
   */
  maxIdentityBytes?: number;
  /**
   * How long a turn may keep running after its caller's deadline before its activation is
   * poisoned (takes no more turns, dropped without hooks). @default '10s'
   */
  hangTimeout?: Duration;
  /** How long shutdown waits for queued calls and `onGrainDeactivate` hooks. @default '10s' */
  drainTimeout?: Duration;
  /** Where the runtime logs. @default the console (the Nest module passes a Nest Logger) */
  logger?: ClusterLogger;
  /**
   * The gRPC remote, for clusters of several members. With `port`, this member serves the
   * kinds it hosts; without, it is a client-only member. Implied (client-only) when the
   * provider is not the in-memory one. @default none: the embedded single member
   */
  remote?: RemoteOptions;
  /**
   * Pass the arguments and the outcome of calls served on this member through the codec, as
   * calls between members are (`remote.codec`, else the default one). A grain then gets
   * copies, and what could not cross to another member (a class instance, a function, a
   * symbol, a thrown error's `cause`, …) fails or is lost here too, with the error a remote
   * caller gets. For tests: `nestjs-grains/testing` turns it on. Costs an encode and a decode
   * each way per local call. @default false: local calls pass arguments by reference
   */
  serializeLocalCalls?: boolean;
  /**
   * How a member tells which turn a grain call is made from: what call chains (and so cycle
   * detection, a fenced activation's refused calls, `ctx.signal`, trace parents) rest on.
   * - `'async-local-storage'`: every call made from a turn, through any client, before or after
   *   any `await`, belongs to it. Where async context frames are off (Node 20, Node 22 without
   *   `--experimental-async-context-frame`, Node 24 with `--no-async-context-frame`) its first
   *   turn turns promise hooks on for the whole process: every `await` of the host app costs
   *   several times more (bench/: `local-call`); and on every Node, local grain calls cost about
   *   twice as much (a context per turn).
   * - `'references'`: no async context. A call made before the turn's first `await` belongs to
   *   it; after one, only a call through the grain's own references — `ctx.client(kind)`, and
   *   the clients `@InjectGrainClient()` puts in a grain class — does (to the turn running on
   *   the activation: code that outlived its turn is taken for it); other calls are untracked,
   *   as calls from outside any grain are: no cycle detection, and a fenced activation's code
   *   is not refused them. README "Call chains" has the details.
   * The same default on every Node version, so an app behaves the same on each.
   * @default 'references'
   */
  callChains?: CallChainTracking;
  /**
   * Gossip between members: heartbeats, suspicion for routing, topology consensus, the load
   * least-loaded placement reads, and `cluster.gossip` keys. @default on, every 300 ms to 3 peers
   */
  gossip?: GossipOptions;
}

export const DEFAULT_REQUEST_TIMEOUT = '10s';
export const DEFAULT_IDLE_TIMEOUT = '15m';
export const DEFAULT_MAX_QUEUE_LENGTH = 10_000;
export const DEFAULT_HANG_TIMEOUT = '10s';
export const DEFAULT_DRAIN_TIMEOUT = '10s';
