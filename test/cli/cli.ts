/**
 * Runs the CLI as a subprocess: `node --import tsx src/cli/main.ts` (no build step, so
 * the tests exercise the sources as they are). cliStore() gives each test file its own
 * store on the selected backend: a temporary data directory (PGlite) or a fresh schema
 * (PostgreSQL).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BACKEND, freshSchema, PG_URL } from '../helpers.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LOADER = join(REPO, 'node_modules', 'tsx', 'dist', 'loader.mjs');
// `npm test` builds first and sets RUNLEDGER_TEST_CLI=dist: the tests then run the built CLI, as
// users do, without paying tsx's start-up on every subprocess. Run alone, they use the sources.
const USE_DIST = process.env.RUNLEDGER_TEST_CLI === 'dist';
const MAIN = USE_DIST ? join(REPO, 'dist', 'cli', 'main.js') : join(REPO, 'src', 'cli', 'main.ts');
/** The node arguments that start the CLI. */
export const CLI_ARGV: string[] = USE_DIST ? [MAIN] : ['--import', LOADER, MAIN];

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  /** Added to a clean environment (runledger variables from the outer shell are removed). */
  env?: Record<string, string | undefined>;
  input?: string;
}

function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of [
    'DATABASE_URL',
    'RUNLEDGER_SERVER',
    'RUNLEDGER_TOKEN',
    'RUNLEDGER_NAMESPACE',
    'RUNLEDGER_SCHEMA',
    'RUNLEDGER_RUN_ID',
    'RUNLEDGER_DATA_DIR',
    'RUNLEDGER_PREPARED_STATEMENTS',
  ])
    delete env[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Starts the CLI; the caller owns the process. */
export function spawnCli(args: string[], opts: CliOptions = {}): ChildProcess {
  return spawn(process.execPath, [...CLI_ARGV, ...args], {
    cwd: opts.cwd ?? REPO,
    env: cleanEnv(opts.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Collects a started CLI's output until it exits. */
export function collect(child: ChildProcess, input?: string): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  if (input !== undefined) child.stdin!.end(input);
  else child.stdin!.end();
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs the CLI to completion. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return collect(spawnCli(args, opts), opts.input);
}

/** Runs a bash script in which `runledger` is a function calling the CLI with `globalArgs` first. */
export function runBash(script: string, globalArgs: string[], opts: CliOptions = {}): Promise<CliResult> {
  const words = [process.execPath, ...CLI_ARGV, ...globalArgs].map((w) => `'${w.replace(/'/g, `'\\''`)}'`);
  const prelude = `set -euo pipefail\nrunledger() { ${words.join(' ')} "$@"; }\n`;
  const child = spawn('bash', ['-c', prelude + script], {
    cwd: opts.cwd ?? REPO,
    env: cleanEnv(opts.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return collect(child, opts.input);
}

/** Resolves with the first match of `re` in the child's stdout. */
export function waitForOutput(child: ChildProcess, re: RegExp, stream: 'stdout' | 'stderr' = 'stdout'): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer | string) => {
      seen += d.toString();
      const m = seen.match(re);
      if (m) {
        child[stream]!.off('data', onData);
        resolve(m);
      }
    };
    child[stream]!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`process exited (${code}) before printing ${re}; it printed: ${seen}`)));
  });
}

export interface CliStore {
  /** Global options selecting the store, e.g. ['--data-dir', dir]. */
  args: string[];
  /** The embedded data directory (PGlite backend only). */
  dataDir?: string;
  /** The PostgreSQL schema (postgres backend only). */
  schema?: string;
  cleanup(): void;
}

/** A fresh store on the selected backend (call dropSchemas() in afterAll on PostgreSQL). */
export function cliStore(): CliStore {
  if (BACKEND === 'postgres') {
    const schema = freshSchema();
    return { args: ['--database-url', PG_URL, '--schema', schema], schema, cleanup() {} };
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'runledger-cli-'));
  return { args: ['--data-dir', dataDir], dataDir, cleanup: () => rmSync(dataDir, { recursive: true, force: true }) };
}

export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'runledger-cli-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
