import { IDEMPOTENT_METADATA } from '../cluster.constants.js';

/**
 * Marks a grain method safe to run twice. When a call to another member was written and
 * the connection was lost before its answer, the outcome is unknown: a method marked
 * `@Idempotent()` is then retried (within the call's deadline) instead of failing with
 * `OutcomeUnknownError`.
 */
export function Idempotent(): MethodDecorator {
  return (_target, _key, descriptor) => {
    Reflect.defineMetadata(IDEMPOTENT_METADATA, true, descriptor.value as object);
  };
}
