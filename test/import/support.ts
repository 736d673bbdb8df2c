/** Helpers for the import suite: temporary input files and direct looks at the store. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { ImportReport } from '../../src/import/index.js';
import type { OpenedLedger } from '../../src/index.js';

export function tempFiles() {
  const dir = mkdtempSync(join(tmpdir(), 'runledger-import-'));
  return {
    dir,
    /** Writes `name` (lines joined with \n, or text) and returns its path. */
    write(name: string, content: string | string[]): string {
      const path = join(dir, name);
      writeFileSync(path, Array.isArray(content) ? content.join('\n') + '\n' : content);
      return path;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export const jsonl = (records: unknown[]) => records.map((r) => JSON.stringify(r));

/** Counts straight from the tables (not through the code under test). */
export async function countRuns(ledger: OpenedLedger, source?: string): Promise<number> {
  const { rows } = await ledger.database.query<{ n: number | string }>(
    source === undefined ? 'select count(*) as n from runs' : 'select count(*) as n from runs where source = $1',
    source === undefined ? [] : [source],
  );
  return Number(rows[0].n);
}

/** The parts of a report that do not depend on timing. */
export function outcome(r: ImportReport) {
  const { seconds: _s, rowsPerSecond: _r, longestChunkMs: _l, dryRun: _d, ...rest } = r;
  return rest;
}

/** ISO time `minutes` after 2024-01-01T00:00:00Z. */
export const at = (minutes: number) => new Date(Date.UTC(2024, 0, 1) + minutes * 60_000).toISOString();
