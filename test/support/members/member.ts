/**
 * A cluster member as a real process, for the multi-process tests (test/e2e) and
 * `test/support/member-harness.ts`. It runs from the tsc build
 * (`dist/test/support/members/member.js`) and imports the library as `nestjs-grains`
 * (the package's self-reference: `dist/lib/index.js`).
 *
 * Configuration (environment):
 *   CLUSTER_NAME       the cluster's name (default `e2e`)
 *   HOST               interface to serve on (default 127.0.0.1)
 *   PORT               remote port; required unless CLIENT_ONLY=1
 *   CLIENT_ONLY=1      serve nothing, host no kinds, only call
 *   STATIC_MEMBERS     comma-separated `host:port` of the hosting members (StaticProvider)
 *   EXPECT_MEMBERS     hosting members to know before "ready" (default: STATIC_MEMBERS count)
 *   KINDS              comma-separated kinds to host, of counter, slow, relay (unset: all; empty: none)
 *   PROTOCOL_MIN/MAX   the protocol range spoken (default: this build's)
 *   REQUEST_TIMEOUT_MS default call deadline
 *   MAX_MESSAGE_SIZE   remote.maxMessageSize
 *   PROBE_INTERVAL_MS  StaticProvider probe interval (default 100)
 *   STARTUP_GRACE_MS   StaticProvider startupGrace (default: the provider's)
 *   GOSSIP=off, GOSSIP_INTERVAL_MS, HEARTBEAT_INTERVAL_MS, SUSPECT_AFTER_MS
 *                      gossip options (control.ts gossipEnv)
 *   TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE
 *                      remote.tls (mutual TLS): the cluster CA, this member's certificate and
 *                      key, PEM files; all three or none
 *
 * Output: stdout carries JSON lines only —
 *   {"event":"ready","memberId","incarnation","address","members":[...]}  once every
 *       expected hosting member is known;
 *   {"event":"exec","callId","kind","identity","method","member","incarnation","activation","count"}
 *       per grain execution (see grains.ts);
 *   {"event":"result","id",...}  per command.
 * stderr carries the runtime's log lines, `[nestjs-grains] <level>: <message>`.
 *
 * Control (stdin, one JSON object per line, each with a numeric `id` echoed in its result):
 *   {"cmd":"call","kind","identity","method","args":[...],"timeoutMs"?}
 *       → {"event":"result","id","ok":true,"value","elapsedMs"} or {"ok":false,"error":{name,code,message,...},"elapsedMs"}
 *   {"cmd":"batch","calls":[{kind,identity,method,args,timeoutMs?}, ...]}   all at once
 *       → {"event":"result","id","ok":true,"value":[<outcome as above, without id/event>, ...]}
 *   {"cmd":"stats"}  → {"event":"result","id","ok":true,"value":{memberId,incarnation,address,members,stats}}
 *   {"cmd":"gossip","key"?} → {members: gossip statuses, consensus, values?: {memberId: value}}
 *   {"cmd":"gossipSet","key","value"} → sets this member's gossip key
 *   {"cmd":"stall"}  → {"event":"result","id","ok":true,"value":{maxMs,p99Ms,samples}}: this process's
 *       event-loop delay since the previous `stall` (monitorEventLoopDelay), then reset
 *   {"cmd":"shutdown"} → graceful shutdown, then exit 0 (SIGTERM does the same).
 * When stdin ends (the parent is gone) the member exits, so it never outlives its test.
 */
import { Cluster, type GrainClass, type GrainContext, HashIdentityLookup, type RemoteOptions, StaticProvider } from 'nestjs-grains';
import { emit, env, gossipEnv, intEnv, serveMember, staticMembersEnv, stderrLogger as logger } from './control.js';
import { CounterGrain, RelayGrain, setGrainHost, SlowGrain } from './grains.js';

const clientOnly = env('CLIENT_ONLY') === '1';
const host = env('HOST') ?? '127.0.0.1';
const port = intEnv('PORT');
if (!clientOnly && port === undefined) throw new Error('PORT is required (or CLIENT_ONLY=1)');
const staticMembers = staticMembersEnv();
const expectMembers = intEnv('EXPECT_MEMBERS') ?? staticMembers.length;
const protocolMin = intEnv('PROTOCOL_MIN');
const protocolMax = intEnv('PROTOCOL_MAX');
const maxMessageSize = intEnv('MAX_MESSAGE_SIZE');
const requestTimeout = intEnv('REQUEST_TIMEOUT_MS');
const startupGraceMs = intEnv('STARTUP_GRACE_MS');
const tlsFiles = [env('TLS_CA_FILE'), env('TLS_CERT_FILE'), env('TLS_KEY_FILE')] as const;
if (tlsFiles.some((f) => f === undefined) && tlsFiles.some((f) => f !== undefined))
  throw new Error('TLS_CA_FILE, TLS_CERT_FILE and TLS_KEY_FILE: all three or none');

const remote: RemoteOptions = {
  ...(!clientOnly && { host, port: port! }),
  ...(protocolMin !== undefined && protocolMax !== undefined && { protocol: { min: protocolMin, max: protocolMax } }),
  ...(maxMessageSize !== undefined && { maxMessageSize }),
  ...(tlsFiles[0] !== undefined && { tls: { caFile: tlsFiles[0], certFile: tlsFiles[1]!, keyFile: tlsFiles[2]! } }),
};

const cluster = new Cluster({
  clusterName: env('CLUSTER_NAME') ?? 'e2e',
  logger,
  provider: new StaticProvider({
    members: staticMembers,
    probeInterval: intEnv('PROBE_INTERVAL_MS') ?? 100,
    ...(startupGraceMs !== undefined && { startupGrace: startupGraceMs }),
  }),
  identityLookup: new HashIdentityLookup(),
  remote,
  gossip: gossipEnv(),
  ...(requestTimeout !== undefined && { requestTimeout }),
});

setGrainHost({
  incarnation: cluster.incarnation,
  emit,
  counters: () => cluster.client<CounterGrain>('counter'),
  relays: () => cluster.client<RelayGrain>('relay'),
});

type GrainCtor = new (ctx: GrainContext) => object;
const available: Record<string, { grainClass: GrainCtor; idempotentMethods?: string[] }> = {
  counter: { grainClass: CounterGrain },
  slow: { grainClass: SlowGrain, idempotentMethods: ['idem'] },
  relay: { grainClass: RelayGrain },
};
const kindsEnv = process.env['KINDS'];
const kinds = clientOnly
  ? []
  : kindsEnv === undefined
    ? Object.keys(available)
    : kindsEnv
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
for (const name of kinds) {
  const spec = available[name];
  if (spec === undefined) throw new Error(`KINDS: unknown kind "${name}"; known: ${Object.keys(available).join(', ')}`);
  const Ctor = spec.grainClass;
  cluster.registerKind({
    name,
    grainClass: Ctor as unknown as GrainClass,
    create: (ctx) => new Ctor(ctx),
    ...(spec.idempotentMethods && { idempotentMethods: spec.idempotentMethods }),
  });
}

await serveMember({ cluster, expectMembers, forceExitMs: 5_000 });
