import type { Command } from 'commander';

import { migrate } from '../../store/migrate.js';
import { act, directOptions, examples } from '../context.js';
import { printJson, println } from '../output.js';
import { openDirect } from '../target.js';

export function register(program: Command): void {
  const cmd = program
    .command('migrate')
    .summary('apply pending database migrations')
    .description('apply pending database migrations (every command also applies them on open) and print the current one')
    .option('--json', 'print { applied, current } as JSON')
    .action(
      act(async (o: { json?: boolean }, c: Command) => {
        const ledger = await openDirect({ ...directOptions(c, 'migrate'), migrate: false, purpose: 'migrate' });
        try {
          const result = await migrate(ledger.database);
          if (o.json) return printJson({ location: ledger.location, ...result });
          println(`database: ${ledger.location}`);
          println(result.applied.length ? `applied: ${result.applied.join(', ')}` : 'applied: nothing (up to date)');
          println(`current: ${result.current ?? 'none'}`);
        } finally {
          await ledger.close();
        }
      }),
    );
  examples(cmd, [
    'runledger migrate',
    'runledger migrate --database-url postgres://app@db.internal:5432/runledger',
    'DATABASE_URL=postgres://… runledger migrate --json',
  ]);
}
