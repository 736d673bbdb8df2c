import type { Command } from 'commander';

import type { RunRef } from '../../core/types.js';
import { act, examples, withTarget } from '../context.js';
import { printJson, println } from '../output.js';

export function register(program: Command): void {
  const cmd = program
    .command('reap')
    .summary('flag suspect runs and time out expired ones')
    .description(
      'flag runs past one lease as suspect and time out runs past two leases or their deadline (a server does this every few seconds)',
    )
    .option('--json', 'print { acquired, suspected, timedOut } as JSON')
    .action(
      act(async (o: { json?: boolean }, c: Command) =>
        withTarget(c, async (ledger) => {
          const result = await ledger.reap();
          if (o.json) return printJson(result);
          if (!result.acquired) return println('another reaper is running right now; nothing done');
          const list = (refs: RunRef[]) => refs.map((r) => `  ${r.namespace}/${r.id}`);
          println(`suspected: ${result.suspected.length}`);
          for (const l of list(result.suspected)) println(l);
          println(`timed out: ${result.timedOut.length}`);
          for (const l of list(result.timedOut)) println(l);
        }),
      ),
    );
  examples(cmd, [
    'runledger reap',
    '# from cron, when no server runs:',
    '*/1 * * * * runledger reap --database-url "$DATABASE_URL" --json',
  ]);
}
