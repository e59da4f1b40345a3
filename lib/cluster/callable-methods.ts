/** Lifecycle hooks: called by the runtime, never by callers. */
export const LIFECYCLE_HOOKS: ReadonlySet<string> = new Set(['onGrainActivate', 'onGrainDeactivate']);

/**
 * Names a grain reference never answers, so that `await ref`, `JSON.stringify(ref)`,
 * `console.log(ref)` and test matchers do not call the grain.
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  'constructor',
  'then',
  'catch',
  'finally',
  'toJSON',
  'inspect',
  'toString',
  'toLocaleString',
  'valueOf',
  'asymmetricMatch',
  '$$typeof',
  'nodeType',
]);

/**
 * The callable methods of a grain class: functions on its prototype chain below Object,
 * minus the constructor, lifecycle hooks, `_`-prefixed names, reserved names and symbols.
 *
 * NOTE: TypeScript `private` does not exist at run time, so a private method is callable
 * unless its name starts with `_`; the typed client hides private methods at compile time.
 */
export function callableMethods(grainClass: abstract new (...args: never[]) => object): Set<string> {
  const names = new Set<string>();
  for (
    let proto: object | null = grainClass.prototype as object;
    proto !== null && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto) as object | null
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name.startsWith('_') || LIFECYCLE_HOOKS.has(name) || RESERVED_NAMES.has(name)) continue;
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (descriptor !== undefined && typeof descriptor.value === 'function') names.add(name);
    }
  }
  return names;
}
