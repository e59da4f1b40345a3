import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The layering of docs/architecture.md, checked on the source: dependencies point one way
 * (nest → cluster → remote → actor), the runtime never imports Nest, and lib/ has no import
 * cycle. A move that breaks one of these fails here with the offending imports named.
 */
const LIB = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'lib');
const LAYERS = ['nest', 'cluster', 'remote', 'actor'] as const;
const IMPORT = /^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return /\.(ts|js)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** file (relative to lib/) → the specifiers it imports. */
function importsByFile(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(LIB)) {
    const text = readFileSync(file, 'utf8');
    const specifiers = [...text.matchAll(IMPORT)].map((m) => (m[1] ?? m[2] ?? m[3])!);
    graph.set(relative(LIB, file), specifiers);
  }
  return graph;
}

/** The lib/ file a relative specifier names (`./x.js` may be x.ts or x.js). */
function target(from: string, specifier: string, files: ReadonlySet<string>): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const path = relative(LIB, resolve(LIB, dirname(from), specifier));
  for (const candidate of [path, path.replace(/\.js$/, '.ts')]) if (files.has(candidate)) return candidate;
  throw new Error(`${from} imports ${specifier}, which is not a file in lib/`);
}

const layerOf = (file: string) => LAYERS.indexOf(file.split('/')[0] as (typeof LAYERS)[number]);

describe('the layering of lib/', () => {
  const graph = importsByFile();
  const files = new Set(graph.keys());

  it('finds the source files (the check is not vacuous)', () => {
    expect(files.size).toBeGreaterThan(50);
    expect([...files].filter((f) => f.startsWith('cluster/')).length).toBeGreaterThan(20);
  });

  it('points one way: nest → cluster → remote → actor, never back up', () => {
    const against: string[] = [];
    for (const [file, specifiers] of graph) {
      const from = layerOf(file);
      if (from < 0) continue; // lib/index.ts may import every layer
      for (const specifier of specifiers) {
        const to = target(file, specifier, files);
        if (to === undefined) continue;
        const layer = layerOf(to);
        if (layer >= 0 && layer < from) against.push(`${file} → ${to}`);
      }
    }
    expect(against).toEqual([]);
  });

  it('keeps Nest out of the runtime (cluster/, remote/, actor/)', () => {
    const nestInRuntime = [...graph]
      .filter(([file]) => layerOf(file) > 0)
      .flatMap(([file, specifiers]) => specifiers.filter((s) => s.startsWith('@nestjs/')).map((s) => `${file} → ${s}`));
    expect(nestInRuntime).toEqual([]);
  });

  it('has no import cycle', () => {
    const edges = new Map(
      [...graph].map(([file, specifiers]) => [file, specifiers.map((s) => target(file, s, files)).filter((t): t is string => t !== undefined)]),
    );
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (file: string) => {
      state.set(file, 'open');
      stack.push(file);
      for (const next of edges.get(file) ?? []) {
        if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].join(' → '));
        else if (state.get(next) === undefined) visit(next);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of edges.keys()) if (state.get(file) === undefined) visit(file);
    expect(cycles).toEqual([]);
  });
});
