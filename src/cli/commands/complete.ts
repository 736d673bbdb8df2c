import type { Command } from 'commander';

import type { Json, JsonObject } from '../../core/types.js';
import { act, examples, withTarget } from '../context.js';
import { printJson } from '../output.js';
import { compact, jsonObjectOption, jsonOption } from '../parse.js';

export function register(program: Command): void {
  const cmd = program
    .command('complete')
    .description('mark a run completed, with its output and statistics, in one transaction')
    .argument('<id>', 'run id')
    .option('--output <json>', 'the output, as JSON or @file (@- reads stdin)', jsonOption('--output'))
    .option('--statistics <json>', 'statistics, as a JSON object or @file', jsonObjectOption('--statistics'))
    .option('--notes <text>', 'replace the notes (without it, the notes are kept)')
    .option('--json', 'print the run as JSON')
    .action(
      act(async (id: string, o: { output?: Json; statistics?: JsonObject; notes?: string; json?: boolean }, c: Command) =>
        withTarget(c, async (ledger) => {
          const run = await ledger.run(id).complete(compact({ output: o.output, statistics: o.statistics, notes: o.notes }));
          if (o.json) printJson(run);
        }),
      ),
    );
  examples(cmd, [
    'runledger complete "$ID"',
    'runledger complete "$ID" --output \'{"rows":42}\' --statistics \'{"durationMs":1200}\' --notes "150 nouns"',
    'jq -n \'{report: "ok"}\' | runledger complete "$ID" --output @-',
  ]);
}
