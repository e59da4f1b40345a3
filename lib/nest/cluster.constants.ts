/** Injection token of the per-activation GrainContext (see `@InjectGrainContext()`). */
export const GRAIN_CONTEXT = Symbol('nestjs-grains:GrainContext');

/** Method metadata set by `@Interleave()`. */
export const INTERLEAVE_METADATA = 'nestjs-grains:interleave';

/** Method metadata set by `@Idempotent()`. */
export const IDEMPOTENT_METADATA = 'nestjs-grains:idempotent';

/** Prefix of the injection tokens of grain clients (see `getGrainClientToken`). */
export const GRAIN_CLIENT_TOKEN_PREFIX = 'nestjs-grains:client:';

/** Class metadata set by `@Grain()`: its options, with the kind resolved. */
export const GRAIN_METADATA = 'nestjs-grains:grain';

/** Prefix of the tokens under which `forFeature` registers the grain classes it hosts. */
export const GRAIN_KIND_TOKEN_PREFIX = 'nestjs-grains:kind:';

/** The context the Nest logger prints for the runtime. */
export const LOGGER_CONTEXT = 'nestjs-grains';
