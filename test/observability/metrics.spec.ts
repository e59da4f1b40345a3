import { afterEach, describe, expect, it } from 'vitest';
import { outcome, sleep } from '../support/cluster.js';
import { type InProcessCluster, startMembers } from '../support/in-process-cluster.js';
import { EchoGrain as BaseEchoGrain } from './echo-grain.js';
import { type HistogramPoint, registerSdk, type TestSdk, withAttributes } from './sdk.js';

class EchoGrain extends BaseEchoGrain {
  async slow(ms: number): Promise<void> {
    await sleep(ms);
  }
}

const RPC = { 'rpc.system': 'nestjs-grains', 'rpc.service': 'echo' };

/** The histogram points of `name` for `method` (and `errorType`; none: successes), summed over every point that matches. */
async function calls(sdk: TestSdk, name: string, method: string, errorType?: string): Promise<{ count: number; sum: number }> {
  const points = withAttributes(await sdk.points<HistogramPoint['value']>(name), { ...RPC, 'rpc.method': method }).filter(
    (p) => p.attributes['error.type'] === errorType,
  );
  return { count: points.reduce((n, p) => n + p.value.count, 0), sum: points.reduce((n, p) => n + (p.value.sum ?? 0), 0) };
}

describe('metrics of grain calls (an SDK with a reader collected on demand)', () => {
  let sdk: TestSdk | undefined;
  let cluster: InProcessCluster | undefined;

  afterEach(async () => {
    await cluster?.shutdown();
    await sdk?.shutdown();
    cluster = sdk = undefined;
  });

  async function twoMembers(name: string): Promise<InProcessCluster> {
    return (cluster = await startMembers([{ kinds: [], clientOnly: true }, { kinds: [{ name: 'echo', grainClass: EchoGrain }] }], name));
  }

  it('counts calls per kind and method, errors by code, and their durations on both sides', async () => {
    sdk = registerSdk();
    const { members } = await twoMembers('otel-metrics');
    const echo = members[0]!.client<EchoGrain>('echo');
    for (let i = 0; i < 3; i++) expect(await echo.get(`e${i}`).echo('x')).toBe('x');
    for (let i = 0; i < 2; i++) expect((await outcome(echo.get('e0').fail())).ok).toBe(false);
    const untyped = echo.get('e0') as unknown as { nope(): Promise<unknown> };
    await expect(untyped.nope()).rejects.toMatchObject({ code: 'GRAIN_METHOD_NOT_CALLABLE' });
    await expect(echo.get('e1', { timeout: 50 }).slow(300)).rejects.toMatchObject({ code: 'GRAIN_TIMEOUT' });

    const client = 'rpc.client.duration';
    const server = 'rpc.server.duration';
    expect(await calls(sdk, client, 'echo')).toMatchObject({ count: 3 });
    expect((await calls(sdk, client, 'echo')).sum).toBeGreaterThan(0);
    expect(await calls(sdk, client, 'fail', 'GRAIN_INVOCATION_FAILED')).toMatchObject({ count: 2 });
    expect(await calls(sdk, client, 'nope', 'GRAIN_METHOD_NOT_CALLABLE')).toMatchObject({ count: 1 });
    expect(await calls(sdk, client, 'slow', 'GRAIN_TIMEOUT')).toMatchObject({ count: 1 });
    expect(await calls(sdk, server, 'echo')).toMatchObject({ count: 3 });
    expect(await calls(sdk, server, 'fail', 'GRAIN_INVOCATION_FAILED')).toMatchObject({ count: 2 });
    // Refused before it was served (its method is not callable there): the callee records nothing.
    expect(await calls(sdk, server, 'nope', 'GRAIN_METHOD_NOT_CALLABLE')).toMatchObject({ count: 0 });
    // The callee runs its turn past the deadline: its side of the call timed out too.
    let timedOut = 0;
    for (let i = 0; i < 100 && timedOut === 0; i++, await sleep(10)) timedOut = (await calls(sdk, server, 'slow', 'GRAIN_TIMEOUT')).count;
    expect(timedOut).toBe(1);

    const metrics = await sdk.collect();
    const durations = metrics.find((m) => m.descriptor.name === client)!;
    expect(durations.descriptor.unit).toBe('ms');
    // Bounded attributes: never the identity.
    for (const metric of metrics) for (const point of metric.dataPoints) expect(Object.keys(point.attributes)).not.toContain('nestjs_grains.identity');
  });

  it('observes activations and mailbox depth per kind, and counts batch frames', async () => {
    sdk = registerSdk();
    const { members } = await twoMembers('otel-gauges');
    const echo = members[0]!.client<EchoGrain>('echo');
    await Promise.all(['g1', 'g2', 'g3'].map((id) => echo.get(id).echo('x')));
    expect(withAttributes(await sdk.points('nestjs_grains.activations'), { 'nestjs_grains.kind': 'echo' }).map((p) => p.value)).toEqual([3]);

    const slow = echo.get('g1').slow(300);
    const queued = echo.get('g1').echo('behind the slow call');
    const depth = async () => withAttributes(await sdk!.points('nestjs_grains.mailbox.depth'), { 'nestjs_grains.kind': 'echo' })[0]?.value ?? -1;
    // The echo waits behind the slow call: one call queued (the running one is not).
    let seen = 0;
    for (let i = 0; i < 50 && seen < 1; i++, await sleep(5)) seen = await depth();
    expect(seen).toBe(1);
    await Promise.all([slow, queued]);
    expect(await depth()).toBe(0);

    const size = await sdk.points<HistogramPoint['value']>('nestjs_grains.remote.frame.size');
    const envelopes = await sdk.points<HistogramPoint['value']>('nestjs_grains.remote.frame.envelopes');
    const frames = size.reduce((n, p) => n + p.value.count, 0);
    // 5 calls, each a request and a response, in as many frames or fewer.
    expect(frames).toBeGreaterThan(0);
    expect(envelopes.reduce((n, p) => n + (p.value.sum ?? 0), 0)).toBe(10);
    expect(envelopes.reduce((n, p) => n + p.value.count, 0)).toBe(frames);
    expect(size.reduce((n, p) => n + (p.value.sum ?? 0), 0)).toBeGreaterThan(frames * 10);
  });
});
