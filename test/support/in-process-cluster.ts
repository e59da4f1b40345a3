import { Cluster, type ClusterOptions, type GrainClass, type GrainContext, HashIdentityLookup, StaticProvider } from 'nestjs-grains';
import { eventually, RecordingLogger } from './cluster.js';
import { freePort } from './free-port.js';

type GrainCtor = new (ctx: GrainContext) => object;

export interface MemberSpec {
  kinds: Array<{ name: string; grainClass: GrainCtor; idempotentMethods?: string[]; interleavedMethods?: string[] }>;
  /** No server: calls out only. */
  clientOnly?: boolean;
  options?: Partial<ClusterOptions>;
}

export interface InProcessCluster {
  members: Cluster[];
  loggers: RecordingLogger[];
  shutdown(): Promise<void>;
}

/**
 * Several members in this process, talking over real gRPC on loopback, with a static
 * member list and hash placement. Resolves once every member knows every hosting member.
 */
export async function startMembers(
  specs: MemberSpec[],
  clusterName = 'it',
  list: { extraAddresses?: string[]; startupGrace?: number } = {},
): Promise<InProcessCluster> {
  const ports = await Promise.all(specs.map((spec) => (spec.clientOnly ? Promise.resolve(undefined) : freePort())));
  const addresses = [...ports.filter((p): p is number => p !== undefined).map((p) => `127.0.0.1:${p}`), ...(list.extraAddresses ?? [])];
  const loggers = specs.map(() => new RecordingLogger());
  const members = specs.map((spec, i) => {
    const cluster = new Cluster({
      clusterName,
      logger: loggers[i]!,
      provider: new StaticProvider({ members: addresses, probeInterval: 50, ...(list.startupGrace !== undefined && { startupGrace: list.startupGrace }) }),
      identityLookup: new HashIdentityLookup(),
      ...spec.options,
      remote: { ...(ports[i] === undefined ? {} : { host: '127.0.0.1', port: ports[i]! }), ...spec.options?.remote },
    });
    for (const kind of spec.kinds) {
      const Ctor = kind.grainClass;
      cluster.registerKind({
        name: kind.name,
        grainClass: Ctor as unknown as GrainClass,
        create: (ctx) => new Ctor(ctx),
        ...(kind.idempotentMethods && { idempotentMethods: kind.idempotentMethods }),
        ...(kind.interleavedMethods && { interleavedMethods: kind.interleavedMethods }),
      });
    }
    return cluster;
  });
  await Promise.all(members.map((m) => m.start()));
  const hosting = specs.filter((s) => !s.clientOnly).length;
  // NOTE: listed addresses nobody serves yet (extraAddresses) do not count as members.
  const ready = await eventually(() => members.every((m) => m.ready && m.members().filter((x) => x.address !== '').length === hosting), 5_000);
  if (!ready) throw new Error(`members did not learn each other: ${members.map((m) => m.members().length).join(',')}`);
  return {
    members,
    loggers,
    shutdown: async () => {
      await Promise.all(members.map((m) => m.shutdown()));
    },
  };
}
