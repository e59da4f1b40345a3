import type { OutboundRequest } from './envelopes.js';

/** Slots a table starts with (a power of two). */
const INITIAL_SLOTS = 64;
/** Slots a table grows to at most (a power of two); requests beyond go to the overflow map. */
export const MAX_SLOTS = 1 << 16;

/**
 * The requests written (or queued) on one stream and waiting for their responses, by id.
 *
 * NOTE: not a Map, on purpose. A Map that takes and lets go of one entry per call (what the
 * requests in flight to a busy peer do, ~200 k per second) reallocates its hash table again
 * and again, and kept the requests it had named (with their arguments and results) from dying
 * young. Our reading of why: V8 links each table a Map replaced to its successor (for live
 * iterators) without clearing it, so once one replaced table lived long enough to be
 * promoted, it kept the next ones and everything they named until a full GC. Measured on the
 * remote-call bench's member A (1,000 callers, `node --trace-gc-nvp`): with a Map, ~4 MB
 * survived each scavenge (95 % of it then promoted) and scavenges took ~5 ms every ~20 ms;
 * with this table ~0.9 MB survived, nothing was promoted, scavenges took ~1 ms, and the
 * calls/s rose by half. V8's sampling heap profiler (objects collected by minor GCs left out)
 * named the Map's tables and the requests as what survived.
 *
 * Request ids are handed out in sequence, so the ids in flight at once differ in their low
 * bits: each request goes to the slot its id's low bits name, in an array that only clears
 * the slots it lets go of. An id whose slot is taken (a request that outlived 64 Ki newer
 * ones, or a table at its largest) goes to a Map beside it, which is rarely used.
 */
export class InFlightRequests {
  private slots: (OutboundRequest | undefined)[] = emptySlots(INITIAL_SLOTS);
  private overflow: Map<number, OutboundRequest> | undefined;
  private count = 0;
  /** The id added last: `list()` orders by age from it. */
  private newest = 0;

  get size(): number {
    return this.count;
  }

  /** Track `request` under its id (already set). */
  add(request: OutboundRequest): void {
    if (this.count * 2 >= this.slots.length && this.slots.length < MAX_SLOTS) this.grow();
    this.count++;
    this.newest = request.id;
    this.place(request);
  }

  get(id: number): OutboundRequest | undefined {
    const request = this.slots[id & (this.slots.length - 1)];
    if (request !== undefined && request.id === id) return request;
    return this.overflow?.get(id);
  }

  /** Stop tracking the request with `id` and return it; undefined when none is tracked. */
  take(id: number): OutboundRequest | undefined {
    const slot = id & (this.slots.length - 1);
    const request = this.slots[slot];
    if (request !== undefined && request.id === id) {
      this.slots[slot] = undefined;
      this.count--;
      return request;
    }
    const overflow = this.overflow;
    const other = overflow?.get(id);
    if (other === undefined) return undefined;
    overflow!.delete(id);
    if (overflow!.size === 0) this.overflow = undefined;
    this.count--;
    return other;
  }

  /**
   * Every request tracked, oldest first (the order they were sent in: requests failed together
   * are sent on in it, so one caller's calls keep their order). A copy: the table may change
   * while it is read. NOTE: ids wrap at 2^32, so the order is by distance back from the newest.
   */
  list(): OutboundRequest[] {
    const requests: OutboundRequest[] = [];
    for (const request of this.slots) if (request !== undefined) requests.push(request);
    if (this.overflow !== undefined) for (const request of this.overflow.values()) requests.push(request);
    const after = this.newest + 1;
    return requests.sort((a, b) => ((a.id - after) >>> 0) - ((b.id - after) >>> 0));
  }

  clear(): void {
    this.slots = emptySlots(INITIAL_SLOTS);
    this.overflow = undefined;
    this.count = 0;
  }

  private place(request: OutboundRequest): void {
    const slot = request.id & (this.slots.length - 1);
    if (this.slots[slot] === undefined) this.slots[slot] = request;
    else (this.overflow ??= new Map()).set(request.id, request);
  }

  private grow(): void {
    const slots = this.slots;
    const overflow = this.overflow;
    this.slots = emptySlots(slots.length * 2);
    this.overflow = undefined;
    for (const request of slots) if (request !== undefined) this.place(request);
    if (overflow !== undefined) for (const request of overflow.values()) this.place(request);
  }
}

function emptySlots(n: number): (OutboundRequest | undefined)[] {
  return new Array<OutboundRequest | undefined>(n).fill(undefined);
}
