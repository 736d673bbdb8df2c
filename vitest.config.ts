import { defineConfig } from 'vitest/config';

// RUNLEDGER_TEST_DB=pglite|postgres selects the backend; `npm test` runs the suite on both.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // PGlite takes ~700 MB per instance: keep parallel files bounded on a 2-core machine.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
