import { Cluster } from '../cluster/cluster.js';
import type { ClusterOptions } from '../cluster/cluster-options.js';
import { type Duration, toMs } from '../cluster/duration.js';
import { ClusterUnavailableError, GrainConfigurationError } from '../cluster/errors.js';
import { HashIdentityLookup } from '../cluster/identity/hash-identity-lookup.js';
import type { KindDefinition } from '../cluster/kind.js';
import { membersHosting } from '../cluster/placement/placement-strategy.js';
import { RendezvousPlacement } from '../cluster/placement/rendezvous-placement.js';
import { TestMembership } from './test-membership.js';

/** Members of a test cluster unless told otherwise. */
export const DEFAULT_TEST_MEMBERS = 2;
/** How long a test cluster waits for its members to know each other. */
const DEFAULT_READY_TIMEOUT: Duration = '10s';
/** How often it looks. */
const READY_POLL_MS = 10;
/** The most identities `identityOn` tries before it gives up. */
const MAX_IDENTITY_TRIES = 10_000;

/**
 * Cluster options of one member of a test cluster, over the kit's: any `ClusterOptions`
 * field. `remote` is merged into the kit's (the kit keeps host `127.0.0.1` and port 0);
 * `provider` and `identityLookup` replace the kit's (the test membership, hash placement).
 */
export type TestMemberOptions = Partial<ClusterOptions>;

/** Options common to `createTestCluster` and `createNestTestCluster`. */
export interface TestClusterCommonOptions {
  /** How many members. Each serves on its own loopback port and hosts every kind. @default 2 */
  members?: number;
  /**
   * Cluster options for every member, or a function of the member's index (from 0) for
   * options of its own (a `memberId`, a `RedisIdentityLookup` each). They win over the kit's
   * defaults: `clusterName` 'test' (Nest: the one of `forRoot`), `memberId` `member-<index>`,
   * `serializeLocalCalls: true`. @default none
   */
  options?: TestMemberOptions | ((member: number) => TestMemberOptions);
  /** How long to wait for every member to start and know every other. @default '10s' */
  readyTimeout?: Duration;
}

/** Options of `createTestCluster`. */
export interface TestClusterOptions extends TestClusterCommonOptions {
  /**
   * The kinds every member hosts (`Cluster.registerKind`), or a function of the member's index
   * (from 0) giving each member its own, e.g. a `create` over a store of its own.
   */
  kinds: readonly KindDefinition[] | ((member: number) => readonly KindDefinition[]);
}

/**
 * Members of one cluster in this process, started and knowing each other: the real remote
 * (gRPC on loopback), the real codec between them, a static member list and hash placement.
 */
export interface TestCluster {
  /** The members, in order; `members[0].client<T>(kind)` calls from the first. */
  readonly members: readonly Cluster[];
  /** The member hosting `kind/identity` under the kit's hash placement (nothing is called or activated). */
  memberOf(kind: string, identity: string): Cluster;
  /**
   * An identity of `kind` that lives on `member` (a member or its index): `${prefix}-1`,
   * `${prefix}-2`, … the first one placed there. For tests that must cross, or stay on, a member.
   * @param prefix @default kind
   */
  identityOn(kind: string, member: number | Cluster, prefix?: string): string;
  /** Every member leaves at once, gracefully (its grains deactivate, their hooks run). */
  shutdown(): Promise<void>;
}

/**
 * A cluster of `members` in this process for unit tests, without Nest: each member a
 * `Cluster` hosting `kinds`, serving on its own loopback port (port 0), listing the others
 * (a `StaticProvider` over their addresses), placing grains by hash; every call from one
 * member to a grain on another crosses gRPC and the codec. Local calls cross the codec too
 * (`serializeLocalCalls`), unless `options` turns it off. Resolves once every member is ready
 * and knows every other; shut it down with `shutdown()`.
 *
 * @example
 * const cluster = await createTestCluster({
 *   members: 3,
 *   kinds: [{ name: 'account', grainClass: AccountGrain, create: (ctx) => new AccountGrain(store, ctx) }],
 * });
 * const id = cluster.identityOn('account', 2);                 // lives on the third member
 * await cluster.members[0].client<AccountGrain>('account').get(id).deposit(5);
 * await cluster.shutdown();
 */
export async function createTestCluster(options: TestClusterOptions): Promise<TestCluster> {
  const size = memberCount(options.members);
  const membership = new TestMembership(size);
  const members: Cluster[] = [];
  const overrides = ownOverrides(options.options, size);
  // NOTE: a bad option or kind throws here, before anything started.
  for (let index = 0; index < size; index++) {
    const cluster = new Cluster(testMemberOptions(index, membership, { clusterName: 'test' }, overrides[index]!));
    members.push(cluster);
    const kinds = typeof options.kinds === 'function' ? options.kinds(index) : options.kinds;
    for (const kind of kinds) cluster.registerKind(kind);
  }
  const stopAll = () => Promise.all(members.map((m) => m.shutdown()));
  await startTogether(
    members.map((cluster) => () => cluster.start()),
    membership,
    stopAll,
    options.readyTimeout,
  );
  return testCluster(members, stopAll, options.readyTimeout);
}

/** The member count option, checked. */
export function memberCount(members: number | undefined): number {
  const size = members ?? DEFAULT_TEST_MEMBERS;
  if (!Number.isInteger(size) || size < 1) throw new GrainConfigurationError(`members must be a positive integer, got ${String(members)}.`);
  return size;
}

/**
 * Every member's own options. NOTE: a provider or identity lookup is set up by the member it
 * is given to; one object given to every member (options as an object, not a function of the
 * index) would be set up N times and shared: refused, saying how to give each its own.
 */
