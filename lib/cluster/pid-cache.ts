import type { Pid } from '../actor/pid.js';

/** @default size of the actor cache */
export const DEFAULT_PID_CACHE_SIZE = 100_000;

/**
 * Where grains hosted by other members live: `kind/identity` → Pid, so a call to a remote
 * grain needs no lookup. Bounded (the oldest entry goes first); dropped on "not here", on an
 * unknown outcome, and when a member's incarnation changes.
 */
export class PidCache {
  private readonly pids = new Map<string, Pid>();
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
      if (oldest !== undefined) this.pids.delete(oldest);
    }
    this.pids.set(key, pid);
  }

  delete(key: string): void {
    this.pids.delete(key);
  }

  /** Forget every Pid of `memberId` not of `incarnation` (all of them when omitted). */
  dropMember(memberId: string, incarnation?: string): void {
    for (const [key, pid] of this.pids) {
      if (pid.memberId === memberId && (incarnation === undefined || pid.incarnation !== incarnation)) this.pids.delete(key);
    }
  }

  clear(): void {
    this.pids.clear();
  }

  get size(): number {
    return this.pids.size;
  }
}
