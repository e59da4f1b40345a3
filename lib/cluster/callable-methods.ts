import { GrainConfigurationError } from './errors.js';

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

/** A class, as far as the callable surface is concerned. */
type AnyClass = abstract new (...args: never[]) => object;

/** The base classes `@Grain({ callableBases })` named, per grain class. */
const declaredBases = new WeakMap<AnyClass, readonly AnyClass[]>();

/**
 * Record the `callableBases` of a grain class (what `@Grain({ callableBases })` does), used by
 * `callableMethods` when it is not given them explicitly.
 */
export function declareCallableBases(grainClass: AnyClass, bases: readonly AnyClass[] | undefined): void {
  if (bases === undefined) declaredBases.delete(grainClass);
  else declaredBases.set(grainClass, [...bases]);
}

/**
 * The callable methods of a grain class: the methods the user wrote, that is the functions
 * defined by the grain class and by its base classes, minus the constructor, lifecycle hooks,
 * `_`-prefixed names, reserved names, getters/setters and symbols.
 *
 * Which base classes count (walking up from the grain class; the first one that does not
 * count ends the walk, so nothing above it counts either):
 * - never a built-in class of JavaScript or Node: `Object`, `Map`, `Error`, … (native code),
 *   and every class Node's built-in modules or globals export under its name: `EventEmitter`,
 *   `Readable`/`Duplex`/`Transform`, `Socket`, `AsyncResource`, `EventTarget`, … So a grain
 *   extending `EventEmitter` does not expose `emit`, `on` or `removeAllListeners`;
 * - with `bases` (`@Grain({ callableBases })` or `KindDefinition.callableBases`): only those
 *   classes; the walk ends at the first base class not listed. Nothing at run time tells a
 *   class from a package (node_modules) from one of the app, so a grain extending a
 *   library's class names the app's own base classes here (often none: `[]`), and the
 *   library's methods stay uncallable. A listed class that the walk does not reach (not a
 *   base class, above a built-in or an unlisted one) is a GrainConfigurationError;
 * - without `bases`: every base class up to the first built-in one.
 *
 * NOTE: TypeScript `private` does not exist at run time, so a private method is callable
 * unless its name starts with `_`; the typed client hides private methods at compile time.
 * The typed client also still lists methods inherited from a built-in or an unlisted base
 * class: calling them fails with MethodNotCallableError.
 */
export function callableMethods(grainClass: AnyClass, bases: Iterable<AnyClass> | undefined = declaredBases.get(grainClass)): Set<string> {
  const allowed = bases === undefined ? undefined : new Set(bases);
  const names = new Set<string>();
  const reached = new Set<unknown>();
  for (let proto: object | null = grainClass.prototype as object; proto !== null; proto = Object.getPrototypeOf(proto) as object | null) {
    const ctor = Object.hasOwn(proto, 'constructor') ? (proto as { constructor: unknown }).constructor : undefined;
    if (proto === Object.prototype || isBuiltinClass(ctor)) break;
    if (proto !== grainClass.prototype && allowed !== undefined && !allowed.has(ctor as AnyClass)) break;
    reached.add(ctor);
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name.startsWith('_') || LIFECYCLE_HOOKS.has(name) || RESERVED_NAMES.has(name)) continue;
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (descriptor !== undefined && typeof descriptor.value === 'function') names.add(name);
    }
  }
  for (const base of allowed ?? []) {
    if (!reached.has(base)) {
      throw new GrainConfigurationError(
        `Grain class "${grainClass.name}": callableBases names "${base?.name ?? String(base)}", which is not one of its base classes below the first built-in or unlisted one; list the app's own base classes, from the grain class up.`,
      );
    }
  }
  return names;
}

/**
 * Node's built-in modules whose exports are classes a grain might extend. Fixed (not
 * `builtinModules`): some modules warn or have side effects when loaded.
 */
const NODE_MODULES_WITH_CLASSES = [
  'events',
  'stream',
  'stream/web',
  'net',
  'tls',
  'http',
  'https',
  'http2',
  'dgram',
  'child_process',
  'worker_threads',
  'readline',
  'readline/promises',
  'fs',
  'zlib',
  'crypto',
  'async_hooks',
  'cluster',
  'vm',
  'perf_hooks',
  'util',
  'buffer',
  'string_decoder',
  'url',
  'diagnostics_channel',
  'tty',
  'v8',
  'module',
  'console',
  'dns',
  'dns/promises',
  'assert',
] as const;

const builtinVerdicts = new WeakMap<object, boolean>();

/**
 * A class of JavaScript or Node rather than of the app: its source is native code, or a Node
 * built-in module (or global) exports it under its name. Looked up by name so that only the
 * one export that could match is read (some exports load code lazily).
 */
function isBuiltinClass(ctor: unknown): boolean {
  if (typeof ctor !== 'function') return false;
  const cached = builtinVerdicts.get(ctor);
  if (cached !== undefined) return cached;
  const verdict = isNativeCode(ctor) || exportedByNode(ctor);
  builtinVerdicts.set(ctor, verdict);
  return verdict;
}

function isNativeCode(fn: Function): boolean {
  try {
    return /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(fn));
  } catch {
    return false;
  }
}

function exportedByNode(ctor: Function): boolean {
  const name = ctor.name;
  if (typeof name !== 'string' || name === '') return false;
  if (exportNamed(globalThis, name) === ctor) return true;
  for (const id of NODE_MODULES_WITH_CLASSES) {
    let exports: unknown;
    try {
      exports = process.getBuiltinModule(id);
    } catch {
      continue;
    }
    if (exports === ctor || exportNamed(exports, name) === ctor) return true;
  }
  return false;
}

/** `holder[name]` when it is an own property (a getter is read: Node loads some classes lazily). */
function exportNamed(holder: unknown, name: string): unknown {
  if ((typeof holder !== 'object' && typeof holder !== 'function') || holder === null) return undefined;
  const descriptor = Object.getOwnPropertyDescriptor(holder, name);
  if (descriptor === undefined) return undefined;
  if ('value' in descriptor) return descriptor.value;
  try {
    return descriptor.get?.call(holder);
  } catch {
    return undefined;
  }
}
