/** `runledger demo`: parses its options, checks the namespace is empty, and seeds it (../demo.ts). */
import type { Command } from 'commander';

import { act, examples, withTarget } from '../context.js';
import { DEMO_SOURCE, seedDemo } from '../demo.js';
import { UsageError } from '../errors.js';
import { println } from '../output.js';

export function register(program: Command): void {
  const cmd = program
    .command('demo')
    .description('fill an empty ledger with realistic sample runs (agent workflows, compliance checks, a collection) for the dashboard')
    .option('--force', 'add the demo runs even if the namespace already has runs')
    .option('--stuck-lease <seconds>', 'lease of the run that stops heartbeating (suspect after one lease, timed out after two)', '60')
    .action(
      act(async (o: { force?: boolean; stuckLease: string }, c: Command) => {
        const stuckLeaseS = Number(o.stuckLease);
        if (!Number.isInteger(stuckLeaseS) || stuckLeaseS < 1)
          throw new UsageError(`--stuck-lease must be a whole number of seconds ≥ 1; got ${JSON.stringify(o.stuckLease)}`);
        return withTarget(c, async (ledger) => {
          const existing = await ledger.listRuns({ limit: 1 });
          if (existing.runs.length && !o.force) {
            throw new UsageError(
              `namespace ${ledger.namespace} already has runs; demo fills an empty ledger (add --force to add the sample runs anyway, or use --namespace demo)`,
            );
          }
          const summary = await seedDemo(ledger, { stuckLeaseS });
          println(`Imported ${summary.imported} historical runs (source ${DEMO_SOURCE}) and recorded ${summary.live} live runs.`);
          println(`  agent-md completed with checkpoints: ${summary.runIds.agentMdCompleted}`);
          println(`  agent-md failed after a retry:       ${summary.runIds.agentMdFailed}`);
          println(
            `  week-collection in progress:         ${summary.runIds.collection} (${summary.runIds.collectionChildren.length} child runs)`,
          );
          println(
            `  stops heartbeating:                  ${summary.runIds.stuck} (suspect after ${stuckLeaseS} s, timed out by the reaper after ${2 * stuckLeaseS} s)`,
          );
          println('Open the dashboard: runledger serve, then http://127.0.0.1:7070/');
        });
      }),
    );
  examples(cmd, ['runledger demo', 'runledger --namespace demo demo', 'runledger --server http://127.0.0.1:7070 demo']);
}
