import { describe, expectTypeOf, it } from 'vitest';
import type { GrainClient, GrainRef } from 'nestjs-grains';

// Type-level pins: `npm test` type-checks this file (tsc --noEmit), so each expect-error
// directive below fails the run if the line it marks ever compiles.
class ExampleGrain {
  private secret = 1;
  constructor(private readonly seed: number) {}
  deposit(amount: number): number {
    return this.secret + this.seed + amount;
  }
  async load(id: string): Promise<{ id: string }> {
    return { id };
  }
  withOptional(a: string, b?: number): string {
    return `${a}${b ?? ''}`;
  }
  _internal(): void {}
  onGrainActivate(): void {}
  onGrainDeactivate(): void {}
  private hidden(): void {}
  usesHidden(): void {
    this.hidden();
  }
  readonly label = 'x';
}

describe('GrainRef<T>', () => {
  it('maps every public method to a promise of its awaited result', () => {
    const ref = {} as GrainRef<ExampleGrain>;
    expectTypeOf(ref.deposit).toEqualTypeOf<(amount: number) => Promise<number>>();
    expectTypeOf(ref.load).toEqualTypeOf<(id: string) => Promise<{ id: string }>>();
    expectTypeOf(ref.withOptional).parameters.toEqualTypeOf<[a: string, b?: number]>();
  });

  it('hides private, _-prefixed, hook and non-function members', () => {
    const ref = {} as GrainRef<ExampleGrain>;
    // @ts-expect-error private at compile time
    void ref.hidden;
    // @ts-expect-error _-prefixed names are not callable
    void ref._internal;
    // @ts-expect-error lifecycle hooks are not callable
    void ref.onGrainActivate;
    // @ts-expect-error nor the other hook
    void ref.onGrainDeactivate;
    // @ts-expect-error properties are not methods
    void ref.label;
    // @ts-expect-error a reference is not thenable
    void ref.then;
  });

  it('types arguments', () => {
    const client = {} as GrainClient<ExampleGrain>;
    const neverCalled = () => {
      // @ts-expect-error wrong argument type
      void client.get('a').deposit('ten');
    };
    void neverCalled;
    expectTypeOf(client.get).parameter(0).toEqualTypeOf<string>();
  });
});
