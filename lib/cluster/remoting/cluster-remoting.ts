import type { DeadlineSweeper } from '../../actor/deadline-sweeper.js';
import { defaultCodec } from '../../remote/codec/default-codec.js';
import { PROTOCOL_MAX, PROTOCOL_MIN } from '../../remote/protocol.js';
import { isIP } from 'node:net';
import { type NetworkInterfaceInfo, networkInterfaces } from 'node:os';
import {
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_MAX_QUEUED_PER_PEER,
  DEFAULT_TLS_RELOAD_INTERVAL_MS,
  type RemoteOptions,
  type RemoteTlsOptions,
} from '../../remote/remote-options.js';
import { DEFAULT_MAX_QUEUED_BYTES_PER_PEER, inboundLimits, type InboundLimits } from '../../remote/inbound-limits.js';
import { Remote } from '../../remote/remote.js';
import { TlsConfigError, TlsMaterial } from '../../remote/tls.js';
import type { LeavePhase } from '../../remote/remote-server.js';
import type { MemberInfo } from '../../remote/wire.js';
import { GrainConfigurationError } from '../errors.js';
import type { Fencing } from '../fencing.js';
import type { LocalMember } from '../local-member.js';
import type { ClusterLogger } from '../logger.js';
import type { Member } from '../providers/cluster-provider.js';
import { RemoteCallee, type CalleeRouting } from './remote-callee.js';
import { type CallerRouting, type GossipReceiver, RemoteCaller } from './remote-caller.js';

/** Where a serving member binds, and what it tells others. */
export interface ServerAddress {
  readonly host: string;
  readonly port: number;
  readonly advertisedHost: string;
}

/** What the remote seam needs from the rest of the member. */
export interface ClusterRemotingDeps {
  readonly member: LocalMember;
  readonly fencing: Fencing;
  readonly sweeper: DeadlineSweeper;
  readonly logger: ClusterLogger;
  readonly routing: CallerRouting & CalleeRouting;
  /** The longest identity a peer may send, in UTF-8 bytes. */
  readonly maxIdentityBytes: number;
  /** A handshake (or an announcement) on a connection this member dialled to `address` showed who is there now. */
  peerSeen(member: Member, address: string, phase: LeavePhase): void;
  /** Where gossip from peers goes; absent when gossip is off. */
  readonly gossip?: GossipReceiver;
}

/** The host's network interfaces, as `os.networkInterfaces()` lists them. */
export type NetworkInterfaces = NodeJS.Dict<NetworkInterfaceInfo[]>;

/** What `serverAddressOf` asks of the host, and where it says what it chose. */
export interface ServerAddressEnvironment {
  /** @default os.networkInterfaces */
  readonly interfaces?: () => NetworkInterfaces;
  /** Told when the advertised host was picked from the interfaces (once per call). */
  readonly log?: (message: string) => void;
}

/**
 * Where a member with `options` serves, or undefined for a client-only member. The advertised
 * host is `remote.advertisedHost`, else the host bound; a member binding every interface
 * (`0.0.0.0`, `::`) advertises the host's own address instead (`externalAddress`). Throws
 * GrainConfigurationError on a bad port, or when there is no such address to advertise.
 */
export function serverAddressOf(
  options: RemoteOptions | undefined,
  { interfaces = networkInterfaces, log }: ServerAddressEnvironment = {},
): ServerAddress | undefined {
  if (options?.port === undefined) return undefined;
  const port = options.port;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new GrainConfigurationError(`remote.port ${String(port)} is not a port number.`);
  const host = options.host ?? '0.0.0.0';
  if (options.advertisedHost !== undefined) return { host, port, advertisedHost: options.advertisedHost };
  if (!bindsEveryInterface(host)) return { host, port, advertisedHost: host };
  // NOTE: never 127.0.0.1 while the host has another address: every member of a cluster spread
  // over hosts would advertise the same address, which each of the others reaches as itself.
  // The host's own address is what they reach in the usual case of one network interface (a
  // container, a VM); virtual bridges (docker0, …) come last, IPv6 after IPv4.
  const picked = externalAddress(interfaces());
  if (picked === undefined) {
    throw new GrainConfigurationError(
      `remote.host "${host}" listens on every interface, but this host has no address but loopback to tell the other members. Set remote.advertisedHost to the host they reach this member at (127.0.0.1 when every member runs on this machine).`,
    );
  }
  log?.(
    `remote.host "${host}" listens on every interface and remote.advertisedHost is not set: the other members are told to reach this member at ${picked.address} (interface ${picked.name}). Set remote.advertisedHost if they reach it at another address.`,
  );
  return { host, port, advertisedHost: picked.address };
}

