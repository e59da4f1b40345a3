import { INTERLEAVE_METADATA } from '../cluster.constants.js';

/**
 * Lets a grain method interleave with other `@Interleave()` calls of the same activation
 * (for read-only methods). It still never runs beside a turn of a method without it.
 */
export function Interleave(): MethodDecorator {
  return (_target, _key, descriptor) => {
    Reflect.defineMetadata(INTERLEAVE_METADATA, true, descriptor.value as object);
  };
}
