/**
 * Metrics of a member's activations: how many are alive and how many calls wait in their
 * mailboxes, per kind (observed: computed only when an SDK collects, by walking the activations
 * once), and how many were fenced.
 */
import type { Attributes, Counter, Meter } from '@opentelemetry/api';
import { ATTR, METRIC } from './names.js';
import { sdkMeter } from './scope.js';

/** An activation, as far as these metrics look at it. */
export interface ObservedActivation {
  readonly kind: { readonly name: string };
  readonly mailbox: { readonly depth: number };
}

/** Where a member's live activations are (its registry). */
export interface ActivationSource {
  values(): Iterable<ObservedActivation>;
}

/** The metrics of one member's activations. */
export class MemberMetrics {
  private readonly fences: Counter | undefined;
  private readonly kindAttributes = new Map<string, Attributes>();

  constructor(source: ActivationSource) {
    const meter = sdkMeter();
    if (meter === undefined) return;
    this.fences = meter.createCounter(METRIC.fences, {
      unit: '{activation}',
      description: 'Activations fenced: their claim may no longer be this member’s (its lease lapsed or was lost); they run no further turns.',
    });
    observe(meter, source);
  }

  /** An activation of `kind` was fenced. */
  fenced(kind: string): void {
    if (this.fences === undefined) return;
    let attributes = this.kindAttributes.get(kind);
    if (attributes === undefined) this.kindAttributes.set(kind, (attributes = Object.freeze({ [ATTR.kind]: kind })));
    this.fences.add(1, attributes);
  }
}

/** Per meter: the members observed (weakly: a member that is gone drops out) and every kind seen. */
interface Observed {
  readonly sources: Set<WeakRef<ActivationSource>>;
  /** Kinds seen once are reported (as 0) for as long as the process runs, so a series drops to 0 rather than going stale. */
  readonly kinds: Map<string, Attributes>;
}

const observed = new WeakMap<Meter, Observed>();

/**
 * Observe `source`'s activations with `meter`. NOTE: one callback per meter for every member
 * of the process (tests and benchmarks run several), summing them: two callbacks reporting
 * the same kind would overwrite each other.
 */
function observe(meter: Meter, source: ActivationSource): void {
  let state = observed.get(meter);
  if (state === undefined) {
    const current: Observed = { sources: new Set(), kinds: new Map() };
    state = current;
    observed.set(meter, current);
    const activations = meter.createObservableUpDownCounter(METRIC.activations, { unit: '{activation}', description: 'Activations alive on this member.' });
    const depth = meter.createObservableUpDownCounter(METRIC.mailboxDepth, {
      unit: '{call}',
      description: 'Calls waiting in the mailboxes of this member’s activations (queued, not yet running).',
    });
    meter.addBatchObservableCallback(
      (result) => {
        const counts = new Map<string, { activations: number; depth: number }>();
        for (const ref of current.sources) {
          const member = ref.deref();
          if (member === undefined) {
            current.sources.delete(ref);
            continue;
          }
          for (const activation of member.values()) {
            const kind = activation.kind.name;
            const count = counts.get(kind);
            if (count === undefined) counts.set(kind, { activations: 1, depth: activation.mailbox.depth });
            else {
              count.activations++;
              count.depth += activation.mailbox.depth;
            }
          }
        }
        for (const kind of counts.keys()) if (!current.kinds.has(kind)) current.kinds.set(kind, Object.freeze({ [ATTR.kind]: kind }));
        for (const [kind, attributes] of current.kinds) {
          const count = counts.get(kind);
          result.observe(activations, count?.activations ?? 0, attributes);
          result.observe(depth, count?.depth ?? 0, attributes);
        }
      },
      [activations, depth],
    );
  }
  state.sources.add(new WeakRef(source));
}
