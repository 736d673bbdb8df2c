/**
 * Glue between commander and the target: resolves the global options (flag, then
 * environment, then default) into TargetOptions, and opens/closes the ledger around a
 * command.
 */
import type { Command } from 'commander';

import { ConfigurationError, LedgerError } from '../core/errors.js';
import { DATA_DIR_NAME, findDataDir } from './data-dir.js';
import { EXIT_OK, isServerUnreachable, networkCode, UsageError } from './errors.js';
import { openTarget, type Target, type TargetOptions } from './target.js';

export interface GlobalOptions {
  dataDir?: string;
  databaseUrl?: string;
  server?: string;
  token?: string;
  namespace: string;
  schema?: string;
  /** false with --no-prepared-statements; otherwise the environment (RUNLEDGER_PREPARED_STATEMENTS) decides. */
  preparedStatements: boolean;
}

export function rootOf(cmd: Command): Command {
  let c = cmd;
  while (c.parent) c = c.parent;
  return c;
}

const FLAGS = { server: '--server', databaseUrl: '--database-url', dataDir: '--data-dir' } as const;
const ENVS = { server: 'RUNLEDGER_SERVER', databaseUrl: 'DATABASE_URL', dataDir: 'RUNLEDGER_DATA_DIR' } as const;

/**
 * Which store the command uses. A flag on the command line beats an environment variable
 * (so `--data-dir x` works with DATABASE_URL set); two such flags at once are a usage error.
 */
export function targetOptions(cmd: Command): TargetOptions {
  const root = rootOf(cmd);
  const o = root.opts<GlobalOptions>();
  const keys = ['server', 'databaseUrl', 'dataDir'] as const;
  const fromCli = keys.filter((k) => o[k] !== undefined && root.getOptionValueSource(k) === 'cli');
  if (fromCli.length > 1) {
    throw new UsageError(`give only one of --server, --database-url and --data-dir; got ${fromCli.map((k) => FLAGS[k]).join(' and ')}`);
  }
  const choice = fromCli[0] ?? (o.server !== undefined ? 'server' : o.databaseUrl !== undefined ? 'databaseUrl' : 'dataDir');
  const value = o[choice];
  if (value !== undefined && value.trim() === '') {
    const source = root.getOptionValueSource(choice) === 'env' ? `${ENVS[choice]} is set but empty` : `${FLAGS[choice]} is empty`;
    const want =
      choice === 'databaseUrl'
        ? 'a PostgreSQL URL such as postgres://user:password@host:5432/dbname, or unset it to use the embedded data directory ./.runledger'
        : choice === 'server'
          ? 'a runledger server URL such as http://127.0.0.1:7070, or unset it'
          : 'a directory path';
    throw new ConfigurationError(`${source}; set it to ${want}`);
  }
  const base = { token: o.token || undefined, namespace: o.namespace, schema: o.schema };
  if (choice === 'server') return { ...base, server: o.server };
  if (choice === 'databaseUrl')
    return { ...base, databaseUrl: o.databaseUrl, ...(o.preparedStatements === false ? { preparedStatements: false } : {}) };
  return { ...base, dataDir: o.dataDir ?? findDataDir() ?? DATA_DIR_NAME };
}

/** Opens the command's ledger, runs `fn`, closes it; returns fn's exit code (default 0). */
export async function withTarget(cmd: Command, fn: (ledger: Target) => Promise<number | void>): Promise<number> {
  const ledger = await openTarget(targetOptions(cmd));
  try {
    return (await fn(ledger)) ?? EXIT_OK;
  } catch (err) {
    // A stream or request that lost its server mid-way: name the server, as a configuration problem.
    const info = ledger.target;
    if (info.kind === 'http' && !(err instanceof LedgerError) && !isServerUnreachable(err)) {
      const net = networkCode(err);
      if (net) throw new ConfigurationError(`cannot reach the runledger server at ${info.baseUrl} (${net})`, err);
    }
    throw err;
  } finally {
    await ledger.close();
  }
}

/** Commands that must not go through a server (they need the database itself). */
export function directOptions(cmd: Command, what: string): TargetOptions {
  const opts = targetOptions(cmd);
  if (opts.server !== undefined) {
    throw new UsageError(`${what} needs direct access to the database; use --database-url or --data-dir, not --server`);
  }
  return opts;
}

/** Wraps an action so that its returned number becomes the process exit code. */
export function act<A extends unknown[]>(fn: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const code = await fn(...args);
    if (code !== undefined) process.exitCode = code;
  };
}

/** Appends an "Examples:" section to a command's --help. */
export function examples(cmd: Command, lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => (l.startsWith('#') ? `  ${l}` : `  $ ${l}`)).join('\n')}\n`);
}
