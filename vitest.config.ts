import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    alias: { 'nestjs-grains': fileURLToPath(new URL('./lib/index.ts', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.spec.ts'],
    // Builds once before the tests: the multi-process tests run the built members (dist/).
    globalSetup: ['./test/support/global-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
