import type { Command } from 'commander';

import type { Json } from '../../core/types.js';
import { act, examples, withTarget } from '../context.js';
import { printJson } from '../output.js';
import { jsonOption } from '../parse.js';

export function register(program: Command): void {
  const cmd = program
    .command('heartbeat')
    .description("renew a running run's lease (any event also renews it)")
    .argument('<id>', 'run id')
    .option('--progress <json>', 'progress to record, as JSON (or @file)', jsonOption('--progress'))
    .option('--json', 'print the run as JSON')
    .action(
      act(async (id: string, o: { progress?: Json; json?: boolean }, c: Command) =>
        withTarget(c, async (ledger) => {
          const run = await ledger.run(id).heartbeat(o.progress);
          if (o.json) printJson(run);
        }),
      ),
    );
  examples(cmd, [
    'runledger heartbeat "$ID"',
    'runledger heartbeat "$ID" --progress \'{"done":3,"of":10}\'',
    '# keep a long shell step alive:',
    'while sleep 20; do runledger heartbeat "$ID"; done & HB=$!; long_step; kill $HB',
  ]);
}
