import type { Command } from 'commander';

import { NotFoundError } from '../../core/errors.js';
import type { ExpectationInput } from '../../core/types.js';
import { act, examples, withTarget } from '../context.js';
import { printJson, println, table } from '../output.js';
import { compact } from '../parse.js';

interface SetOptions {
  every?: string;
  cron?: string;
  timezone?: string;
  grace: string;
  perJob?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  const expect = program
    .command('expect')
    .description('expectations: how often a job (each of its subjects, or the job as a whole) must run; the server flags what is overdue');

  const set = expect
    .command('set')
    .description('set (create or replace) the expectation of a job; over --server it needs an admin token')
    .argument('<job>', 'the job')
    .option('--every <duration>', 'an interval after each start: 90s, 30m, 12h, 7d')
    .option('--cron <expression>', 'a cron schedule such as "0 */6 * * *" (instead of --every)')
    .option('--timezone <zone>', 'IANA time zone of --cron (default UTC), e.g. Europe/Berlin')
    .requiredOption('--grace <duration>', 'how long after a slot a subject becomes overdue: 30m')
    .option('--per-job', 'watch the job as a whole instead of each subject')
    .option('--json', 'print the expectation as JSON')
    .action(
      act(async (job: string, o: SetOptions, c: Command) =>
        withTarget(c, async (ledger) => {
          const input = compact({
            every: o.every,
            cron: o.cron,
            timezone: o.timezone,
            grace: o.grace,
            ...(o.perJob ? { perSubject: false } : {}),
          }) as ExpectationInput;
          const e = await ledger.setExpectation(job, input);
          if (o.json) return printJson(e);
          println(
            `expectation of ${e.job}: ${e.every ? `every ${e.every}` : `cron "${e.cron}" (${e.timezone})`}, grace ${e.grace}, ${e.perSubject ? 'per subject' : 'the job as a whole'}`,
          );
        }),
      ),
    );
  examples(set, [
    'runledger expect set compliance-check --every 12h --grace 30m',
    'runledger expect set nightly-export --cron "0 2 * * *" --timezone Europe/Berlin --grace 1h --per-job',
  ]);

  const ls = expect
    .command('ls')
    .alias('list')
    .description('list the expectations of the namespace')
    .option('--json', 'print them as JSON')
    .action(
      act(async (o: { json?: boolean }, c: Command) =>
        withTarget(c, async (ledger) => {
          const list = await ledger.listExpectations();
          if (o.json) return printJson(list);
          if (!list.length) return println('no expectations');
          println(
            table(
              ['JOB', 'SCHEDULE', 'GRACE', 'WATCHES', 'NEXT DUE', 'OVERDUE'],
              list.map((e) => [
                e.job,
                e.every ? `every ${e.every}` : `${e.cron} (${e.timezone})`,
                e.grace,
                e.perSubject ? 'each subject' : 'the job',
                e.perSubject ? '-' : (e.nextDueAt ?? '-'),
                e.perSubject ? '-' : e.overdue ? 'yes' : 'no',
              ]),
            ),
          );
        }),
      ),
    );
  examples(ls, ['runledger expect ls', 'runledger expect ls --json']);

  const rm = expect
    .command('rm')
    .alias('remove')
    .description('remove the expectation of a job; its subjects are no longer due')
    .argument('<job>', 'the job')
    .action(
      act(async (job: string, _o: unknown, c: Command) =>
        withTarget(c, async (ledger) => {
          if (!(await ledger.deleteExpectation(job))) throw new NotFoundError(`job ${job} has no expectation`);
          println(`removed the expectation of ${job}`);
        }),
      ),
    );
  examples(rm, ['runledger expect rm compliance-check']);
  examples(expect, [
    'runledger expect set compliance-check --every 12h --grace 30m',
    'runledger expect ls',
    'runledger expect rm compliance-check',
  ]);
}
