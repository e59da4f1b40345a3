/**
 * Telemetry of grain calls: a CLIENT span and `rpc.client.duration` for each call made on
 * this member, a SERVER span and `rpc.server.duration` for each call served here (a peer's,
 * or one made here and handed to an activation here), spans named `<kind>/<method>`, and
 * the trace context a call carries to the member that serves it.
 *
 * One `CallTelemetry` per member, made when the member is (scope.ts says why). Without an
 * SDK `on` is false and the request path touches nothing here. With one, each call carries
 * a `CallObservation` (its `Call.observer`), which ends its spans and records its durations
 * when the call settles.
 */
import {
  type Attributes,
  type Context,
  context,
  diag,
  type Counter,
  type Histogram,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from '@opentelemetry/api';
import { Call, type CallObserver } from '../actor/call.js';
import { now } from '../actor/clock.js';
import type { TurnState } from '../actor/turn.js';
import { ATTR, CALL_DURATION_BUCKETS_MS, errorTypeOf, METRIC, RPC_SYSTEM } from './names.js';
import { sdkMeter, sdkTracer } from './scope.js';
import { remoteSpanContext } from './trace-context.js';

/**
 * Runs telemetry work whose failure must never reach a call: an SDK's span processor or
 * exporter may throw from `startSpan` or `end` (the SDK passes it on). The call goes on
 * without its telemetry, and the failure is reported once through OpenTelemetry's `diag`.
 */
function guarded(work: () => void, drop?: () => void): void {
  try {
    work();
  } catch (error) {
    drop?.();
    if (!failureReported) {
      failureReported = true;
      diag.error(`nestjs-grains: the OpenTelemetry SDK threw while recording a grain call; the call goes on without its telemetry: ${String(error)}`);
    }
  }
}
let failureReported = false;

/** Kinds, and methods per kind, whose attributes are kept; past it a map starts over (names may come from callers). */
const MAX_CACHED_NAMES = 1_000;
/** A time that is not one (monotonic ms are never negative). */
const NONE = -1;

/** What one kind and method records under: the span name, and the metric attributes per outcome, built once. */
class MethodAttributes {
  readonly spanName: string;
  readonly ok: Attributes;
  private readonly failed = new Map<string, Attributes>();

  constructor(
    readonly kind: string,
    readonly method: string,
  ) {
    this.spanName = `${kind}/${method}`;
    this.ok = Object.freeze({ [ATTR.rpcSystem]: RPC_SYSTEM, [ATTR.rpcService]: kind, [ATTR.rpcMethod]: method });
  }

  /** The attributes of a failure with `errorType` (a GrainError code: a fixed set). */
  failure(errorType: string): Attributes {
    let attributes = this.failed.get(errorType);
    if (attributes === undefined) this.failed.set(errorType, (attributes = Object.freeze({ ...this.ok, [ATTR.errorType]: errorType })));
    return attributes;
  }

  /**
   * A span of this method, of `kind`, for `identity`, started in `parent`. NOTE: it starts
   * with the shared attributes (the sampler sees them); the identity (spans may name the grain,
   * metrics never do) is added only when the span records, so an unsampled span builds nothing.
   */
  startSpan(tracer: Tracer, kind: SpanKind, identity: string, parent: Context): Span {
    const span = tracer.startSpan(this.spanName, { kind, attributes: this.ok }, parent);
    if (span.isRecording()) span.setAttribute(ATTR.identity, identity);
    return span;
  }
}

/** The telemetry of one member's grain calls. */
export class CallTelemetry {
  /** An SDK records spans or metrics: only then do calls carry an observation. */
  readonly on: boolean;
  /** @internal */
  readonly tracer: Tracer | undefined;
  /** @internal */
  readonly clientDuration: Histogram | undefined;
  /** @internal */
  readonly serverDuration: Histogram | undefined;
  private readonly redirects: Counter | undefined;
  private readonly byKind = new Map<string, Map<string, MethodAttributes>>();
  private readonly kindAttributes = new Map<string, Attributes>();

  constructor() {
    this.tracer = sdkTracer();
    const meter = sdkMeter();
    if (meter !== undefined) {
      const advice = { explicitBucketBoundaries: CALL_DURATION_BUCKETS_MS };
      this.clientDuration = meter.createHistogram(METRIC.clientDuration, {
        unit: 'ms',
        description: 'Grain calls made on this member, from the call until its caller has the outcome.',
        advice,
      });
      this.serverDuration = meter.createHistogram(METRIC.serverDuration, {
        unit: 'ms',
        description: 'Grain calls served on this member, from their arrival until their outcome.',
        advice,
      });
      this.redirects = meter.createCounter(METRIC.redirects, {
        unit: '{call}',
        description: 'Calls sent on to wherever their grain is now, having provably not run where they went.',
      });
    }
    this.on = this.tracer !== undefined || meter !== undefined;
  }

  /** A grain call made on this member (call only while `on`): its CLIENT span starts now, a child of the caller's context. */
  client(call: Call, turn: TurnState | undefined): void {
    guarded(
      () => this.startClient(call, turn),
      () => (call.observer = undefined),
    );
  }

  private startClient(call: Call, turn: TurnState | undefined): void {
    const observation = new CallObservation(this, this.attributesOf(call.kind, call.method));
    // NOTE: the deadline was set from the call's start time: no second clock read.
    observation.clientStart = call.deadline - call.timeoutMs;
    const tracer = this.tracer;
    if (tracer !== undefined) {
      const parent = callerContext(turn);
      observation.clientParent = parent;
      observation.clientSpan = observation.attributes.startSpan(tracer, SpanKind.CLIENT, call.identity, parent);
    }
    call.observer = observation;
  }

  /**
   * A call made here reached an activation here (call only while `on`): its SERVER span starts
   * now, a child of its CLIENT span. Nothing when it has one already (it was sent on, and
   * arrived again). NOTE: a CLIENT span that is not sampled gets no SERVER span beside it in
   * this process: the turn runs in the CLIENT span's context (so what it calls is not sampled
   * either), which spares the SDK a second span that would record nothing.
   */
  reached(call: Call): void {
    guarded(
      () => this.startReached(call),
      () => (call.observer = undefined),
    );
  }

  private startReached(call: Call): void {
    const observation = call.observer;
    if (!(observation instanceof CallObservation) || observation.serverStart !== NONE) return;
    observation.serverStart = now();
    const tracer = this.tracer;
    const client = observation.clientSpan;
    if (tracer === undefined || client === undefined) return;
    const parent = trace.setSpan(observation.clientParent ?? ROOT_CONTEXT, client);
    if (client.isRecording()) observation.startServerSpan(tracer, parent, call.identity);
    else observation.serverContext = parent;
  }

  /**
   * A peer's call admitted here (call only while `on`): its SERVER span starts now, a child of
   * the trace context the peer sent (`traceparent`/`tracestate`, '' when none; a malformed one
   * is ignored and the call starts a new trace).
   */
  inbound(call: Call, traceparent: string, tracestate: string): void {
    guarded(
      () => this.startInbound(call, traceparent, tracestate),
      () => (call.observer = undefined),
    );
  }

  private startInbound(call: Call, traceparent: string, tracestate: string): void {
    const observation = new CallObservation(this, this.attributesOf(call.kind, call.method));
    observation.serverStart = now();
    const tracer = this.tracer;
    if (tracer !== undefined) {
      const remote = remoteSpanContext(traceparent, tracestate);
      observation.startServerSpan(tracer, remote === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, remote), call.identity);
    }
    call.observer = observation;
  }

  /** A call is sent on (it never ran where it went; call only while `on`). */
  redirected(call: Call): void {
    guarded(() => this.countRedirect(call));
  }

  private countRedirect(call: Call): void {
    if (this.redirects === undefined) return;
    let attributes = this.kindAttributes.get(call.kind);
    if (attributes === undefined) {
      if (this.kindAttributes.size >= MAX_CACHED_NAMES) this.kindAttributes.clear();
      this.kindAttributes.set(call.kind, (attributes = Object.freeze({ [ATTR.kind]: call.kind })));
    }
    this.redirects.add(1, attributes);
  }

  private attributesOf(kind: string, method: string): MethodAttributes {
    let methods = this.byKind.get(kind);
    if (methods === undefined) {
      if (this.byKind.size >= MAX_CACHED_NAMES) this.byKind.clear();
      this.byKind.set(kind, (methods = new Map()));
    }
    let attributes = methods.get(method);
    if (attributes === undefined) {
      if (methods.size >= MAX_CACHED_NAMES) methods.clear();
      methods.set(method, (attributes = new MethodAttributes(kind, method)));
    }
    return attributes;
  }
}

