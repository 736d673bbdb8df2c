/** Exit codes and error messages: usage (2), configuration (2), failures (1); the data directory lock. */
import { type AddressInfo, createServer } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openLedger } from '../../src/index.js';
import { dropSchemas, onPostgres } from '../helpers.js';
import { type CliStore, cliStore, runCli, tempDir } from './cli.js';

let store: CliStore;

/** A port nothing listens on (fetch refuses some well-known ports outright, such as 1). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
const cli = (...args: string[]) => runCli([...store.args, ...args]);

beforeAll(() => {
  store = cliStore();
});
afterAll(async () => {
  store.cleanup();
  await dropSchemas();
});

describe('CLI errors and exit codes', { timeout: 240_000 }, () => {
  it('usage errors exit 2 with a message naming the flag and what is allowed', async () => {
    const unknown = await cli('runs', 'ls', '--colour');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^error: unknown option '--colour'/);

    const missing = await cli('start', '--subject', 'x');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/required option '--job <name>' not specified/);

    const limit = await cli('runs', 'ls', '--limit', '0');
    expect(limit.code).toBe(2);
    expect(limit.stderr).toBe('error: --limit must be a whole number 1–500; got "0"\n');

    const body = await cli('event', 'some-run', 'x', '--body', '{oops');
    expect(body.code).toBe(2);
    expect(body.stderr).toMatch(/^error: --body must be JSON or @file; got "\{oops"/);
    // JSON the parser would silently change is refused, naming where.
    const big = await cli('complete', 'some-run', '--statistics', '{"rows":9007199254740993}');
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(/^error: --statistics\.rows: the integer 9007199254740993 cannot be stored exactly/);
    const dup = await cli('event', 'some-run', 'x', '--body', '{"a":1,"a":2}');
    expect(dup.stderr).toBe('error: --body.a: the key "a" appears twice in one object; send each key once\n');

    const both = await runCli(['--data-dir', '/tmp/x', '--database-url', 'postgres://127.0.0.1/x', 'runs', 'ls']);
    expect(both.code).toBe(2);
    expect(both.stderr).toBe('error: give only one of --server, --database-url and --data-dir; got --database-url and --data-dir\n');

    const help = await runCli(['exec', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Examples:\n {2}\$ runledger exec --job backup/);
  });

  it('a mistyped option is named with the closest one, even where a required option is then missing', async () => {
    const cases: [string[], string, string][] = [
      [['start', '--jobb', 'x'], '--jobb', '--job'],
      [['exec', '--jobb', 'x', '--', 'true'], '--jobb', '--job'],
      [['fail', 'some-run', '--mesage', 'x'], '--mesage', '--message'],
      [['tokens', 'create', '--scop', 'read'], '--scop', '--scope'],
      [['runs', 'ls', '--jobb', 'x'], '--jobb', '--job'],
    ];
    for (const [args, typo, meant] of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toBe(`error: unknown option '${typo}'\n(Did you mean ${meant}?)\n(add --help for usage)\n`);
    }
  });

  it('the library’s input messages reach the CLI unchanged: an empty --type names error.type and what is allowed', async () => {
    const id = (await cli('start', '--job', 'cli-shapes')).stdout.trim();
    const r = await cli('fail', id, '--message', 'x', '--type', '');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: error.type must be 1–200 characters; got ""\n');
  });

  it('a missing run exits 1; --json prints the error code', async () => {
    const r = await cli('runs', 'show', 'no-such-run');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: run no-such-run not found in namespace default\n');
    const j = await cli('runs', 'show', 'no-such-run', '--json');
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stderr)).toEqual({ error: { code: 'not_found', message: 'run no-such-run not found in namespace default' } });
  });

  it('a missing, invalid or unreachable database URL is a clear configuration error (exit 2)', async () => {
    const empty = await runCli(['runs', 'ls'], { env: { DATABASE_URL: '' } });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toBe(
      'error: DATABASE_URL is set but empty; set it to a PostgreSQL URL such as postgres://user:password@host:5432/dbname, ' +
        'or unset it to use the embedded data directory ./.runledger\n',
    );

    const flagEmpty = await runCli(['--database-url', '', 'runs', 'ls']);
    expect(flagEmpty.code).toBe(2);
    expect(flagEmpty.stderr).toMatch(/^error: --database-url is empty; set it to a PostgreSQL URL/);

    const scheme = await runCli(['runs', 'ls'], { env: { DATABASE_URL: 'mysql://app@db/runs' } });
    expect(scheme.code).toBe(2);
    expect(scheme.stderr).toBe('error: database url must start with postgres:// or postgresql://; got "mysql://app@db/runs"\n');

    const prepared = await runCli(['runs', 'ls'], {
      env: { DATABASE_URL: 'postgres://app@127.0.0.1:1/runs', RUNLEDGER_PREPARED_STATEMENTS: 'sometimes' },
    });
    expect(prepared.code).toBe(2);
    expect(prepared.stderr).toBe('error: RUNLEDGER_PREPARED_STATEMENTS must be on or off (also true/false, 1/0); got "sometimes"\n');

    const down = await runCli(['--database-url', 'postgres://app:s3cret@127.0.0.1:1/runs', 'runs', 'ls']);
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/^error: cannot connect to PostgreSQL at postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/runs: .*ECONNREFUSED/);
    expect(down.stderr).not.toContain('s3cret');

    const port = await closedPort();
    const server = await runCli(['--server', `http://127.0.0.1:${port}`, 'runs', 'ls']);
    expect(server.code).toBe(2);
    expect(server.stderr).toMatch(new RegExp(`^error: cannot reach runledger server at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
  });

  // The lock protects embedded (PGlite) data directories; PostgreSQL has no such lock.
  it.skipIf(onPostgres)('an embedded data directory held by another process is data_dir_locked (exit 2), naming the holder', async () => {
    const tmp = tempDir();
    const holder = await openLedger({ dataDir: tmp.dir });
    try {
      const r = await runCli(['--data-dir', tmp.dir, 'runs', 'ls']);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        `error: data directory ${tmp.dir} is in use by process ${process.pid}; an embedded ledger can be opened by one process at a time; ` +
          `to let several commands use it at once, run \`runledger serve --data-dir ${tmp.dir}\`, which they then go through\n`,
      );
      const j = await runCli(['--data-dir', tmp.dir, 'runs', 'ls', '--json']);
      expect(JSON.parse(j.stderr).error.code).toBe('data_dir_locked');
    } finally {
      await holder.close();
    }
    const after = await runCli(['--data-dir', tmp.dir, 'runs', 'ls']);
    expect(after.code).toBe(0);
    expect(after.stdout).toBe('no runs\n');
    tmp.cleanup();
  });
});
