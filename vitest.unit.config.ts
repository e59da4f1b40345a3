import { configDefaults, defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * `npm run test:unit`: the fast loop. Every suite of vitest.config.ts but the multi-process
 * ones (test/e2e), so no build first, and the package check (test/consumer: npm installs and
 * compiles a whole app). `npm test` still runs everything.
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    exclude: [...configDefaults.exclude, 'test/e2e/**', 'test/consumer/**'],
    globalSetup: [],
  },
});
