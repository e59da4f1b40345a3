import { createTraceState, ROOT_CONTEXT, type SpanContext, trace, TraceFlags } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { describe, expect, it } from 'vitest';
import { remoteSpanContext, traceparentOf, tracestateOf } from '../../lib/observability/trace-context.js';
import { inboundTraceparent, inboundTracestate, MAX_TRACEPARENT_CHARS, MAX_TRACESTATE_CHARS } from '../../lib/remote/inbound-limits.js';
import type { WireRequest } from '../../lib/remote/wire.js';

const propagator = new W3CTraceContextPropagator();

/** What OpenTelemetry's own W3C propagator writes for `context`. */
function injected(context: SpanContext): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagator.inject(trace.setSpanContext(ROOT_CONTEXT, context), carrier, { set: (c, k, v) => (c[k] = v) });
  return carrier;
}

const context = (flags: number, state?: string): SpanContext => ({
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  traceFlags: flags,
  ...(state !== undefined && { traceState: createTraceState(state) }),
});

describe('the W3C trace context between members', () => {
  it('writes what OpenTelemetry’s W3C propagator writes', () => {
    for (const c of [context(TraceFlags.SAMPLED, 'a=1,b=2'), context(TraceFlags.NONE)]) {
      const carrier = injected(c);
      expect(traceparentOf(c)).toBe(carrier['traceparent']);
      expect(tracestateOf(c)).toBe(carrier['tracestate'] ?? '');
    }
  });

  it('reads back what it writes, as a remote parent', () => {
    const c = context(TraceFlags.SAMPLED, 'vendor=abc');
    expect(remoteSpanContext(traceparentOf(c), tracestateOf(c))).toMatchObject({
      traceId: c.traceId,
      spanId: c.spanId,
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    });
    expect(remoteSpanContext(traceparentOf(c), tracestateOf(c))!.traceState!.get('vendor')).toBe('abc');
  });

  it('ignores what is not a valid traceparent, and its tracestate with it', () => {
    const valid = traceparentOf(context(TraceFlags.SAMPLED));
    for (const bad of [
      '',
      valid.toUpperCase(),
      valid.slice(0, -1),
      `${valid}-extra`, // version 00 has nothing after the flags
      `ff${valid.slice(2)}`,
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`,
      ` ${valid}`,
    ]) {
      expect(remoteSpanContext(bad, 'a=1'), bad).toBeUndefined();
    }
    // A later version is read as far as version 00 goes.
    expect(remoteSpanContext(`01${valid.slice(2)}-more`, '')?.spanId).toBe('00f067aa0ba902b7');
  });

  it('sends no tracestate W3C would not allow', () => {
    const c = context(TraceFlags.SAMPLED);
    expect(tracestateOf({ ...c, traceState: { ...createTraceState(), serialize: () => 'a=\u00e9' } as never })).toBe('');
    expect(tracestateOf({ ...c, traceState: { ...createTraceState(), serialize: () => `a=${'x'.repeat(600)}` } as never })).toBe('');
  });
});

describe('what a member takes of a peer’s trace context (inbound-limits.ts)', () => {
  const request = (traceparent?: string, tracestate?: string) => ({ traceparent, tracestate }) as unknown as WireRequest;
  const v00 = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

  it('keeps a later version’s longer traceparent (read as far as version 00 goes), drops one past the bound', () => {
    const later = `01${v00.slice(2)}-abc`;
    expect(inboundTraceparent(request(later))).toBe(later);
    expect(remoteSpanContext(inboundTraceparent(request(later)), '')?.spanId).toBe('00f067aa0ba902b7');
    expect(inboundTraceparent(request(`01${v00.slice(2)}-${'a'.repeat(MAX_TRACEPARENT_CHARS)}`))).toBe('');
    expect(inboundTraceparent(request(undefined))).toBe('');
  });

  it('keeps a tracestate of W3C’s 512 characters, drops a longer one', () => {
    const full = `v=${'x'.repeat(MAX_TRACESTATE_CHARS - 2)}`;
    expect(inboundTracestate(request(v00, full))).toBe(full);
    expect(inboundTracestate(request(v00, `${full}x`))).toBe('');
  });
});
