import type { Command } from 'commander';

import type { Json, JsonObject } from '../../core/types.js';
import { act, examples, withTarget } from '../context.js';
import { printJson } from '../output.js';
import { compact, jsonObjectOption, jsonOption } from '../parse.js';

interface FailOptions {
  message: string;
  type?: string;
  details?: Json;
  statistics?: JsonObject;
  notes?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('fail')
    .description('mark a run failed with an error')
    .argument('<id>', 'run id')
    .requiredOption('--message <text>', 'what went wrong')
    .option('--type <type>', 'error type, e.g. timeout or validation')
    .option('--details <json>', 'error details, as JSON or @file', jsonOption('--details'))
    .option('--statistics <json>', 'statistics, as a JSON object or @file', jsonObjectOption('--statistics'))
    .option('--notes <text>', 'replace the notes (without it, the notes are kept)')
    .option('--json', 'print the run as JSON')
    .action(
      act(async (id: string, o: FailOptions, c: Command) =>
        withTarget(c, async (ledger) => {
          const error = compact({ message: o.message, type: o.type, details: o.details });
          const run = await ledger.run(id).fail(compact({ error, statistics: o.statistics, notes: o.notes }));
          if (o.json) printJson(run);
        }),
      ),
    );
  examples(cmd, [
    'runledger fail "$ID" --message "upstream returned 503" --type http_error',
    '# in a pipeline: complete on success, fail otherwise',
    'if step; then runledger complete "$ID"; else runledger fail "$ID" --message "step exited $?"; fi',
  ]);
}
