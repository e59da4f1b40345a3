import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * `npm run test:unit`: the fast loop. Every suite but the multi-process ones (test/e2e),
 * so no build first. `npm test` (vitest.config.ts) still runs everything.
 */
export default defineConfig({
  resolve: {
    alias: { 'nestjs-grains': fileURLToPath(new URL('./lib/index.ts', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.spec.ts'],
    exclude: ['test/e2e/**'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
