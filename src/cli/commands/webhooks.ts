import type { Command } from 'commander';

import { CHANGE_TYPES, type ChangeType } from '../../core/changes.js';
import { NotFoundError } from '../../core/errors.js';
import type { DeliveryState } from '../../core/webhooks.js';
import { act, examples, withTarget } from '../context.js';
import { printJson, println, table } from '../output.js';
import { compact, intOption, listOption } from '../parse.js';

interface AddOptions {
  types: string[];
  job?: string;
  description?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const webhooks = program
    .command('webhooks')
    .description('webhooks: POST signed changes (Standard Webhooks) to a URL; changing them over --server needs an admin token');

  const add = webhooks
    .command('add')
    .description('subscribe a URL to change types; prints the signing secret, which is shown only once')
    .argument('<url>', 'http or https URL to POST to')
    .requiredOption('--types <types>', `comma list of change types: ${CHANGE_TYPES.join(', ')}`, listOption)
    .option('--job <job>', 'only changes of this job')
    .option('--description <text>', 'what it is for')
    .option('--json', 'print the webhook (with its secret) as JSON')
    .action(
      act(async (url: string, o: AddOptions, c: Command) =>
        withTarget(c, async (ledger) => {
          const hook = await ledger.createWebhook(compact({ url, types: o.types as ChangeType[], job: o.job, description: o.description }));
          if (o.json) return printJson(hook);
          println(`webhook ${hook.id} → ${hook.url} (${hook.types.join(', ')}${hook.job ? `, job ${hook.job}` : ''})`);
          println(`signing secret (shown only now; receivers verify with it): ${hook.secret}`);
        }),
      ),
    );
  examples(add, [
    'runledger webhooks add https://hooks.example.com/runledger --types run.finished',
    'runledger webhooks add https://ops.example.com/alerts --types run.finished,expectation.missed --job nightly-export',
  ]);

  const ls = webhooks
    .command('ls')
    .alias('list')
    .description('list the webhooks of the namespace with their pending and failed deliveries')
    .option('--json', 'print them as JSON')
    .action(
      act(async (o: { json?: boolean }, c: Command) =>
        withTarget(c, async (ledger) => {
          const list = await ledger.listWebhooks();
          if (o.json) return printJson(list);
          if (!list.length) return println('no webhooks');
          println(
            table(
              ['ID', 'URL', 'TYPES', 'JOB', 'PENDING', 'FAILED', 'STATE'],
              list.map((w) => [
                w.id,
                w.url,
                w.types.join(','),
                w.job ?? '-',
                String(w.pending),
                String(w.failed),
                w.disabledAt ? `disabled ${w.disabledAt}` : 'enabled',
              ]),
            ),
          );
        }),
      ),
    );
  examples(ls, ['runledger webhooks ls']);

  const rm = webhooks
    .command('rm')
    .alias('remove')
    .description('remove a webhook with its delivery log')
    .argument('<id>', 'the webhook id (wh_…)')
    .action(
      act(async (id: string, _o: unknown, c: Command) =>
        withTarget(c, async (ledger) => {
          if (!(await ledger.deleteWebhook(id))) throw new NotFoundError(`no webhook ${id}`);
          println(`removed webhook ${id}`);
        }),
      ),
    );
  examples(rm, ['runledger webhooks rm wh_3kTq9ZpL0aXb2cDe']);

  const deliveries = webhooks
    .command('deliveries')
    .description('the deliveries of a webhook, newest first, with every attempt (time, status or error, duration)')
    .argument('<id>', 'the webhook id (wh_…)')
    .option('--state <state>', 'only pending, delivered or failed ones')
    .option('--limit <n>', 'how many (1–200)', intOption('--limit', 1, 200), 20)
    .option('--json', 'print them as JSON')
    .action(
      act(async (id: string, o: { state?: DeliveryState; limit: number; json?: boolean }, c: Command) =>
        withTarget(c, async (ledger) => {
          const list = await ledger.listWebhookDeliveries(id, compact({ state: o.state, limit: o.limit }));
          if (o.json) return printJson(list);
          if (!list.length) return println('no deliveries');
          println(
            table(
              ['CHANGE', 'TYPE', 'STATE', 'ATTEMPTS', 'LAST ATTEMPT', 'ANSWER', 'NEXT'],
              list.map((d) => {
                const last = d.log[0];
                return [
                  String(d.changeId),
                  d.type,
                  d.state,
                  String(d.attempts),
                  last ? `${last.at} (${last.durationMs} ms)` : '-',
                  last ? (last.statusCode !== null ? String(last.statusCode) : (last.error ?? '-')) : '-',
                  d.nextAt ?? '-',
                ];
              }),
            ),
          );
        }),
      ),
    );
  examples(deliveries, ['runledger webhooks deliveries wh_3kTq9ZpL0aXb2cDe --state failed']);

  const replay = webhooks
    .command('replay')
    .description('deliver again every matching change after a cursor (0: from the start); enables a disabled webhook')
    .argument('<id>', 'the webhook id (wh_…)')
    .requiredOption('--after <cursor>', 'a change cursor (from `runledger watch --json` or a delivery), or 0')
    .action(
      act(async (id: string, o: { after: string }, c: Command) =>
        withTarget(c, async (ledger) => {
          const { queued } = await ledger.replayWebhook(id, { after: o.after });
          println(`queued ${queued} deliver${queued === 1 ? 'y' : 'ies'} for webhook ${id}`);
        }),
      ),
    );
  examples(replay, ['runledger webhooks replay wh_3kTq9ZpL0aXb2cDe --after 0']);
  examples(webhooks, [
    'runledger webhooks add https://hooks.example.com/runledger --types run.finished',
    'runledger webhooks ls',
    'runledger webhooks deliveries wh_3kTq9ZpL0aXb2cDe',
    'runledger webhooks replay wh_3kTq9ZpL0aXb2cDe --after 0',
    'runledger webhooks rm wh_3kTq9ZpL0aXb2cDe',
  ]);
}