/** What one call records, on the side(s) of it this member saw: made here, served here, or both. */
export class CallObservation implements CallObserver {
  /** When the call was made here (monotonic ms), or NONE. */
  clientStart = NONE;
  clientSpan: Span | undefined = undefined;
  /** The context the CLIENT span was started in. */
  clientParent: Context | undefined = undefined;
  /** When the call arrived to be served here (monotonic ms), or NONE. */
  serverStart = NONE;
  serverSpan: Span | undefined = undefined;
  /** The context the call's turn runs in: its SERVER span's. */
  serverContext: Context | undefined = undefined;

  constructor(
    private readonly telemetry: CallTelemetry,
    readonly attributes: MethodAttributes,
  ) {}

  /** @internal */
  startServerSpan(tracer: Tracer, parent: Context, identity: string): void {
    const span = this.attributes.startSpan(tracer, SpanKind.SERVER, identity, parent);
    this.serverSpan = span;
    this.serverContext = trace.setSpan(parent, span);
  }

  /** Run the grain method `fn` of the call's turn in the call's SERVER span context (so what it calls, and spans it makes, are its children). */
  run(fn: (...args: unknown[]) => unknown, instance: unknown, args: readonly unknown[]): unknown {
    const serverContext = this.serverContext;
    return serverContext === undefined ? fn.apply(instance, args as unknown[]) : context.with(serverContext, fn, instance, ...args);
  }