export function ownOverrides(options: TestClusterCommonOptions['options'], size: number): TestMemberOptions[] {
  const all = Array.from({ length: size }, (_, index) => memberOverrides(options, index));
  for (const part of ['provider', 'identityLookup'] as const) {
    const objects = all.map((o) => o[part]).filter((o) => o !== undefined);
    if (new Set(objects).size < objects.length) {
      throw new GrainConfigurationError(
        `options.${part}: the same object is given to more than one member; each member needs its own. Pass options as a function of the member's index: options: (i) => ({ ${part}: new … })`,
      );
    }
  }
  return all;
}

/** The user's options of member `index`. */
export function memberOverrides(options: TestClusterCommonOptions['options'], index: number): TestMemberOptions {
  return (typeof options === 'function' ? options(index) : options) ?? {};
}

/**
 * The options of member `index`: `base` (the kit's defaults, or a Nest app's `forRoot`
 * options), then the kit's wiring, then the user's `overrides`.
 */
export function testMemberOptions(index: number, membership: TestMembership, base: ClusterOptions, overrides: TestMemberOptions): ClusterOptions {
  return {
    ...base,
    memberId: `member-${index}`,
    serializeLocalCalls: true,
    ...overrides,
    provider: overrides.provider ?? membership.provider(index),
    identityLookup: overrides.identityLookup ?? new HashIdentityLookup(),
    // NOTE: port 0: each member gets a free port when it binds, and the list is made after.
    remote: { ...base.remote, ...overrides.remote, host: '127.0.0.1', port: 0, advertisedHost: '127.0.0.1' },
  };
}

/**
 * Start every member at once (their providers wait for each other's addresses); if one
 * fails, the others stop waiting, everything started is stopped, and the first error is thrown.
 */
export async function startTogether<T>(
  starts: ReadonlyArray<() => Promise<T>>,
  membership: TestMembership,
  stopAll: () => Promise<unknown>,
  readyTimeout?: Duration,
): Promise<T[]> {
  const timeoutMs = toMs(readyTimeout ?? DEFAULT_READY_TIMEOUT, 'readyTimeout');
  // NOTE: `readyTimeout` bounds the start too: a member that never starts (a lookup that hangs
  // in setup) must not keep the others, and the test, waiting for ever.
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new ClusterUnavailableError(`The test cluster's members did not all start within ${timeoutMs} ms.`);
      membership.abort(error);
      reject(error);
    }, timeoutMs);
  });
  timedOut.catch(() => undefined);
  const settled = Promise.allSettled(
    starts.map(async (start) => {
      try {
        return await start();
      } catch (error) {
        membership.abort(error);
        throw error;
      }
    }),
  );
  let outcomes: PromiseSettledResult<T>[];
  try {
    outcomes = await Promise.race([settled, timedOut]);
  } catch (error) {
    await stopAll().catch(() => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failed !== undefined) {
    await stopAll().catch(() => undefined);
    throw failed.reason;
  }
  return outcomes.map((o) => (o as PromiseFulfilledResult<T>).value);
}

/** Wait until every member is ready and knows every hosting member; then the handle. */
export async function testCluster(members: readonly Cluster[], stopAll: () => Promise<unknown>, readyTimeout: Duration | undefined): Promise<TestCluster> {
  const timeoutMs = toMs(readyTimeout ?? DEFAULT_READY_TIMEOUT, 'readyTimeout');
  const hosting = members.filter((m) => m.remoteAddress !== '').length;
  const deadline = Date.now() + timeoutMs;
  const knowsAll = (m: Cluster) => m.ready && m.members().filter((x) => x.address !== '').length >= hosting;
  while (!members.every(knowsAll)) {
    if (Date.now() >= deadline) {
      const seen = members.map((m, i) => `member ${i}: ${m.members().length} known, ${m.health().detail ?? 'ready'}`).join('; ');
      await stopAll().catch(() => undefined);
      throw new ClusterUnavailableError(`The test cluster's members did not all know each other within ${timeoutMs} ms (${seen}).`);
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  let stopping: Promise<void> | undefined;
  const handle: TestCluster = {
    members,
    memberOf: (kind, identity) => memberOf(members, kind, identity),
    identityOn(kind, member, prefix = kind) {
      const target = typeof member === 'number' ? members[member] : member;
      if (target === undefined || !members.includes(target))
        throw new GrainConfigurationError(`identityOn: ${String(member)} is not a member of this test cluster.`);
      for (let n = 1; n <= MAX_IDENTITY_TRIES; n++) {
        const identity = `${prefix}-${n}`;
        if (memberOf(members, kind, identity) === target) return identity;
      }
      throw new GrainConfigurationError(`identityOn: no identity "${prefix}-1" … "${prefix}-${MAX_IDENTITY_TRIES}" is placed on member ${target.memberId}.`);
    },
    shutdown() {
      stopping ??= stopAll().then(() => undefined);
      return stopping;
    },
  };
  return handle;
}

/** Where the kit's hash placement (HashIdentityLookup) puts `kind/identity`. */
function memberOf(members: readonly Cluster[], kind: string, identity: string): Cluster {
  const first = members[0]!;
  if (!members.every((m) => m.identityLookup instanceof HashIdentityLookup)) {
    throw new GrainConfigurationError('memberOf / identityOn know hash placement only, and a member of this test cluster has another identityLookup.');
  }
  const placement = new RendezvousPlacement();
  const candidates = membersHosting(first.members(), kind);
  const owner = placement.place(kind, identity, candidates);
  const member = owner === undefined ? undefined : members.find((m) => m.memberId === owner.id);
  if (member === undefined) throw new GrainConfigurationError(`No member of this test cluster hosts kind "${kind}".`);
  return member;
}
