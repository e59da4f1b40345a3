import { type Duration, toMs } from '../duration.js';
import { GrainConfigurationError } from '../errors.js';
import type { ClusterProvider, Member, ProviderMember } from './cluster-provider.js';

/** Options of `StaticProvider`. */
export interface StaticProviderOptions {
  /** The hosting members' remote addresses (`host:port`); this member's own may be listed too. */
  members: readonly string[];
  /** How often a listed member that has not answered yet is tried again. @default '500ms' */
  probeInterval?: Duration;
  /**
   * How long after start the membership counts as incomplete while listed members have not
   * answered; hash placement waits for it (calls fail with ClusterUnavailableError meanwhile)
   * rather than place grains on the members it happens to know. @default '10s'
   */
  startupGrace?: Duration;
  /** @deprecated use `probeInterval` (which wins when both are given). */
  probeIntervalMs?: number;
  /** @deprecated use `startupGrace` (which wins when both are given). */
  startupGraceMs?: number;
}

const DEFAULT_PROBE_INTERVAL = '500ms';
const DEFAULT_STARTUP_GRACE = '10s';

const ADDRESS = /^[^\s:]+:\d{1,5}$/;

/**
 * Membership from configuration, for fixed-size clusters. Each listed member is contacted
 * (a remote handshake) until it answers once, which tells its id, incarnation and kinds; a
 * member that restarts is learned again from its next handshake. Members are never removed:
 * a member that is down stays a member whose calls fail until it is back.
 */
export class StaticProvider implements ClusterProvider {
  readonly name = 'static';
  private self: Member | undefined;
  private readonly byAddress = new Map<string, Member>();
  private timer: NodeJS.Timeout | undefined;
  private readonly addresses: readonly string[];
  private readonly probeIntervalMs: number;
  private readonly startupGraceMs: number;
  private startedAt = 0;

  constructor(options: StaticProviderOptions) {
    for (const address of options.members) {
      if (!ADDRESS.test(address)) throw new GrainConfigurationError(`StaticProvider: "${address}" is not a host:port address.`);
    }
    this.addresses = [...new Set(options.members)];
    this.probeIntervalMs = toMs(
      options.probeInterval ?? options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL,
      `StaticProvider ${options.probeInterval === undefined && options.probeIntervalMs !== undefined ? 'probeIntervalMs' : 'probeInterval'}`,
    );
    this.startupGraceMs = toMs(
      options.startupGrace ?? options.startupGraceMs ?? DEFAULT_STARTUP_GRACE,
      `StaticProvider ${options.startupGrace === undefined && options.startupGraceMs !== undefined ? 'startupGraceMs' : 'startupGrace'}`,
      {
        allowZero: true,
      },
    );
  }

  async start(member: ProviderMember): Promise<void> {
    this.self = member.self;
    this.startedAt = Date.now();
    if (member.self.address !== '' && !this.addresses.includes(member.self.address)) {
      member.log(
        'warn',
        `StaticProvider: this member's own address ${member.self.address} is not in the member list (${this.addresses.join(', ')}); the others will not place grains here. List every hosting member by the address it advertises.`,
      );
    }
    const probe = () => {
      for (const address of this.addresses) {
        if (address !== member.self.address && !this.byAddress.has(address)) member.probe(address);
      }
      if (this.byAddress.size < this.addresses.filter((a) => a !== member.self.address).length) {
        this.timer = setTimeout(probe, this.probeIntervalMs);
        this.timer.unref();
      }
    };
    probe();
  }

  onPeer(member: Member): void {
    if (member.address !== '' && this.addresses.includes(member.address)) this.byAddress.set(member.address, member);
  }

  members(): readonly Member[] {
    return this.self === undefined ? [] : [this.self, ...this.byAddress.values()];
  }

  /** True once every listed member has answered at least once, or the startup grace has passed. */
  get complete(): boolean {
    return this.addresses.every((a) => a === this.self?.address || this.byAddress.has(a)) || Date.now() - this.startedAt >= this.startupGraceMs;
  }

  async shutdown(): Promise<void> {
    clearTimeout(this.timer);
  }
}
