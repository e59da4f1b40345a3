import { Inject } from '@nestjs/common';
import { GRAIN_CONTEXT } from '../cluster.constants.js';

/** Injects the activation's `GrainContext` into a `@Grain()` class constructor. */
export function InjectGrainContext(): ParameterDecorator & PropertyDecorator {
  return Inject(GRAIN_CONTEXT);
}