  /**
   * The call is written for the member at `address`: what its request carries as trace context
   * (undefined: nothing). A SERVER span begun here for an earlier attempt (a local activation
   * that ended before its turn) ends here, unrecorded: the call is served there now.
   */
  sent(address: string): SpanContext | undefined {
    let sent: SpanContext | undefined;
    guarded(() => (sent = this.markSent(address)));
    return sent;
  }

  private markSent(address: string): SpanContext | undefined {
    if (this.serverStart !== NONE) {
      const begun = this.serverSpan;
      // NOTE: exported all the same (a span cannot be withdrawn): marked as a turn that never ran here.
      if (begun?.isRecording() === true) begun.setAttribute(ATTR.redirected, true);
      begun?.end();
      this.serverSpan = this.serverContext = undefined;
      this.serverStart = NONE;
    }
    const span = this.clientSpan;
    if (span === undefined) return undefined;
    if (span.isRecording()) {
      const colon = address.lastIndexOf(':');
      span.setAttribute(ATTR.serverAddress, colon > 0 ? address.slice(0, colon).replace(/^\[|\]$/g, '') : address);
      const port = colon > 0 ? Number(address.slice(colon + 1)) : NaN;
      if (Number.isInteger(port)) span.setAttribute(ATTR.serverPort, port);
    }
    return span.spanContext();
  }

  settled(call: Call, ok: boolean, reason: unknown): void {
    // NOTE: runs before the caller hears; a throwing SDK must not keep it from hearing.
    guarded(() => this.record(call, ok, reason));
  }

  private record(_call: Call, ok: boolean, reason: unknown): void {
    const end = now();
    const attributes = this.attributes;
    const errorType = ok ? undefined : errorTypeOf(reason);
    const outcome = errorType === undefined ? attributes.ok : attributes.failure(errorType);
    if (this.serverStart !== NONE) {
      this.telemetry.serverDuration?.record(end - this.serverStart, outcome);
      endSpan(this.serverSpan, errorType, reason);
    }
    if (this.clientStart !== NONE) {
      this.telemetry.clientDuration?.record(end - this.clientStart, outcome);
      endSpan(this.clientSpan, errorType, reason);
    }
  }
}

/** Run `fn` outside any trace (in the root context); with no context manager registered, just run it. */
export function runUntraced<T>(fn: () => T): T {
  return context.with(ROOT_CONTEXT, fn);
}

/**
 * The context a call made now is a child of: the active one, or — when no context manager
 * carries it (none registered) — the SERVER span of the turn making the call, so chains of
 * grain calls stay one trace all the same.
 */
function callerContext(turn: TurnState | undefined): Context {
  const active = context.active();
  if (trace.getSpan(active) !== undefined) return active;
  if (turn instanceof Call && turn.observer instanceof CallObservation && turn.observer.serverContext !== undefined) return turn.observer.serverContext;
  return active;
}

function endSpan(span: Span | undefined, errorType: string | undefined, reason: unknown): void {
  if (span === undefined) return;
  if (errorType !== undefined && span.isRecording()) {
    span.setAttribute(ATTR.errorType, errorType);
    span.setStatus({ code: SpanStatusCode.ERROR, message: reason instanceof Error ? reason.message : String(reason) });
  }
  span.end();
}