/** `host:port`, with an IPv6 address in brackets (`[::1]:8090`), as gRPC and members expect it. */
export function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `0.0.0.0`, `::` (or `[::]`, `0:0:…:0`): the server accepts connections on every interface. */
function bindsEveryInterface(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return bare === '0.0.0.0' || (isIP(bare) === 6 && /^[0:]+$/.test(bare));
}

/** Interfaces of container runtimes, VMs and VPNs: their addresses are rarely what other hosts reach. */
const VIRTUAL_INTERFACE = /^(docker|br-|cni|flannel|cali|veth|virbr|vmnet|vboxnet|lxcbr|lxdbr|podman|tun|tap|utun|wg|zt)/;

/**
 * The address to advertise: the first IPv4 address of a physical interface, else of a virtual
 * one, else a global IPv6 address (physical first) — never loopback, link-local (169.254/16,
 * fe80::/10: never routed) or unique-local IPv6 before a global one.
 */
function externalAddress(interfaces: NetworkInterfaces): { name: string; address: string } | undefined {
  const candidates: { name: string; address: string; rank: number }[] = [];
  for (const [name, addresses] of Object.entries(interfaces)) {
    const virtual = VIRTUAL_INTERFACE.test(name) ? 1 : 0;
    for (const info of addresses ?? []) {
      if (info.internal) continue;
      if (info.family === 'IPv4' && !info.address.startsWith('169.254.')) candidates.push({ name, address: info.address, rank: virtual });
      else if (info.family === 'IPv6' && !/^fe[89ab]/i.test(info.address) && !/^f[cd]/i.test(info.address)) {
        candidates.push({ name, address: info.address, rank: 2 + virtual });
      }
    }
  }
  // NOTE: a stable sort: within a rank, the order the system lists them.
  candidates.sort((a, b) => a.rank - b.rank);
  return candidates[0];
}

/**
 * The one owner of the remote seam: builds the gRPC `Remote` from `RemoteOptions`, with the
 * caller side (remote-caller.ts) and the callee side (remote-callee.ts) between it and the
 * request path.
 */
export class ClusterRemoting {
  readonly caller: RemoteCaller;
  readonly callee: RemoteCallee;
  private readonly server: ServerAddress | undefined;
  private readonly maxMessageSize: number;
  private readonly maxQueuedPerPeer: number;
  private readonly inboundLimits: InboundLimits;
  private readonly tlsOptions: RemoteTlsOptions | undefined;
  private tls: TlsMaterial | undefined;
  private remote: Remote | undefined;

  constructor(
    options: RemoteOptions | undefined,
    server: ServerAddress | undefined,
    private readonly deps: ClusterRemotingDeps,
  ) {
    this.server = server;
    this.maxMessageSize = options?.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.maxQueuedPerPeer = options?.maxQueuedPerPeer ?? DEFAULT_MAX_QUEUED_PER_PEER;
    this.inboundLimits = limitsOf(options, deps.maxIdentityBytes);
    this.tlsOptions = options?.tls;
    const codec = options?.codec ?? defaultCodec(this.maxMessageSize);
    const peerSeen = (info: MemberInfo, address: string, phase: LeavePhase) =>
      deps.peerSeen({ id: info.memberId, incarnation: info.incarnation, address: info.address, kinds: info.kinds }, address, phase);
    this.caller = new RemoteCaller({
      codec,
      maxMessageSize: this.maxMessageSize,
      maxQueuedPerPeer: this.maxQueuedPerPeer,
      routing: deps.routing,
      logger: deps.logger,
      peerSeen,
      ...(deps.gossip !== undefined && { gossip: deps.gossip }),
    });
    this.callee = new RemoteCallee({
      member: deps.member,
      codec,
      protocol: options?.protocol ?? { min: PROTOCOL_MIN, max: PROTOCOL_MAX },
      maxMessageSize: this.maxMessageSize,
      maxIdentityBytes: deps.maxIdentityBytes,
      fencing: deps.fencing,
      routing: deps.routing,
      logger: deps.logger,
      ...(deps.gossip !== undefined && { gossip: deps.gossip }),
    });
  }

