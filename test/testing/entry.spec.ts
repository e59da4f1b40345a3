import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TESTING = join(ROOT, 'lib', 'testing');
const IMPORT = /^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;

describe('the nestjs-grains/testing entry', () => {
  it('is exported by package.json, next to the main entry', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { types: string; default: string }> };
    expect(pkg.exports['./testing']).toEqual({ types: './dist/lib/testing/index.d.ts', default: './dist/lib/testing/index.js' });
  });

  it('imports no test framework: it works under vitest, jest, node:test or mocha alike', () => {
    const frameworks = /^(vitest|jest|@jest\/|@vitest\/|mocha|chai|sinon|supertest|@nestjs\/testing)/;
    const offending: string[] = [];
    for (const file of readdirSync(TESTING).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(join(TESTING, file), 'utf8');
      for (const match of text.matchAll(IMPORT)) {
        const specifier = (match[1] ?? match[2] ?? match[3])!;
        if (frameworks.test(specifier)) offending.push(`${file} → ${specifier}`);
      }
    }
    expect(offending).toEqual([]);
  });
});
