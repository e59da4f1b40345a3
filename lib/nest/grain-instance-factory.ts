import { Scope } from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';
import { GrainConfigurationError } from '../cluster/errors.js';
import type { GrainContext } from '../cluster/grain-context.js';
import type { GrainClass } from '../cluster/kind.js';
import { KindClient } from '../cluster/kind-client.js';
import { GRAIN_CONTEXT } from './cluster.constants.js';
import { SCOPED_DEPENDENCY, UNRESOLVABLE_DEPENDENCY, UNTYPED_DEPENDENCY } from './cluster.messages.js';

// NOTE: the metadata keys Nest's own injector reads (@nestjs/common constants.ts); the
// values are part of Nest's decorator contract and have not changed since Nest 6.
const PARAMTYPES = 'design:paramtypes';
const SELF_DECLARED_DEPS = 'self:paramtypes';
const OPTIONAL_DEPS = 'optional:paramtypes';
const PROPERTY_DEPS = 'self:properties_metadata';
const OPTIONAL_PROPERTY_DEPS = 'optional:properties_metadata';

type Token = unknown;
interface ForwardReference {
  forwardRef: () => Token;
}

/**
 * What one constructor argument or injected property becomes: a resolved value, the context,
 * or the member's client of a kind, bound to the activation (`ctx.client(kind)`), so the
 * grain's own calls carry its call chain without AsyncLocalStorage.
 */
type Slot = { context: true } | { context: false; value: unknown } | { context: false; client: string };

/**
 * Builds a kind's `create(context)`: resolves the grain class's singleton dependencies once,
 * through the application's ModuleRef, and constructs one instance per activation with the
 * activation's GrainContext in the `@InjectGrainContext()` slots.
 *
 * NOTE: resolving a REQUEST-scoped provider through ModuleRef costs about 40 µs per call,
 * which alone would cap activations near 25 K/s per core; so dependencies are resolved once
 * per kind, and a grain depending on a request-scoped or transient provider is refused at
 * startup with a message naming it.
 */
export function createGrainInstanceFactory<T extends object>(grainClass: GrainClass<T>, moduleRef: ModuleRef): (context: GrainContext) => T {
  const paramTypes = (Reflect.getMetadata(PARAMTYPES, grainClass) as Token[] | undefined) ?? [];
  const declared = (Reflect.getMetadata(SELF_DECLARED_DEPS, grainClass) as Array<{ index: number; param: Token }> | undefined) ?? [];
  const optional = new Set((Reflect.getMetadata(OPTIONAL_DEPS, grainClass) as number[] | undefined) ?? []);
  const arity = Math.max(paramTypes.length, grainClass.length, ...declared.map((d) => d.index + 1));
  const args: Slot[] = [];
  for (let index = 0; index < arity; index++) {
    const token = declared.find((d) => d.index === index)?.param ?? paramTypes[index];
    args.push(resolveSlot(grainClass, moduleRef, token, optional.has(index), index));
  }

  const propertyDeps = (Reflect.getMetadata(PROPERTY_DEPS, grainClass) as Array<{ key: string | symbol; type: Token }> | undefined) ?? [];
  const optionalProps = new Set((Reflect.getMetadata(OPTIONAL_PROPERTY_DEPS, grainClass) as Array<string | symbol> | undefined) ?? []);
  const properties = propertyDeps.map((p) => ({ key: p.key, slot: resolveSlot(grainClass, moduleRef, p.type, optionalProps.has(p.key), String(p.key)) }));

  const Ctor = grainClass as unknown as new (...a: unknown[]) => T;
  return (context) => {
    const values = args.map((slot) => valueOf(slot, context));
    const instance = new Ctor(...values);
    for (const { key, slot } of properties) (instance as Record<string | symbol, unknown>)[key] = valueOf(slot, context);
    return instance;
  };
}

function valueOf(slot: Slot, context: GrainContext): unknown {
  if (slot.context) return context;
  return 'client' in slot ? context.client(slot.client) : slot.value;
}

function resolveSlot(grainClass: GrainClass, moduleRef: ModuleRef, rawToken: Token, isOptional: boolean, where: number | string): Slot {
  const token = isForwardReference(rawToken) ? rawToken.forwardRef() : rawToken;
  if (token === GRAIN_CONTEXT) return { context: true };
  const index = typeof where === 'number' ? where : -1;
  if (token === undefined || token === Object) {
    if (isOptional) return { context: false, value: undefined };
    throw new GrainConfigurationError(UNTYPED_DEPENDENCY(grainClass.name, index));
  }
  const name = tokenName(token);
  let scope: Scope;
  try {
    scope = moduleRef.introspect(token as string).scope ?? Scope.DEFAULT;
  } catch {
    if (isOptional) return { context: false, value: undefined };
    throw new GrainConfigurationError(UNRESOLVABLE_DEPENDENCY(grainClass.name, index, name));
  }
  if (scope === Scope.REQUEST) throw new GrainConfigurationError(SCOPED_DEPENDENCY(grainClass.name, name, 'REQUEST'));
  if (scope === Scope.TRANSIENT) throw new GrainConfigurationError(SCOPED_DEPENDENCY(grainClass.name, name, 'TRANSIENT'));
  const value: unknown = moduleRef.get(token as string, { strict: false });
  // NOTE: only the runtime's own client is bound; a replaced one (a test's fake) is passed as it is.
  if (value instanceof KindClient) return { context: false, client: value.kind };
  return { context: false, value };
}

function isForwardReference(token: Token): token is ForwardReference {
  return typeof token === 'object' && token !== null && typeof (token as ForwardReference).forwardRef === 'function';
}

function tokenName(token: Token): string {
  if (typeof token === 'function') return token.name;
  if (typeof token === 'symbol') return token.description ?? token.toString();
  return String(token);
}
