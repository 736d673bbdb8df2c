/**
 * One process at a time per embedded data directory: PGlite is a single-process
 * database, and two writers would corrupt it. The lock file names the holder (pid and,
 * for a server, its URL) so that a second opener gets a clear error — or, for the CLI,
 * a server to talk to instead.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { DataDirLockedError, StorageFullError } from '../core/errors.js';
import { freeBytes } from './free-space.js';

export const LOCK_FILE = 'runledger.lock';

export interface LockInfo {
  pid: number;
  startedAt: string;
  serverUrl?: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readLock(dataDir: string): LockInfo | null {
  try {
    const info = JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')) as LockInfo;
    return typeof info.pid === 'number' && alive(info.pid) ? info : null;
  } catch {
    return null;
  }
}

export interface DataDirLock {
  /** Records the URL of the server holding the directory, for CLI commands to find it. */
  setServerUrl(url: string): void;
  release(): void;
}

export function acquireDataDirLock(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, LOCK_FILE);
  let info: LockInfo = { pid: process.pid, startedAt: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeFileSync(fd, JSON.stringify(info));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC')
        throw new StorageFullError(
          `disk full at ${dataDir}: ${freeBytes(dataDir)} bytes free, no room even for the lock file ${LOCK_FILE}; free some space`,
          err,
        );
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw err;
      const holder = readLock(dataDir);
      // A live holder (this process included: one opener per directory) keeps it.
      if (holder) throw new DataDirLockedError(dataDir, holder.pid, holder.serverUrl);
      // The holder is gone (killed): its lock is stale. Only one of several racers wins the 'wx' above.
      rmSync(path, { force: true });
    }
  }
  let released = false;
  const onExit = () => release();
  function release() {
    if (released) return;
    released = true;
    process.off('exit', onExit);
    try {
      const current = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
      if (current.pid === process.pid) rmSync(path, { force: true });
    } catch {
      // already gone
    }
  }
  process.on('exit', onExit);
  return {
    setServerUrl(url) {
      info = { ...info, serverUrl: url };
      writeFileSync(path, JSON.stringify(info));
    },
    release,
  };
}