  /** Start the gRPC server (unless client-only) and the caller side; sets the member's address. */
  async start(): Promise<void> {
    const { member, sweeper, logger } = this.deps;
    const callee = this.callee;
    const server = this.server;
    const tls = await this.loadTls();
    if (tls === undefined && server !== undefined && !isLoopback(server.host)) {
      logger.warn(
        `Remote: the remote port (${server.host}:${server.port}) runs without TLS: anyone who can reach it can call any grain; put it on a trusted network or configure remote.tls.`,
      );
    }
    const remote = new Remote({
      ...(server !== undefined && { server: { host: server.host, port: server.port } }),
      maxMessageSize: this.maxMessageSize,
      maxQueuedPerPeer: this.maxQueuedPerPeer,
      inboundLimits: this.inboundLimits,
      ...(tls !== undefined && { credentials: tls.credentials() }),
      sweeper,
      handshake: () => ({
        clusterName: member.clusterName,
        member: callee.self(),
        minProtocol: callee.protocol.min,
        maxProtocol: callee.protocol.max,
        codec: callee.codecName,
      }),
      events: this.caller,
      inbound: callee,
    });
    this.remote = this.caller.remote = remote;
    let port: number | undefined;
    try {
      port = await remote.start();
    } catch (error) {
      throw new GrainConfigurationError(
        `The remote could not listen on ${server!.host}:${server!.port}: ${(error as Error).message}. Pick a free port (remote.port).`,
      );
    }
    if (port !== undefined) member.address = hostPort(server!.advertisedHost, port);
    tls?.watch(this.tlsOptions?.reloadIntervalMs ?? DEFAULT_TLS_RELOAD_INTERVAL_MS);
  }

  /** The TLS material of `remote.tls`, read and checked; undefined without TLS. */
  private async loadTls(): Promise<TlsMaterial | undefined> {
    if (this.tlsOptions === undefined) return undefined;
    const logger = this.deps.logger;
    try {
      this.tls = await TlsMaterial.load(this.tlsOptions, (level, message) => logger[level](message));
    } catch (error) {
      if (error instanceof TlsConfigError) throw new GrainConfigurationError(`${error.message}.`);
      throw error;
    }
    return this.tls;
  }

  /** Tell the members calling this one what it is now: its incarnation changed. */
  announce(): void {
    this.remote?.announce();
  }

  /** Tell callers, now and later, that this member is leaving (no new grains here). */
  leaving(): void {
    this.remote?.leaving();
  }

  /** Tell callers this member has drained; wait (bounded) for them to end their streams. */
  async close(graceMs?: number): Promise<void> {
    await this.remote?.close(graceMs);
  }

  /** The member at `address` left the membership: close the connection to it once idle. */
  forget(address: string): void {
    this.remote?.forget(address);
  }

  /** Push gossip to the member at `address`; false when it cannot go now. */
  pushGossip(address: string, bytes: Uint8Array): boolean {
    return this.remote?.gossip(address, bytes) ?? false;
  }

  /** Connect to `address` and handshake now (to learn who is there). */
  probe(address: string): void {
    this.remote?.probe(address);
  }

  async shutdown(): Promise<void> {
    this.tls?.close();
    await this.remote?.shutdown();
  }
}

/** The inbound limits of `options`; throws GrainConfigurationError for one that is not valid. */
function limitsOf(options: RemoteOptions | undefined, maxIdentityBytes: number): InboundLimits {
  const maxQueuedBytes = options?.maxQueuedBytesPerPeer ?? DEFAULT_MAX_QUEUED_BYTES_PER_PEER;
  if (!Number.isInteger(maxQueuedBytes) || maxQueuedBytes < 1) {
    throw new GrainConfigurationError(`remote.maxQueuedBytesPerPeer must be a positive integer, got ${String(maxQueuedBytes)}.`);
  }
  try {
    return inboundLimits(options?.inbound, maxIdentityBytes, maxQueuedBytes);
  } catch (error) {
    throw new GrainConfigurationError(`${(error as Error).message}.`);
  }
}

/** True for a host only this machine reaches: `localhost`, 127.0.0.0/8, ::1. */
function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare === '::1') return true;
  const v4 = bare.startsWith('::ffff:') ? bare.slice(7) : bare;
  return isIP(v4) === 4 && v4.startsWith('127.');
}
