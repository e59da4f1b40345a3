import { type Duration, toMs } from '../duration.js';
import { GrainConfigurationError } from '../errors.js';
import type { ClusterProvider, Member, ProviderMember } from './cluster-provider.js';
import { quote } from '../../remote/peer-log.js';

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
 * is refused (two addresses cannot both be one member) unless the member there said it was
 * leaving. A member that leaves gracefully is probed again until its next incarnation
 * answers. Members are never removed: one that is down stays a member whose calls fail until
 * it is back.
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
  /** The startup grace has passed (or was 0). */
  private graceOver = false;
  /** Addresses whose confirmed member said it is leaving: probed again until another incarnation answers. */
  private readonly reprobe = new Set<string>();
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
    const self = member.self();
    if (self.address !== '' && !this.addresses.includes(self.address)) {
      member.log(
        'warn',
        `StaticProvider: this member's own address ${self.address} is not in the member list (${this.addresses.join(', ')}); the others will not place grains here. List every hosting member by the address it advertises.`,
      );
    }
    this.graceOver = this.startupGraceMs === 0;
    this.probe();
    this.report();
    if (!this.complete) {
      // NOTE: a flag, not a clock comparison: a timer may fire a millisecond before Date.now()
      // says the grace has passed, and the membership would then never count as complete.
      this.graceTimer = setTimeout(() => {
        this.graceOver = true;
        this.report();
      }, this.startupGraceMs);
      this.graceTimer.unref();
    }
  }

  confirmed(address: string, peer: Member, leaving = false): void {
    const member = this.member;
    if (member === undefined || !this.addresses.includes(address) || address === member.self().address) return;
    const known = this.byAddress.get(address);
    if (leaving && known !== undefined && known.id === peer.id && known.incarnation === peer.incarnation) {
      // NOTE: the member there is leaving: it stays listed (placement leaves it out), and its
      // address is probed again until its next incarnation answers (a restart is learned).
      if (!this.reprobe.has(address)) {
        this.reprobe.add(address);
        this.probe();
      }
      return;
    }
    for (const [other, confirmed] of this.byAddress) {
      if (other === address || confirmed.id !== peer.id) continue;
      if (this.reprobe.has(other)) {
        // NOTE: the member left that address (it said so): it may come back at this one.
        this.byAddress.delete(other);
        continue;
      }
      if (!this.warned.has(address)) {
        this.warned.add(address);
        member.log(
          'warn',
          `StaticProvider: ${address} answered as member ${quote(peer.id)}, which is confirmed at ${other}; not counted. Give every member its own memberId.`,
        );
      }
      return;
    }
    if (peer.id === member.self().id) {
      if (!this.warned.has(address)) {
        this.warned.add(address);
        member.log('warn', `StaticProvider: ${address} answered with this member's own id ${quote(peer.id)}; not counted. Give every member its own memberId.`);
      }
      return;
    }
    const confirmed: Member = { id: peer.id, incarnation: peer.incarnation, address, kinds: [...peer.kinds] };
    if (leaving) this.reprobe.add(address);
    else this.reprobe.delete(address);
    if (known !== undefined && known.id === confirmed.id && known.incarnation === confirmed.incarnation && sameKinds(known.kinds, confirmed.kinds)) return;
    this.byAddress.set(address, confirmed);
    this.report();
    if (this.reprobe.size > 0) this.probe();
  }

  /** True once every listed member has answered at least once, or the startup grace has passed. */
  get complete(): boolean {
    return this.allConfirmed() || this.graceOver;
  }

  async shutdown(): Promise<void> {
    clearTimeout(this.timer);
    clearTimeout(this.graceTimer);
    this.member = undefined;
  }

  /** Dial every listed address not confirmed yet (or whose member left), again every probeInterval until none is left. */
  private probe(): void {
    const member = this.member;
    if (member === undefined || this.timer !== undefined) return;
    const self = member.self().address;
    const pending = this.addresses.filter((a) => a !== self && (!this.byAddress.has(a) || this.reprobe.has(a)));
    for (const address of pending) member.probe(address);
    if (pending.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.probe();
    }, this.probeIntervalMs);
    this.timer.unref();
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
