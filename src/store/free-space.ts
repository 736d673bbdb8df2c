/**
 * The embedded store's free-space reserve. PGlite meeting ENOSPC is not an error it can
 * answer: a data file that cannot grow is (SQLSTATE 53100), but a WAL segment that cannot
 * be written wedges the WASM instance in XLogFlush for good — no answer, no event loop, no
 * SIGTERM. So writes are refused while the data directory's disk has less than the reserve
 * free, which leaves room for the largest write (a 10 MB body) and a new 16 MB WAL segment;
 * reads go on, and writes resume as soon as space is freed.
 */
import { statfsSync } from 'node:fs';

import { StorageFullError } from '../core/errors.js';

/** Default reserve: 64 MiB (openLedger's `minFreeBytes`, `runledger serve --min-free-mb`). */
export const DEFAULT_MIN_FREE_BYTES = 64 * 1024 * 1024;

/** Bytes an unprivileged writer may still use on the file system holding `dir`. */
export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

export interface StorageGuard {
  /** The refusal a write would meet now, or null. */
  refusal(): StorageFullError | null;
  /** Throws the refusal, if any; called before every write. */
  check(): void;
  /** An error of the store turned into a StorageFullError when it is a full disk (53100, ENOSPC). */
  map(err: unknown): unknown;
}

/**
 * Guards the directory `dir` with a reserve of `minFreeBytes`. statfs is read on every write,
 * not cached: it costs about 1.5 µs (measured), a write at least a millisecond, and a cached
 * reading would let a burst of writes run through the reserve.
 */
export function storageGuard(dir: string, minFreeBytes: number): StorageGuard {
  const refusal = () => {
    const free = freeBytes(dir);
    if (free >= minFreeBytes) return null;
    return new StorageFullError(
      `disk full at ${dir}: ${free} bytes free (${mib(free)}), below the reserve of ${minFreeBytes} bytes (${mib(minFreeBytes)}) ` +
        'that the embedded store keeps; writes are refused until space is freed (reads go on)',
    );
  };
  return {
    refusal,
    check() {
      const err = refusal();
      if (err) throw err;
    },
    map(err) {
      const code = (err as { code?: string } | null)?.code;
      if (code !== '53100' && code !== 'ENOSPC') return err;
      const free = freeBytes(dir);
      return new StorageFullError(`disk full at ${dir}: ${free} bytes free (${mib(free)}); ${(err as Error).message}`, err);
    },
  };
}

/**
 * True for a statement that may write (and so needs disk): data changes, DDL, sequences,
 * NOTIFY (its queue is on disk too). A read that matches only meets the guard, never a wrong
 * answer; the ledger's reads are plain selects.
 */
export function mayWrite(sql: string): boolean {
  return /\b(insert|update|delete|merge|create|alter|drop|truncate|copy|vacuum|reindex|cluster|nextval|setval|notify|pg_notify)\b/i.test(
    sql,
  );
}
