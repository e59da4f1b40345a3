import { SpanKind } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import type { Cluster } from 'nestjs-grains';
import { startCluster } from '../support/cluster.js';
import { EchoGrain as BaseEchoGrain } from './echo-grain.js';
import { registerSdk, type TestSdk } from './sdk.js';

let sdk: TestSdk | undefined;
let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.shutdown();
  await sdk?.shutdown();
  cluster = sdk = undefined;
});

const clusters: Cluster[] = [];

class EchoGrain extends BaseEchoGrain {
  /** Starts a periodic timer whose ticks call another grain. */
  start(): void {
    this.ctx.startTimer(() => clusters[0]!.client<EchoGrain>('echo').get('other').echo('tick'), { due: 5, period: 5 });
  }
}

describe('telemetry never gets in a call’s way', () => {
  for (const when of ['start', 'end'] as const) {
    it(`a span processor that throws on ${when}: calls still settle, on time, with their own outcome`, async () => {
      sdk = registerSdk({ throwing: when });
      ({ cluster } = await startCluster([{ name: 'echo', grainClass: EchoGrain }], { requestTimeout: 500 }));
      const ref = cluster.client<EchoGrain>('echo').get('a');
      await expect(ref.echo('hi')).resolves.toBe('hi');
      await expect(ref.fail()).rejects.toMatchObject({ name: 'GrainInvocationError' });
      await expect(ref.echo('again')).resolves.toBe('again');
    });
  }

  it('timer ticks run outside the trace of the turn that started the timer', async () => {
    sdk = registerSdk();
    ({ cluster } = await startCluster([{ name: 'echo', grainClass: EchoGrain }]));
    clusters[0] = cluster;
    await cluster.client<EchoGrain>('echo').get('timed').start();
    await new Promise((r) => setTimeout(r, 80));
    const spans = sdk.spans();
    const start = spans.find((s) => s.name === 'echo/start' && s.kind === SpanKind.SERVER)!;
    const ticks = spans.filter((s) => s.name === 'echo/echo' && s.kind === SpanKind.CLIENT);
    expect(ticks.length).toBeGreaterThan(2);
    for (const tick of ticks) expect(tick.spanContext().traceId).not.toBe(start.spanContext().traceId);
  });
});
