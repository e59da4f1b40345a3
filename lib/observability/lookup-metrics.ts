/**
 * Metrics of the Redis identity lookup: each round trip of a claim, resolve or release
 * script, timed, with what it answered (a fixed set) or the error it failed with.
 */
import type { Attributes, Histogram } from '@opentelemetry/api';
import { now } from '../actor/clock.js';
import { ATTR, LOOKUP_DURATION_BUCKETS_MS, METRIC, OTHER_ERROR } from './names.js';
import { sdkMeter } from './scope.js';

/** The lookup's scripts that run on a call's path. */
export type LookupScript = 'claim' | 'resolve' | 'release';

/** What claim.lua and resolve.lua answer first; anything else is `_OTHER`. */
const REPLIES: ReadonlySet<string> = new Set(['CLAIMED', 'OWNED', 'NONE', 'GEN', 'NOLEASE', 'ERR']);

/** The round trips of one member's lookup. */
export class LookupMetrics {
  private readonly duration: Histogram | undefined;
  private readonly attributes = new Map<string, Attributes>();

  constructor() {
    const meter = sdkMeter();
    this.duration = meter?.createHistogram(METRIC.lookupDuration, {
      unit: 'ms',
      description: 'Round trips of the Redis identity lookup (claim, resolve and release scripts).',
      advice: { explicitBucketBoundaries: LOOKUP_DURATION_BUCKETS_MS },
    });
  }

  /** When a round trip starts: now, or 0 without an SDK (then nothing reads the clock). */
  start(): number {
    return this.duration === undefined ? 0 : now();
  }

  /** A round trip of `script` begun at `started` ended: answered `reply` (claim, resolve), or failed with `errorType`. */
  ended(script: LookupScript, started: number, reply: string | undefined, errorType?: string): void {
    if (this.duration === undefined) return;
    const answer = reply === undefined ? '' : REPLIES.has(reply) ? reply : OTHER_ERROR;
    const key = `${script}/${answer}/${errorType ?? ''}`;
    let attributes = this.attributes.get(key);
    if (attributes === undefined) {
      attributes = Object.freeze({
        [ATTR.lookupScript]: script,
        ...(answer !== '' && { [ATTR.lookupReply]: answer }),
        ...(errorType !== undefined && { [ATTR.errorType]: errorType }),
      });
      this.attributes.set(key, attributes);
    }
    this.duration.record(now() - started, attributes);
  }
}
