/**
 * Errors a caller can catch and act on. Every error the runtime gives a caller is a
 * `GrainError`; `code` is stable and safe to switch on, `message` says what happened and
 * what to do.
 */
export class GrainError extends Error {
  constructor(
    message: string,
    /** Stable, machine-readable code. */
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The call did not settle before its deadline. The grain may or may not have run it. */
export class GrainTimeoutError extends GrainError {
  constructor(
    readonly kind: string,
    readonly identity: string,
    readonly method: string,
    readonly timeoutMs: number,
    /** True when the call was still queued at the deadline: it never ran. */
    readonly neverRan: boolean,
  ) {
    super(
      `Call ${kind}/${identity}.${method}() timed out after ${timeoutMs} ms` +
        (neverRan ? ' while waiting for its turn (it never ran)' : ' while running') +
        '. Raise the timeout (per call: client.get(id, { timeout }); default: requestTimeout) or make the grain method faster.',
      'GRAIN_TIMEOUT',
    );
  }
}

/** No member of the cluster hosts this kind. */
export class UnknownKindError extends GrainError {
  constructor(readonly kind: string) {
    super(
      `No member hosts grain kind "${kind}". Register the grain class with ClusterModule.forFeature([...]) on at least one member, and check the kind name.`,
      'GRAIN_UNKNOWN_KIND',
    );
  }
}

/** The method is not callable on this kind (not a method, private by convention, a hook, or a symbol). */
export class MethodNotCallableError extends GrainError {
  constructor(
    readonly kind: string,
    readonly method: string,
  ) {
    super(
      `"${method}" is not a callable method of grain kind "${kind}". Callable methods are those the grain's author wrote (the class and its own base classes, never a built-in one such as EventEmitter), except constructor, lifecycle hooks, names starting with "_", and symbols.`,
      'GRAIN_METHOD_NOT_CALLABLE',
    );
  }
}

/** The grain method threw (or rejected). Carries the thrown error's name, message and code. */
export class GrainInvocationError extends GrainError {
  /**
   * Where the error was first thrown, as `kind/identity.method`: this call's grain, or a
   * grain further down the chain when a grain rethrew what a call of its own failed with.
   */
  readonly origin: string;

  constructor(
    readonly kind: string,
    readonly identity: string,
    readonly method: string,
    /** `name` of the error the grain threw. */
    readonly remoteName: string,
    /** `message` of the error the grain threw. */
    readonly remoteMessage: string,
    /** `code` of the error the grain threw, when it had a string or number code. */
    readonly remoteCode: string | undefined,
    options?: { cause?: unknown; origin?: string },
  ) {
    const origin = options?.origin ?? `${kind}/${identity}.${method}`;
    const where = origin === `${kind}/${identity}.${method}` ? '' : ` (from ${origin})`;
    super(`Grain ${kind}/${identity}.${method}() threw ${remoteName}${where}: ${remoteMessage}`, 'GRAIN_INVOCATION_FAILED', options);
    this.origin = origin;
  }
}

/** The kind refused the identity (`canActivate` said no): nothing was stored or run. */
export class GrainIdentityRefusedError extends GrainError {
  constructor(
    readonly kind: string,
    readonly identity: string,
  ) {
    super(`Grain kind "${kind}" does not accept the identity "${identity}" (its canActivate refused it); nothing was activated.`, 'GRAIN_IDENTITY_REFUSED');
  }
}

/** The activation could not be created: its constructor or `onGrainActivate` threw. Nothing was kept. */
export class GrainActivationError extends GrainError {
  constructor(
    readonly kind: string,
    readonly identity: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Activating grain ${kind}/${identity} failed: ${reason}. No activation was kept; the next call tries again.`, 'GRAIN_ACTIVATION_FAILED', options);
  }
}

/** The activation's queue is full. The call never ran; it is safe to retry later. */
export class GrainOverloadedError extends GrainError {
  constructor(
    readonly kind: string,
    readonly identity: string,
    readonly maxQueued: number,
    /** Set when the full queue was the one to another member, not the activation's. */
    readonly peer?: string,
  ) {
    super(
      peer === undefined
        ? `Grain ${kind}/${identity} has ${maxQueued} calls waiting (maxQueueLength); the call was refused and never ran. Retry later, spread load over more identities, or raise maxQueueLength.`
        : `The queue of calls to member ${peer} is full (${maxQueued}, remote.maxQueuedPerPeer); the call to ${kind}/${identity} was refused and never ran. Retry later.`,
      'GRAIN_OVERLOADED',
    );
  }
}

/** The call would wait for a turn that is waiting for it (A→B→A, or A→A). It never ran. */
export class CallCycleError extends GrainError {
  constructor(
    /** The activations of the cycle, as `kind/identity`, first to last (last = the target again). */
    readonly cycle: readonly string[],
  ) {
    super(
      `Call cycle ${cycle.join(' → ')}: the target is waiting on this call's own chain, so the call would deadlock. Mark the target method @Interleave() (and the calling one, if it is on the same grain) or restructure the calls.`,
      'GRAIN_CALL_CYCLE',
    );
  }
}

/**
 * The call was written to the member hosting its grain, and the connection was lost before
 * the response came: it may or may not have run. Retried automatically only for methods
 * marked `@Idempotent()`.
 */
export class OutcomeUnknownError extends GrainError {
  constructor(
    readonly kind: string,
    readonly identity: string,
    readonly method: string,
    readonly detail: string,
  ) {
    super(
      `Call ${kind}/${identity}.${method}() was sent, but the connection to the member hosting it was lost before an answer (${detail}); it may or may not have run. Check the grain's state before retrying, or mark the method @Idempotent() to have it retried.`,
      'GRAIN_OUTCOME_UNKNOWN',
    );
  }
}

/** The encoded arguments (never ran) or result (ran) exceed the maximum message size. */
export class MessageTooLargeError extends GrainError {
  constructor(
    readonly kind: string,
    readonly identity: string,
    readonly method: string,
    readonly neverRan: boolean,
    detail: string,
  ) {
    super(
      `Call ${kind}/${identity}.${method}(): the ${neverRan ? 'arguments are' : 'result is'} too large to send between members (${detail}). Send less per call, or raise remote.maxMessageSize on every member.`,
      'GRAIN_MESSAGE_TOO_LARGE',
    );
  }
}

/** Arguments or a result that cannot cross between members (a function, a symbol, a class instance, …). */
export class GrainSerializationError extends GrainError {
  constructor(
    readonly kind: string,
    readonly identity: string,
    readonly method: string,
    readonly neverRan: boolean,
    detail: string,
  ) {
    super(
      `Call ${kind}/${identity}.${method}(): the ${neverRan ? 'arguments' : 'result'} cannot be sent between members: ${detail}. Pass plain data (objects, arrays, strings, numbers, booleans, null, Date, BigInt, Map, Set, Uint8Array).`,
      'GRAIN_SERIALIZATION',
    );
  }
}

/** @internal the grain does not live on the member that was asked; the caller resolves again. */
export class NotHereError extends GrainError {
  constructor(kind: string, identity: string) {
    super(`Grain ${kind}/${identity} does not live on this member.`, 'GRAIN_NOT_HERE');
  }
}

/** The cluster cannot serve the call now (no live activation could be found for it). It never ran; retry later. */
export class ClusterUnavailableError extends GrainError {
  constructor(message: string) {
    super(message, 'GRAIN_CLUSTER_UNAVAILABLE');
  }
}

/** The member is shutting down (or not started yet) and takes no new calls. */
export class ClusterShuttingDownError extends GrainError {
  constructor(reason = 'is shutting down') {
    super(`The cluster member ${reason} and takes no new grain calls.`, 'GRAIN_CLUSTER_SHUTTING_DOWN');
  }
}

/** The caller aborted the call through its AbortSignal. */
export class GrainCallAbortedError extends GrainError {
  constructor(
    readonly kind: string,
    readonly identity: string,
    readonly method: string,
    /** True when the call was aborted before its turn started: it never ran. */
    readonly neverRan: boolean,
  ) {
    super(`Call ${kind}/${identity}.${method}() was aborted by the caller${neverRan ? ' before it ran' : ' while running'}.`, 'GRAIN_CALL_ABORTED');
  }
}

/** A call's arguments (identity, options) are not valid. Thrown before anything is sent. */
export class InvalidGrainCallError extends GrainError {
  constructor(message: string) {
    super(message, 'GRAIN_INVALID_CALL');
  }
}

/** Configuration that cannot work: a bad option, a duplicate kind, a grain dependency that cannot be resolved once. */
export class GrainConfigurationError extends GrainError {
  constructor(message: string) {
    super(message, 'GRAIN_CONFIGURATION');
  }
}

/** Turn whatever a grain threw into the error its caller receives. */
export function toInvocationError(kind: string, identity: string, method: string, thrown: unknown): GrainInvocationError {
  if (thrown instanceof GrainInvocationError) {
    // NOTE: a grain that rethrows what a grain it called threw passes the original on, so the
    // caller sees the error where it began (a business error's name and code), not a wrapper.
    return new GrainInvocationError(kind, identity, method, thrown.remoteName, thrown.remoteMessage, thrown.remoteCode, {
      cause: thrown,
      origin: thrown.origin,
    });
  }
  if (thrown instanceof Error) {
    const code = (thrown as { code?: unknown }).code;
    return new GrainInvocationError(
      kind,
      identity,
      method,
      thrown.name,
      thrown.message,
      typeof code === 'string' || typeof code === 'number' ? String(code) : undefined,
      { cause: thrown },
    );
  }
  return new GrainInvocationError(kind, identity, method, 'NonError', String(thrown), undefined, { cause: thrown });
}
