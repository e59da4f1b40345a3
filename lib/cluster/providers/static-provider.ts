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
 * Membership from configuration, for fixed-size clusters: the list is the membership. Each
 * listed address is dialled until it answers a handshake, which confirms who is there (id,
 * incarnation, kinds); a member that restarts is confirmed again on the next connection to
 * its address, or when it announces its new incarnation there. A handshake never adds a
 * member: only connections this member dialled to a listed address count, the address is the
 * listed one whatever the peer claims, and an id already confirmed at another listed address
 * is refused (two addresses cannot both be one member). Members are never removed: one that
 * is down stays a member whose calls fail until it is back.
 */
export class StaticProvider implements ClusterProvider {
  readonly name = 'static';
  private member: ProviderMember | undefined;
  private readonly byAddress = new Map<string, Member>();
  private timer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private readonly addresses: readonly string[];
  private readonly probeIntervalMs: number;
  private readonly startupGraceMs: number;
  private startedAt = 0;
  /** Warned once per address: what it claimed that was refused. */
  private readonly warned = new Set<string>();

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
    this.member = member;
    this.startedAt = Date.now();
    const self = member.self();
    if (self.address !== '' && !this.addresses.includes(self.address)) {
      member.log(
        'warn',
        `StaticProvider: this member's own address ${self.address} is not in the member list (${this.addresses.join(', ')}); the others will not place grains here. List every hosting member by the address it advertises.`,
      );
    }
    const probe = () => {
      for (const address of this.addresses) {
        if (address !== self.address && !this.byAddress.has(address)) member.probe(address);
      }
      if (!this.allConfirmed()) {
        this.timer = setTimeout(probe, this.probeIntervalMs);
        this.timer.unref();
      }
    };
    probe();
    this.report();
    if (!this.complete) {
      this.graceTimer = setTimeout(() => this.report(), Math.max(0, this.startupGraceMs - (Date.now() - this.startedAt)));
      this.graceTimer.unref();
    }
  }

  confirmed(address: string, peer: Member): void {
    const member = this.member;
    if (member === undefined || !this.addresses.includes(address) || address === member.self().address) return;
    for (const [other, known] of this.byAddress) {
      if (other !== address && known.id === peer.id) {
        if (!this.warned.has(address)) {
          this.warned.add(address);
          member.log(
            'warn',
            `StaticProvider: ${address} answered as member "${peer.id}", which is confirmed at ${other}; not counted. Give every member its own memberId.`,
          );
        }
        return;
      }
    }
    if (peer.id === member.self().id) {
      if (!this.warned.has(address)) {
        this.warned.add(address);
        member.log('warn', `StaticProvider: ${address} answered with this member's own id "${peer.id}"; not counted. Give every member its own memberId.`);
      }
      return;
    }
    const known = this.byAddress.get(address);
    const confirmed: Member = { id: peer.id, incarnation: peer.incarnation, address, kinds: [...peer.kinds] };
    if (known !== undefined && known.id === confirmed.id && known.incarnation === confirmed.incarnation && sameKinds(known.kinds, confirmed.kinds)) return;
    this.byAddress.set(address, confirmed);
    this.report();
  }

  /** True once every listed member has answered at least once, or the startup grace has passed. */
  get complete(): boolean {
    return this.allConfirmed() || Date.now() - this.startedAt >= this.startupGraceMs;
  }

  async shutdown(): Promise<void> {
    clearTimeout(this.timer);
    clearTimeout(this.graceTimer);
  }

  private allConfirmed(): boolean {
    const self = this.member?.self().address;
    return this.addresses.every((a) => a === self || this.byAddress.has(a));
  }

  private report(): void {
    this.member?.setMembers([...this.byAddress.values()], this.complete);
  }
}

function sameKinds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i]);
}
