import type { Pid } from '../actor/pid.js';

/** @default size of the actor cache */
export const DEFAULT_PID_CACHE_SIZE = 100_000;

/**
 * Where grains hosted by other members live: `kind/identity` → Pid, so a call to a remote
 * grain needs no lookup. Bounded (the oldest entry goes first); dropped on "not here", on a
 * lost connection (every Pid at that address), and when a member's incarnation changes.
 */
export class PidCache {
  private readonly pids = new Map<string, Pid>();
  /** Keys by address, so a failed peer's entries go without scanning the whole cache. */
  private readonly byAddress = new Map<string, Set<string>>();
  hits = 0;
  misses = 0;

  constructor(private readonly maxSize = DEFAULT_PID_CACHE_SIZE) {}

  get(key: string): Pid | undefined {
    const pid = this.pids.get(key);
    if (pid === undefined) this.misses++;
    else this.hits++;
    return pid;
  }

  set(key: string, pid: Pid): void {
    if (this.pids.size >= this.maxSize && !this.pids.has(key)) {
      const oldest = this.pids.keys().next().value;
      if (oldest !== undefined) this.delete(oldest);
    }
    this.delete(key);
    this.pids.set(key, pid);
    const address = pid.address ?? '';
    let keys = this.byAddress.get(address);
    if (keys === undefined) this.byAddress.set(address, (keys = new Set()));
    keys.add(key);
  }

  delete(key: string): void {
    const pid = this.pids.get(key);
    if (pid === undefined) return;
    this.pids.delete(key);
    const address = pid.address ?? '';
    const keys = this.byAddress.get(address);
    keys?.delete(key);
    if (keys?.size === 0) this.byAddress.delete(address);
  }

  /** Forget every Pid at `address`. */
  dropAddress(address: string): void {
    const keys = this.byAddress.get(address);
    if (keys === undefined) return;
    this.byAddress.delete(address);
    for (const key of keys) this.pids.delete(key);
  }

  /** Forget every Pid of `memberId` not of `incarnation` (all of them when omitted). */
  dropMember(memberId: string, incarnation?: string): void {
    for (const [key, pid] of this.pids) {
      if (pid.memberId === memberId && (incarnation === undefined || pid.incarnation !== incarnation)) this.delete(key);
    }
  }

  clear(): void {
    this.pids.clear();
    this.byAddress.clear();
  }

  get size(): number {
    return this.pids.size;
  }
}
