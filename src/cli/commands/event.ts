import { type Command, Option } from 'commander';

import { EVENT_LEVELS, type EventLevel, type Json } from '../../core/types.js';
import { act, examples, withTarget } from '../context.js';
import { printJson, println } from '../output.js';
import { compact, jsonOption } from '../parse.js';

export function register(program: Command): void {
  const cmd = program
    .command('event')
    .description("append an event to a run's log and print its seq (also renews the lease)")
    .argument('<id>', 'run id')
    .argument('<type>', 'event type, e.g. progress')
    .option('--body <json>', 'event body, as JSON or @file', jsonOption('--body'))
    .option('--key <key>', 'idempotency key: repeating it returns the original seq and writes nothing')
    .addOption(new Option('--level <level>', 'level').choices(EVENT_LEVELS))
    .option('--json', 'print the result ({ seq, key, duplicate }) as JSON')
    .action(
      act(async (id: string, type: string, o: { body?: Json; key?: string; level?: EventLevel; json?: boolean }, c: Command) =>
        withTarget(c, async (ledger) => {
          const result = await ledger.run(id).event(type, o.body, compact({ key: o.key, level: o.level }));
          if (o.json) printJson(result);
          else println(String(result.seq));
        }),
      ),
    );
  examples(cmd, [
    'runledger event "$ID" progress --body \'{"done":3,"of":10}\'',
    'runledger event "$ID" page.fetched --key page-7 --body \'{"page":7}\'   # safe to retry',
    'runledger event "$ID" warning --level warn --body \'"disk 91% full"\'',
  ]);
}
