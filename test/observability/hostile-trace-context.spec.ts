import { SpanKind } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import type { GrainContext } from 'nestjs-grains';
import { Status } from '../../lib/remote/wire.js';
import { type InProcessCluster, startMembers } from '../support/in-process-cluster.js';
import { codec, handshake, RawPeer, requestBatch } from '../support/raw-peer.js';
import { registerSdk, type TestSdk } from './sdk.js';

class EchoGrain {
  constructor(readonly ctx: GrainContext) {}
  echo(text: string): string {
    return text;
  }
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const VALID = `00-${TRACE_ID}-${SPAN_ID}-01`;

/** What a peer sends as trace context, and whether the member should continue its trace. */
const CASES: Array<{ id: number; what: string; traceparent: string; tracestate?: string; continues: boolean; tracestateKept?: boolean }> = [
  { id: 1, what: 'a valid traceparent and tracestate', traceparent: VALID, tracestate: 'vendor=abc', continues: true, tracestateKept: true },
  // NOTE: a later version may add fields after the flags; this one would parse, but is over the bound.
  { id: 2, what: 'a traceparent of 100,000 characters', traceparent: `01${VALID.slice(2)}-${'f'.repeat(100_000)}`, continues: false },
  { id: 3, what: 'a malformed traceparent of the right length', traceparent: `zz-${TRACE_ID}-${SPAN_ID}-01`, continues: false },
  { id: 4, what: 'an all-zero trace id', traceparent: `00-${'0'.repeat(32)}-${SPAN_ID}-01`, continues: false },
  { id: 5, what: 'control characters', traceparent: `00-${TRACE_ID}-${SPAN_ID}-\n1`, continues: false },
  {
    id: 6,
    what: 'a tracestate of 600 characters (dropped, the traceparent kept)',
    traceparent: VALID,
    tracestate: `v=${'x'.repeat(598)}`,
    continues: true,
    tracestateKept: false,
  },
  { id: 7, what: 'no trace context', traceparent: '', continues: false },
];

describe('trace context from a peer', () => {
  let cluster: InProcessCluster | undefined;
  let sdk: TestSdk | undefined;
  let peer: RawPeer | undefined;

  afterEach(async () => {
    peer?.close();
    await cluster?.shutdown();
    await sdk?.shutdown();
    peer = cluster = sdk = undefined;
  });

  it('serves every call, continuing only a trace context that is valid and within W3C’s lengths', async () => {
    sdk = registerSdk();
    cluster = await startMembers([{ kinds: [{ name: 'echo', grainClass: EchoGrain }] }], 'otel-hostile');
    peer = new RawPeer(cluster.members[0]!.remoteAddress);
    expect((await peer.handshake(handshake('otel-hostile'))).accepted).toBe(true);
    const frame = requestBatch(CASES.map((c) => ({ id: c.id, kind: 'echo', identity: `h${c.id}`, method: 'echo', args: [c.what] })));
    if (!('batch' in frame)) throw new Error('not a batch');
    frame.batch.requests.forEach((request, i) => {
      request.traceparent = CASES[i]!.traceparent;
      request.tracestate = CASES[i]!.tracestate ?? '';
    });
    peer.send(frame);
    const responses = await peer.waitResponses(CASES.map((c) => c.id));

    const servers = sdk.spans().filter((s) => s.kind === SpanKind.SERVER);
    for (const c of CASES) {
      const response = responses.get(c.id)!;
      expect(response.status, c.what).toBe(Status.OK);
      expect(codec.decode(response.result), c.what).toBe(c.what);
      const span = servers.find((s) => s.attributes['nestjs_grains.identity'] === `h${c.id}`);
      expect(span, c.what).toBeDefined();
      if (c.continues) {
        expect(span!.spanContext().traceId, c.what).toBe(TRACE_ID);
        expect(span!.parentSpanContext?.spanId, c.what).toBe(SPAN_ID);
        expect(span!.spanContext().traceState?.get('vendor') ?? span!.spanContext().traceState?.get('v'), c.what).toBe(c.tracestateKept ? 'abc' : undefined);
      } else {
        expect(span!.parentSpanContext, c.what).toBeUndefined();
        expect(span!.spanContext().traceId, c.what).not.toBe(TRACE_ID);
      }
    }
    expect(cluster.loggers[0]!.messages('warn')).toEqual([]);
  });
});
