import { metrics, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import type { GrainContext } from 'nestjs-grains';
import { CallTelemetry } from '../../lib/observability/call-telemetry.js';
import { sdkMeter, sdkTracer } from '../../lib/observability/scope.js';
import { type InProcessCluster, startMembers } from '../support/in-process-cluster.js';
import { registerSdk, type TestSdk } from './sdk.js';

class EchoGrain {
  constructor(readonly ctx: GrainContext) {}
  echo(text: string): string {
    return text;
  }
}

describe('without an OpenTelemetry SDK', () => {
  let cluster: InProcessCluster | undefined;
  let sdk: TestSdk | undefined;

  afterEach(async () => {
    await cluster?.shutdown();
    await sdk?.shutdown();
    cluster = sdk = undefined;
  });

  it('finds no tracer or meter, so calls carry no telemetry (the API alone makes non-recording spans)', () => {
    expect(sdkTracer()).toBeUndefined();
    expect(sdkMeter()).toBeUndefined();
    expect(new CallTelemetry().on).toBe(false);
    expect(trace.getTracer('nestjs-grains').startSpan('x').isRecording()).toBe(false);
  });

  it('serves calls between members, and exports nothing of them', async () => {
    cluster = await startMembers([{ kinds: [], clientOnly: true }, { kinds: [{ name: 'echo', grainClass: EchoGrain }] }], 'otel-none');
    // NOTE: an SDK registered after the members were made is not theirs (docs/observability.md):
    // register it before creating the cluster.
    sdk = registerSdk();
    const echo = cluster.members[0]!.client<EchoGrain>('echo');
    for (let i = 0; i < 5; i++) expect(await echo.get(`n${i}`).echo('x')).toBe('x');
    expect(sdk.spans()).toEqual([]);
    expect(await sdk.collect()).toEqual([]);
    expect(metrics.getMeterProvider()).toBeDefined();
  });
});
