import { defineConfig } from 'vitest/config';

// The fault suite (`npm run test:faults`): real processes killed and restarted, a throwaway
// PostgreSQL cluster, fuzzing. Files are *.fault.ts so that the main suite does not run them.
// RUNLEDGER_TEST_DB=pglite|postgres selects the backend, as in the main suite.
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/faults/**/*.fault.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    // Processes are started and killed: one file at a time keeps a 2-core machine usable.
    fileParallelism: false,
    maxWorkers: 1,
  },
});
