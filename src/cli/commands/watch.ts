import type { Command } from 'commander';

import { type Change, CHANGE_TYPES, type ChangeType } from '../../core/changes.js';
import { act, examples, withTarget } from '../context.js';
import { UsageError } from '../errors.js';
import { println } from '../output.js';

/** One human line per change: when, type, job, subject, run and what it became. */
function line(c: Change): string {
  const d = c.data as { run?: { status?: string }; previousStatus?: string | null; status?: string };
  const what =
    c.type === 'subject.changed' ? `${d.previousStatus ?? '-'} → ${d.status}` : d.run?.status ? d.run.status : JSON.stringify(c.data);
  return [c.at, c.type, c.job, c.subject ?? '-', c.runId ?? '-', what].join('  ');
}

export function register(program: Command): void {
  const cmd = program
    .command('watch')
    .description('follow the change feed (run.finished, run.suspect, subject.changed…) until interrupted')
    .option('--types <list>', `comma list of ${CHANGE_TYPES.join(', ')}`)
    .option('--job <job>', 'only changes of this job')
    .option('--after <cursor>', "start after this cursor (a change's cursor; 0: from the start)", 'now')
    .option('--count <n>', 'exit after this many changes')
    .option('--json', 'print each change as one line of JSON (its `cursor` resumes with --after)')
    .action(
      act(async (o: { types?: string; job?: string; after: string; count?: string; json?: boolean }, c: Command) => {
        const count = o.count === undefined ? undefined : Number(o.count);
        if (count !== undefined && (!Number.isInteger(count) || count < 1))
          throw new UsageError(`--count must be a whole number ≥ 1; got ${JSON.stringify(o.count)}`);
        const types = o.types?.split(',').filter(Boolean) as ChangeType[] | undefined;
        return withTarget(c, async (ledger) => {
          // Checked before following, so a bad --types or --after is an error, not a silent wait.
          await ledger.changes({ after: o.after, types, job: o.job, limit: 1 });
          let seen = 0;
          const stopper = new AbortController();
          const stop = () => stopper.abort();
          process.once('SIGINT', stop).once('SIGTERM', stop);
          const w = ledger.watch({
            after: o.after,
            types,
            job: o.job,
            signal: stopper.signal,
            onChange: (change) => {
              if (stopper.signal.aborted) return;
              if (o.json) process.stdout.write(JSON.stringify(change) + '\n');
              else println(line(change));
              if (count !== undefined && ++seen >= count) stopper.abort();
            },
            onError: (err) => process.stderr.write(`runledger watch: ${(err as Error).message}; retrying\n`),
          });
          try {
            await Promise.race([
              w.done,
              new Promise<void>((resolve) => stopper.signal.addEventListener('abort', () => resolve(), { once: true })),
            ]);
          } finally {
            await w.stop();
            process.off('SIGINT', stop).off('SIGTERM', stop);
          }
        });
      }),
    );
  examples(cmd, [
    'runledger watch --types run.finished',
    'runledger watch --job nightly-export --json | jq -c "select(.data.run.status != \\"completed\\")"',
    'runledger watch --after 0 --count 10 --json',
  ]);
}
