import type { GrainContext } from 'nestjs-grains';

/** The grain the observability tests call: it answers, or throws. */
export class EchoGrain {
  constructor(readonly ctx: GrainContext) {}
  echo(text: string): string {
    return text;
  }
  fail(): never {
    throw new Error('the grain threw');
  }
}
