/**
 * The W3C trace context (https://www.w3.org/TR/trace-context/) a request carries between
 * members: `traceparent` and `tracestate`, written and read here rather than through the
 * application's propagator, so that traces cross members whatever the application uses on
 * HTTP (B3, Jaeger, …). What a peer sent is parsed strictly; anything malformed is ignored
 * (the call is served as the root of a new trace).
 */
import { createTraceState, INVALID_SPANID, INVALID_TRACEID, type SpanContext, TraceFlags } from '@opentelemetry/api';

/** The length of a `traceparent` of version 00: `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`. */
const TRACEPARENT_LENGTH = 55;
/** The first 55 characters of a `traceparent` of any version (lower-case hex only, as W3C says). */
const HEX_TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}/;
/** A `tracestate` as W3C allows it: printable ASCII, at most 512 characters. */
const TRACESTATE = /^[\x20-\x7e]{1,512}$/;

/** The `traceparent` of a span context. */
export function traceparentOf(context: SpanContext): string {
  return `00-${context.traceId}-${context.spanId}${(context.traceFlags & TraceFlags.SAMPLED) === 0 ? '-00' : '-01'}`;
}

/** The `tracestate` of a span context: '' when none, or when it is not what W3C allows (printable ASCII, at most 512 characters). */
export function tracestateOf(context: SpanContext): string {
  const state = context.traceState?.serialize() ?? '';
  return TRACESTATE.test(state) ? state : '';
}

/**
 * The remote span context a peer's `traceparent` and `tracestate` describe, or undefined when
 * the traceparent is absent or malformed (then the tracestate is ignored too, as W3C says).
 * A later version than 00 is read as far as version 00 goes.
 */
export function remoteSpanContext(traceparent: string, tracestate: string): SpanContext | undefined {
  // NOTE: read by position, not with a capturing regular expression: this runs for every
  // traced call a member serves.
  const length = traceparent.length;
  if (length < TRACEPARENT_LENGTH || !HEX_TRACEPARENT.test(traceparent)) return undefined;
  const version = traceparent.slice(0, 2);
  // NOTE: ff is never a version; version 00 has nothing after the flags, a later one a '-' first.
  if (version === 'ff' || (length > TRACEPARENT_LENGTH && (version === '00' || traceparent[TRACEPARENT_LENGTH] !== '-'))) return undefined;
  const traceId = traceparent.slice(3, 35);
  const spanId = traceparent.slice(36, 52);
  if (traceId === INVALID_TRACEID || spanId === INVALID_SPANID) return undefined;
  const context: SpanContext = { traceId, spanId, traceFlags: parseInt(traceparent.slice(53, 55), 16) & TraceFlags.SAMPLED, isRemote: true };
  if (tracestate !== '') context.traceState = createTraceState(tracestate);
  return context;
}
