import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import type { Cluster, GrainContext } from 'nestjs-grains';
import { startCluster } from '../support/cluster.js';
import { type InProcessCluster, startMembers } from '../support/in-process-cluster.js';
import { EchoGrain } from './echo-grain.js';
import { registerSdk, type TestSdk } from './sdk.js';

/** Each member's cluster, by member id: how a grain reaches the clients of its own member. */
const clusters = new Map<string, Cluster>();

/** a → b → c, each on its own member. */
class AGrain {
  constructor(readonly ctx: GrainContext) {}
  async run(text: string): Promise<string> {
    return `a>${await clusters.get(this.ctx.memberId)!.client<BGrain>('b').get(this.ctx.identity).run(text)}`;
  }
}
class BGrain {
  constructor(readonly ctx: GrainContext) {}
  async run(text: string): Promise<string> {
    return `b>${await clusters.get(this.ctx.memberId)!.client<CGrain>('c').get(this.ctx.identity).run(text)}`;
  }
}
class CGrain {
  constructor(readonly ctx: GrainContext) {}
  run(text: string): string {
    return `c>${text}`;
  }
}

const named = (spans: ReadableSpan[], name: string, kind: SpanKind) => {
  const found = spans.filter((s) => s.name === name && s.kind === kind);
  expect(found, `${name} ${SpanKind[kind]}`).toHaveLength(1);
  return found[0]!;
};
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe('tracing grain calls (an SDK with an in-memory exporter)', () => {
  let sdk: TestSdk | undefined;
  let cluster: InProcessCluster | undefined;
  let local: Cluster | undefined;

  afterEach(async () => {
    await cluster?.shutdown();
    await local?.shutdown();
    await sdk?.shutdown();
    cluster = local = sdk = undefined;
    clusters.clear();
  });

  it('gives a call between two members a CLIENT span on the caller and a SERVER span on the callee, in one trace', async () => {
    sdk = registerSdk();
    cluster = await startMembers([{ kinds: [], clientOnly: true }, { kinds: [{ name: 'echo', grainClass: EchoGrain }] }], 'otel-two');
    const [caller, callee] = cluster.members;
    expect(await caller!.client<EchoGrain>('echo').get('e1').echo('hi')).toBe('hi');

    const spans = sdk.spans();
    const client = named(spans, 'echo/echo', SpanKind.CLIENT);
    const server = named(spans, 'echo/echo', SpanKind.SERVER);
    expect(server.spanContext().traceId).toBe(client.spanContext().traceId);
    expect(parentOf(server)).toBe(client.spanContext().spanId);
    expect(server.parentSpanContext?.isRemote).toBe(true);
    expect(parentOf(client)).toBeUndefined(); // called from outside any span: the root
    for (const span of [client, server]) {
      expect(span.attributes).toMatchObject({ 'rpc.system': 'nestjs-grains', 'rpc.service': 'echo', 'rpc.method': 'echo', 'nestjs_grains.identity': 'e1' });
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
      expect(span.instrumentationScope.name).toBe('nestjs-grains');
    }
    const [host, port] = callee!.remoteAddress.split(':');
    expect(client.attributes).toMatchObject({ 'server.address': host, 'server.port': Number(port) });
  });

  it('makes one trace of a chain A → B → C across three members, under the caller’s own span', async () => {
    sdk = registerSdk();
    cluster = await startMembers(
      [{ kinds: [{ name: 'a', grainClass: AGrain }] }, { kinds: [{ name: 'b', grainClass: BGrain }] }, { kinds: [{ name: 'c', grainClass: CGrain }] }],
      'otel-chain',
    );
    for (const member of cluster.members) clusters.set(member.memberId, member);
    const tracer = trace.getTracer('the-app');
    // The application's span (an HTTP request, say), active while it calls the grain.
    const result = await tracer.startActiveSpan('GET /chain', async (root) => {
      try {
        return await cluster!.members[0]!.client<AGrain>('a').get('x').run('!');
      } finally {
        root.end();
      }
    });
    expect(result).toBe('a>b>c>!');

    const spans = sdk.spans();
    const root = spans.find((s) => s.name === 'GET /chain')!;
    const chain = [
      named(spans, 'a/run', SpanKind.CLIENT),
      named(spans, 'a/run', SpanKind.SERVER),
      named(spans, 'b/run', SpanKind.CLIENT),
      named(spans, 'b/run', SpanKind.SERVER),
      named(spans, 'c/run', SpanKind.CLIENT),
      named(spans, 'c/run', SpanKind.SERVER),
    ];
    expect(new Set([root, ...chain].map((s) => s.spanContext().traceId)).size).toBe(1);
    let parent = root;
    for (const span of chain) {
      expect(parentOf(span), span.name).toBe(parent.spanContext().spanId);
      parent = span;
    }
    // NOTE: a is local to the caller (member 0); b and c are each another member's.
    expect(chain[0]!.attributes['server.address']).toBeUndefined();
    expect(chain[2]!.attributes['server.port']).toBe(Number(cluster.members[1]!.remoteAddress.split(':')[1]));
    expect(chain[4]!.attributes['server.port']).toBe(Number(cluster.members[2]!.remoteAddress.split(':')[1]));
  });

  it('traces calls on one member too, and keeps a chain one trace without a context manager', async () => {
    sdk = registerSdk({ contextManager: false });
    local = (
      await startCluster([
        { name: 'a', grainClass: AGrain },
        { name: 'b', grainClass: BGrain },
        { name: 'c', grainClass: CGrain },
      ])
    ).cluster;
    clusters.set(local.memberId, local);
    expect(await local.client<AGrain>('a').get('y').run('.')).toBe('a>b>c>.');

    const spans = sdk.spans();
    expect(spans).toHaveLength(6);
    expect(new Set(spans.map((s) => s.spanContext().traceId)).size).toBe(1);
    const server = named(spans, 'b/run', SpanKind.SERVER);
    expect(parentOf(server)).toBe(named(spans, 'b/run', SpanKind.CLIENT).spanContext().spanId);
    expect(server.parentSpanContext?.isRemote).toBeFalsy();
    // The turn of a/run makes the call to b: its SERVER span is the parent, found through the turn.
    expect(parentOf(named(spans, 'b/run', SpanKind.CLIENT))).toBe(named(spans, 'a/run', SpanKind.SERVER).spanContext().spanId);
  });

  it('records no span of a chain whose trace is not sampled, on one member or across members', async () => {
    sdk = registerSdk({ sampled: false });
    cluster = await startMembers(
      [{ kinds: [{ name: 'a', grainClass: AGrain }] }, { kinds: [{ name: 'b', grainClass: BGrain }] }, { kinds: [{ name: 'c', grainClass: CGrain }] }],
      'otel-unsampled',
    );
    for (const member of cluster.members) clusters.set(member.memberId, member);
    expect(await cluster.members[0]!.client<AGrain>('a').get('z').run('-')).toBe('a>b>c>-');
    expect(sdk.spans()).toEqual([]);
  });

  it('marks both spans of a call whose grain threw as errors, with the error code', async () => {
    sdk = registerSdk();
    cluster = await startMembers([{ kinds: [], clientOnly: true }, { kinds: [{ name: 'echo', grainClass: EchoGrain }] }], 'otel-error');
    await expect(cluster.members[0]!.client<EchoGrain>('echo').get('e2').fail()).rejects.toMatchObject({ code: 'GRAIN_INVOCATION_FAILED' });

    const spans = sdk.spans();
    for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
      const span = named(spans, 'echo/fail', kind);
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.status.message).toContain('the grain threw');
      expect(span.attributes['error.type']).toBe('GRAIN_INVOCATION_FAILED');
    }
  });
});
