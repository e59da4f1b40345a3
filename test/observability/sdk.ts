/**
 * An OpenTelemetry SDK for tests, registered globally as an application would: a tracer
 * provider exporting to memory, a meter provider read on demand, and optionally the
 * AsyncLocalStorage context manager and the W3C propagator (what NodeSDK registers).
 * `shutdown()` unregisters everything, so the next test starts with no SDK.
 */
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { type DataPoint, type Histogram, MeterProvider, type MetricData, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/** A reader that exports nothing by itself: the test collects when it wants to look. */
class CollectingReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

export interface TestSdk {
  /** Spans ended so far. */
  spans(): ReadableSpan[];
  /** The metrics of the `nestjs-grains` scope now (cumulative). */
  collect(): Promise<MetricData[]>;
  /** The data points of metric `name` now; [] when it has none. */
  points<T = number>(name: string): Promise<Array<DataPoint<T>>>;
  shutdown(): Promise<void>;
}

export interface SdkParts {
  /** The AsyncLocalStorage context manager (NodeSDK registers it). @default true */
  contextManager?: boolean;
  /** @default true */
  tracing?: boolean;
  /** @default true */
  metrics?: boolean;
  /** Sample new traces (ParentBased: children follow their parent). @default true */
  sampled?: boolean;
  /** A span processor that throws when a span starts or ends (an application's buggy processor or exporter). */
  throwing?: 'start' | 'end';
}

/** A span processor that throws from onStart or onEnd, as a buggy one of an application's might. */
class ThrowingProcessor implements SpanProcessor {
  constructor(private readonly when: 'start' | 'end') {}
  onStart(): void {
    if (this.when === 'start') throw new Error('processor failed on start');
  }
  onEnd(): void {
    if (this.when === 'end') throw new Error('processor failed on end');
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

export function registerSdk(parts: SdkParts = {}): TestSdk {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter), ...(parts.throwing !== undefined ? [new ThrowingProcessor(parts.throwing)] : [])],
    ...(parts.sampled === false && { sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }) }),
  });
  const reader = new CollectingReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const contextManager = new AsyncLocalStorageContextManager();
  if (parts.tracing !== false) trace.setGlobalTracerProvider(tracerProvider);
  if (parts.metrics !== false) metrics.setGlobalMeterProvider(meterProvider);
  if (parts.contextManager !== false) context.setGlobalContextManager(contextManager.enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const collect = async (): Promise<MetricData[]> => {
    const { resourceMetrics } = await reader.collect();
    return resourceMetrics.scopeMetrics.filter((s) => s.scope.name === 'nestjs-grains').flatMap((s) => s.metrics);
  };
  return {
    spans: () => exporter.getFinishedSpans(),
    collect,
    points: async <T>(name: string) => ((await collect()).find((m) => m.descriptor.name === name)?.dataPoints ?? []) as Array<DataPoint<T>>,
    shutdown: async () => {
      trace.disable();
      metrics.disable();
      context.disable();
      propagation.disable();
      contextManager.disable();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

/** A histogram point's count and sum. */
export type HistogramPoint = DataPoint<Histogram>;

/** The points whose attributes include every entry of `attributes`. */
export function withAttributes<T>(points: Array<DataPoint<T>>, attributes: Record<string, unknown>): Array<DataPoint<T>> {
  return points.filter((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v));
}
