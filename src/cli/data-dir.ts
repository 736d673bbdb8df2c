/**
 * Which embedded data directory a command uses when none is named: the nearest
 * `.runledger` in this folder or a parent, the way git finds `.git`, so a command run from
 * a subfolder reaches the same ledger as the dashboard. None found: `./.runledger`, created
 * by the command — and it says so on stderr, with the path.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export const DATA_DIR_NAME = '.runledger';

/** The nearest `.runledger` directory at or above `from`, or null. */
export function findDataDir(from: string = process.cwd()): string | null {
  for (let dir = resolve(from); ;) {
    const candidate = join(dir, DATA_DIR_NAME);
    if (existsSync(candidate) && statSync(candidate).isDirectory()) return candidate;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/**
 * Tells the user a new ledger is being created where nothing was (a command run from the
 * wrong folder would otherwise just look empty). A folder made for it on purpose, even
 * empty, is not news.
 */
export function announceNewDataDir(dir: string): void {
  if (dir.startsWith('memory://') || existsSync(dir)) return;
  const where = resolve(dir);
  const found = basename(where) === DATA_DIR_NAME ? `commands run in ${dirname(where)} or below find it; ` : '';
  process.stderr.write(
    `runledger: creating a new embedded ledger at ${where} (${found}elsewhere pass --data-dir or set RUNLEDGER_DATA_DIR)\n`,
  );
}
