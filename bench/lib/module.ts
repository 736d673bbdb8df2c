/**
 * A benchmark module is one family of measurements selected on the command line
 * (`npm run bench -- core`). Each sets up its own stores, runs its comparisons through
 * the shared runner and cleans up after itself, even when interrupted.
 */
import type { Settings } from './harness.js';
import type { ComparisonResult, Log } from './runner.js';

export interface ModuleContext {
  settings: Settings;
  /** Only comparisons whose id contains one of these substrings (all when empty). */
  only: string[];
  /** Events per batch, for append benchmarks. */
  batchSize: number;
  log: Log;
  /** Registers clean-up to run at the end or on Ctrl-C. */
  onCleanup(fn: () => Promise<void>): void;
}

export interface ModuleResult {
  comparisons: ComparisonResult[];
  /** Versions and set-up facts worth printing with the figures. */
  environment: Record<string, string>;
}

export interface BenchModule {
  name: string;
  description: string;
  run(ctx: ModuleContext): Promise<ModuleResult>;
}

export const selected = (only: string[], id: string) => !only.length || only.some((s) => id.includes(s));
