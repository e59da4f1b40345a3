import { callableMethods } from '../cluster/callable-methods.js';
import { GrainConfigurationError } from '../cluster/errors.js';
import type { GrainClass } from '../cluster/kind.js';
import { GRAIN_METADATA, IDEMPOTENT_METADATA, INTERLEAVE_METADATA } from './cluster.constants.js';
import { GRAIN_CLASS_UNDEFINED, NOT_A_GRAIN } from './cluster.messages.js';
import type { GrainMetadata } from './decorators/grain.decorator.js';

/** Reads what the decorators stored. */
export class GrainMetadataAccessor {
  static metadataOf(grainClass: GrainClass | undefined): GrainMetadata {
    if (grainClass === undefined) throw new GrainConfigurationError(GRAIN_CLASS_UNDEFINED());
    const metadata = Reflect.getMetadata(GRAIN_METADATA, grainClass) as GrainMetadata | undefined;
    if (metadata === undefined) throw new GrainConfigurationError(NOT_A_GRAIN(grainClass.name));
    return metadata;
  }

  static kindOf(grainClass: GrainClass | undefined): string {
    return GrainMetadataAccessor.metadataOf(grainClass).kind;
  }

  static isGrain(grainClass: unknown): boolean {
    return typeof grainClass === 'function' && Reflect.getMetadata(GRAIN_METADATA, grainClass) !== undefined;
  }

  /** Callable methods marked `@Interleave()`. */
  static interleavedMethods(grainClass: GrainClass): string[] {
    return GrainMetadataAccessor.methodsMarked(grainClass, INTERLEAVE_METADATA);
  }

  /** Callable methods marked `@Idempotent()`. */
  static idempotentMethods(grainClass: GrainClass): string[] {
    return GrainMetadataAccessor.methodsMarked(grainClass, IDEMPOTENT_METADATA);
  }

  private static methodsMarked(grainClass: GrainClass, key: string): string[] {
    const methods: string[] = [];
    for (const name of callableMethods(grainClass)) {
      const fn = (grainClass.prototype as Record<string, unknown>)[name];
      if (typeof fn === 'function' && Reflect.getMetadata(key, fn) === true) methods.push(name);
    }
    return methods;
  }
}
