import type { Command } from 'commander';

import { act, examples, withTarget } from '../context.js';
import { printJson } from '../output.js';
import { compact } from '../parse.js';

export function register(program: Command): void {
  const cmd = program
    .command('cancel')
    .description('cancel a run')
    .argument('<id>', 'run id')
    .option('--reason <text>', 'why')
    .option('--json', 'print the run as JSON')
    .action(
      act(async (id: string, o: { reason?: string; json?: boolean }, c: Command) =>
        withTarget(c, async (ledger) => {
          const run = await ledger.run(id).cancel(compact({ reason: o.reason }));
          if (o.json) printJson(run);
        }),
      ),
    );
  examples(cmd, ['runledger cancel "$ID" --reason "superseded by a newer deploy"']);
}
