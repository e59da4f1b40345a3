import { RESERVED_NAMES } from '../cluster/callable-methods.js';
import {
  GrainCallAbortedError,
  GrainError,
  GrainSerializationError,
  InvalidGrainCallError,
  MessageTooLargeError,
  toInvocationError,
} from '../cluster/errors.js';
import type { CallableMethodNames, GrainCallOptions, GrainClient, GrainRef } from '../cluster/grain-client.interface.js';
import { DEFAULT_MAX_IDENTITY_BYTES, identityProblem } from '../cluster/identity-rule.js';
import type { GrainClass } from '../cluster/kind.js';
import { type Codec, CodecError } from '../remote/codec/codec.js';
import { defaultCodec } from '../remote/codec/default-codec.js';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../remote/remote-options.js';
import { GrainMetadataAccessor } from '../nest/grain-metadata.accessor.js';

/** The methods a fake stands in for: any of `T`'s callable methods, returning a value or a promise of it. */
export type FakeGrainMethods<T> = {
  [K in CallableMethodNames<T>]?: T[K] extends (...args: infer A) => infer R ? (...args: A) => Awaited<R> | Promise<Awaited<R>> : never;
};

/** One call a fake client received. */
export interface FakeGrainCall {
  readonly identity: string;
  readonly method: string;
  /** The arguments as the grain would get them: copies, when they crossed the codec. */
  readonly args: readonly unknown[];
  readonly options: GrainCallOptions | undefined;
}

/** Options of `createFakeGrainClient`. */
export interface FakeGrainClientOptions {
  /**
   * The codec the arguments cross before your fake runs, as they would between members, so a
   * class instance (a DTO made by `ValidationPipe({ transform: true })`), a function or a
   * symbol fails with `GrainSerializationError`; `false` passes them as they are.
   * @default the default codec (`grains-msgpack/1`)
   */
  codec?: Codec | false;
}

/** A `GrainClient` whose grains are your functions; it records every call. */
export interface FakeGrainClient<T> extends GrainClient<T> {
  /** Every call made through it, in order. */
  readonly calls: FakeGrainCall[];
}

/**
 * A stand-in `GrainClient<T>` for tests of the code that calls grains (controllers,
 * services), to provide in place of the real one:
 * `Test.createTestingModule({ imports: [AppModule] }).overrideProvider(getGrainClientToken('account')).useValue(fake)`.
 *
 * `methods` (or a function of the identity giving them) implement the grain's methods you
 * need; calling another one rejects, naming it. Like a real client: every method returns a
 * promise, arguments cross the codec first (see `options.codec`), a bad identity throws
 * `InvalidGrainCallError`, an aborted signal rejects with `GrainCallAbortedError`. What a fake
 * method throws reaches the caller as the runtime would hand it over: a `GrainError` (say a
 * `GrainTimeoutError`, to test how the caller handles one) as it is; anything else as the
 * grain having thrown it, a `GrainInvocationError` with its name, message and code.
 *
 * @example
 * const accounts = createFakeGrainClient<AccountGrain>('account', { deposit: async (amount) => 100 + amount });
 */
export function createFakeGrainClient<T>(
  kind: string | GrainClass,
  methods: FakeGrainMethods<T> | ((identity: string) => FakeGrainMethods<T>),
  options: FakeGrainClientOptions = {},
): FakeGrainClient<T> {
  const kindName = typeof kind === 'string' ? kind : GrainMetadataAccessor.kindOf(kind);
  const codec = options.codec === false ? undefined : (options.codec ?? defaultCodec(DEFAULT_MAX_MESSAGE_SIZE));
  const calls: FakeGrainCall[] = [];

  const call = async (identity: string, method: string, args: unknown[], callOptions: GrainCallOptions | undefined): Promise<unknown> => {
    if (callOptions?.signal?.aborted === true) throw new GrainCallAbortedError(kindName, identity, method, true);
    const sent = codec === undefined ? args : crossed(codec, kindName, identity, method, args);
    calls.push({ identity, method, args: sent, options: callOptions });
    const fakes = (typeof methods === 'function' ? methods(identity) : methods) as Record<string, unknown>;
    const fake = fakes[method];
    if (typeof fake !== 'function') {
      throw new Error(`The fake client of kind "${kindName}" has no ${method}(); add it to the methods given to createFakeGrainClient.`);
    }
    try {
      return await (fake as (...a: unknown[]) => unknown).apply(fakes, sent as unknown[]);
    } catch (error) {
      throw error instanceof GrainError ? error : toInvocationError(kindName, identity, method, error);
    }
  };

  return {
    kind: kindName,
    calls,
    get(identity: string, callOptions?: GrainCallOptions): GrainRef<T> {
      const problem = identityProblem(identity, DEFAULT_MAX_IDENTITY_BYTES);
      if (problem !== undefined) throw new InvalidGrainCallError(`${kindName}: ${problem}.`);
      // NOTE: like a real reference, it answers `then`, `toJSON`, `inspect` and symbols with
      // undefined, so awaiting or logging it calls nothing.
      return new Proxy(Object.create(null) as object, {
        get: (_target, name) =>
          typeof name !== 'string' || RESERVED_NAMES.has(name) ? undefined : (...args: unknown[]) => call(identity, name, args, callOptions),
      }) as GrainRef<T>;
    },
  };
}

/** `args` after crossing `codec` as between members; throws the error a caller would get. */
function crossed(codec: Codec, kind: string, identity: string, method: string, args: unknown[]): readonly unknown[] {
  try {
    return codec.decode(codec.encode(args)) as unknown[];
  } catch (error) {
    if (error instanceof CodecError && error.code === 'CODEC_TOO_LARGE') throw new MessageTooLargeError(kind, identity, method, true, error.message);
    throw new GrainSerializationError(kind, identity, method, true, error instanceof Error ? error.message : String(error));
  }
}
