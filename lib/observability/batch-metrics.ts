/**
 * Metrics of the remote transport: each batch frame written to a peer's stream, its size in
 * bytes and the envelopes (requests and responses) in it. Their counts are the frames written.
 */
import type { Histogram, Meter } from '@opentelemetry/api';
import { FRAME_ENVELOPES_BUCKETS, FRAME_SIZE_BUCKETS, METRIC } from './names.js';
import { sdkMeter } from './scope.js';

/** Records the batch frames a writer writes. */
export class BatchMetrics {
  private readonly size: Histogram;
  private readonly envelopes: Histogram;

  constructor(meter: Meter) {
    this.size = meter.createHistogram(METRIC.frameSize, {
      unit: 'By',
      description: 'Batch frames written to peers’ streams, in bytes.',
      advice: { explicitBucketBoundaries: FRAME_SIZE_BUCKETS },
    });
    this.envelopes = meter.createHistogram(METRIC.frameEnvelopes, {
      unit: '{envelope}',
      description: 'Envelopes (requests and responses) per batch frame written.',
      advice: { explicitBucketBoundaries: FRAME_ENVELOPES_BUCKETS },
    });
  }

  /** A frame of `bytes` bytes holding `envelopes` envelopes was handed to a stream. */
  written(bytes: number, envelopes: number): void {
    this.size.record(bytes);
    this.envelopes.record(envelopes);
  }
}

let cached: { readonly meter: Meter; readonly metrics: BatchMetrics } | undefined;

/** The batch metrics of the SDK registered now (shared by every writer), or undefined without one. */
export function batchMetrics(): BatchMetrics | undefined {
  const meter = sdkMeter();
  if (meter === undefined) return undefined;
  if (cached?.meter !== meter) cached = { meter, metrics: new BatchMetrics(meter) };
  return cached.metrics;
}
