import type { Command } from 'commander';

import { act, examples, withTarget } from '../context.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from '../errors.js';
import { printJson, println } from '../output.js';

export function register(program: Command): void {
  const cmd = program
    .command('verify')
    .description('recompute hash chains and checkpoint hashes; exit 1 when any gap or mismatch is found')
    .argument('[id]', 'the run to verify')
    .option('--all', 'verify every run in the namespace')
    .option('--json', 'print { ok, runsChecked, eventsChecked, problems } as JSON')
    .action(
      act(async (id: string | undefined, o: { all?: boolean; json?: boolean }, c: Command) => {
        if (id === undefined && !o.all) throw new UsageError('give a run id, or --all to verify every run');
        if (id !== undefined && o.all) throw new UsageError('give either a run id or --all, not both');
        return withTarget(c, async (ledger) => {
          const result = await ledger.verify(id);
          if (o.json) printJson(result);
          else if (result.ok) println(`ok: ${result.runsChecked} run(s), ${result.eventsChecked} event(s) verified`);
          else {
            println(`${result.problems.length} problem(s) in ${result.runsChecked} run(s), ${result.eventsChecked} event(s):`);
            for (const p of result.problems)
              println(
                `  ${p.runId}${p.seq !== undefined ? ` #${p.seq}` : ''}${p.checkpoint ? ` checkpoint ${p.checkpoint}` : ''}: ${p.problem}: ${p.message}`,
              );
          }
          return result.ok ? EXIT_OK : EXIT_FAILURE;
        });
      }),
    );
  examples(cmd, ['runledger verify "$ID"', 'runledger verify --all', 'runledger verify --all --json | jq ".problems[]"']);
}
