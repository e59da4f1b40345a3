/**
 * Where nestjs-grains meets OpenTelemetry: the instrumentation scope its tracer and meter are
 * made under (name `nestjs-grains`, the package version), and whether an SDK records at all.
 *
 * Everything goes through `@opentelemetry/api`, which does nothing until the application
 * registers an SDK. A member looks when it is created and remembers what it found: without an
 * SDK its calls carry no telemetry at all (no span objects, no clock reads, no attributes).
 * NOTE: the metrics API never hands a meter obtained before an SDK was registered over to it
 * (unlike the trace API's proxy), so an application registers its SDK before it creates the
 * cluster (before `NestFactory.create`), as OpenTelemetry's own guides say for every library.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNoopMeter, type Meter, metrics, ProxyTracerProvider, trace, type Tracer } from '@opentelemetry/api';

/** The instrumentation scope's name: what a tracer and a meter of this package are called. */
export const INSTRUMENTATION_NAME = 'nestjs-grains';

/** The instrumentation scope's version: the package's own. */
export const INSTRUMENTATION_VERSION = packageVersion();

/** The tracer of the SDK registered now, or undefined when none is (then nothing makes spans). */
export function sdkTracer(): Tracer | undefined {
  const provider = trace.getTracerProvider();
  // NOTE: the API's provider is a proxy; its delegate is the SDK's, undefined without one.
  if (provider instanceof ProxyTracerProvider) return provider.getDelegateTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
  return provider.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
}

/** The meter of the SDK registered now, or undefined when none is (then nothing records metrics). */
export function sdkMeter(): Meter | undefined {
  const meter = metrics.getMeter(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
  // NOTE: without a MeterProvider the API hands out its one no-op meter.
  return meter === createNoopMeter() ? undefined : meter;
}

/** The version in the package's package.json, found by walking up (lib/ in tests, dist/lib/ when built). */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'nestjs-grains' && typeof pkg.version === 'string') return pkg.version;
    }
    dir = dirname(dir);
  }
  return '0.0.0';
}
