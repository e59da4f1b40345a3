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

/**
 * The grain method threw (or rejected). Carries the thrown error's name, message and code;
 * and, when it was an HTTP exception (Nest's `HttpException`: any error with `getStatus()`
 * and `getResponse()`), its status and response, the same whether the grain ran on this
 * member or on another.
 */
export class GrainInvocationError extends GrainError {
  /**
   * Where the error was first thrown, as `kind/identity.method`: this call's grain, or a
   * grain further down the chain when a grain rethrew what a call of its own failed with.
   */
  readonly origin: string;
  /** `getStatus()` of the error the grain threw, when it had one from 100 to 599. */
  readonly httpStatus: number | undefined;
  /**
   * `getResponse()` of the error the grain threw, as JSON makes it (a string or an object),
   * when `httpStatus` is set and it was JSON of at most `MAX_HTTP_RESPONSE_BYTES`; otherwise
   * undefined, and this error's message says why.
   */
  readonly httpResponse: string | object | undefined;

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
    options?: { cause?: unknown; origin?: string; http?: HttpOutcome },
  ) {
    const origin = options?.origin ?? `${kind}/${identity}.${method}`;
    const where = origin === `${kind}/${identity}.${method}` ? '' : ` (from ${origin})`;
    const note = options?.http?.note === undefined ? '' : ` (${options.http.note})`;
    super(`Grain ${kind}/${identity}.${method}() threw ${remoteName}${where}: ${remoteMessage}${note}`, 'GRAIN_INVOCATION_FAILED', options);
    this.origin = origin;
    this.httpStatus = options?.http?.status;
    this.httpResponse = options?.http?.status === undefined ? undefined : options.http.response;
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

/** A gossip key or value this member cannot set: a reserved key, a value JSON cannot hold or over the size limit, too many keys. */
export class GossipError extends GrainError {
  constructor(message: string) {
    super(message, 'GRAIN_GOSSIP');
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
      http: thrown.httpStatus === undefined ? undefined : { status: thrown.httpStatus, response: thrown.httpResponse },
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
      { cause: thrown, http: httpOutcomeOf(thrown) },
    );
  }
  return new GrainInvocationError(kind, identity, method, 'NonError', String(thrown), undefined, { cause: thrown });
}

// HTTP exceptions thrown by grains ----------------------------------------------------------

/**
 * The most bytes of JSON the response of an HTTP exception thrown by a grain may take; a
 * larger one is dropped (its status is kept). It travels in every error response between
 * members, so it stays small beside a result.
 */
export const MAX_HTTP_RESPONSE_BYTES = 16 * 1024;

/** What an error a grain threw says of itself for HTTP (`GrainInvocationError.httpStatus`, `httpResponse`). */
export interface HttpOutcome {
  /** From 100 to 599. */
  readonly status: number;
  /** Absent when there was none that could travel (then `note` says why). */
  readonly response?: string | object | undefined;
  /** Why the response was dropped, for the error's message (developers, logs). */
  readonly note?: string;
}

/**
 * The status and response of a thrown error that has `getStatus()` and `getResponse()` (Nest's
 * `HttpException`; duck-typed, so the runtime needs no framework), checked and bounded the
 * way a peer checks them when they arrive (`httpOutcomeFromWire`): the response goes through
 * JSON here too, so that a caller on this member gets what a caller on another member gets.
 */
export function httpOutcomeOf(thrown: Error): HttpOutcome | undefined {
  const http = thrown as { getStatus?: unknown; getResponse?: unknown };
  if (typeof http.getStatus !== 'function' || typeof http.getResponse !== 'function') return undefined;
  let status: unknown;
  let response: unknown;
  try {
    status = (http.getStatus as () => unknown).call(thrown);
    response = (http.getResponse as () => unknown).call(thrown);
  } catch {
    // NOTE: what a grain's error says of itself may throw; the error still reaches its caller.
    return undefined;
  }
  if (!isHttpStatus(status)) return undefined;
  let json: string | undefined;
  try {
    json = JSON.stringify(response);
  } catch (error) {
    return { status, note: `its HTTP response was dropped: JSON cannot hold it (${(error as Error).message})` };
  }
  if (json === undefined) return { status, note: 'its HTTP response was dropped: JSON cannot hold it' };
  return httpResponseOf(status, json, 'its HTTP response was dropped');
}

/**
 * `httpOutcomeOf` as a peer sent it (`RemoteError.http_status`, `http_response`): untrusted, so
 * a status outside 100..599 is ignored, and a response that is not JSON of a string or an
 * object, or is more than `MAX_HTTP_RESPONSE_BYTES`, is dropped. 0 and '' mean none.
 */
export function httpOutcomeFromWire(status: number | undefined, json: string | undefined): HttpOutcome | undefined {
  if (!isHttpStatus(status)) return undefined;
  if (json === undefined || json === '') return { status, note: 'its HTTP response was dropped by the member where it was thrown' };
  return httpResponseOf(status, json, 'the HTTP response its member sent was ignored');
}

function isHttpStatus(status: unknown): status is number {
  return Number.isInteger(status) && (status as number) >= 100 && (status as number) <= 599;
}

function httpResponseOf(status: number, json: string, dropped: string): HttpOutcome {
  // NOTE: a UTF-16 unit is at least one UTF-8 byte, so a longer string is too long whatever it holds.
  const bytes = json.length > MAX_HTTP_RESPONSE_BYTES ? json.length : Buffer.byteLength(json);
  if (bytes > MAX_HTTP_RESPONSE_BYTES) return { status, note: `${dropped}: more than ${MAX_HTTP_RESPONSE_BYTES} bytes of JSON` };
  let response: unknown;
  try {
    response = JSON.parse(json);
  } catch {
    return { status, note: `${dropped}: it is not JSON` };
  }
  if (typeof response !== 'string' && (typeof response !== 'object' || response === null)) {
    return { status, note: `${dropped}: it is neither a string nor an object` };
  }
  return { status, response };
}
