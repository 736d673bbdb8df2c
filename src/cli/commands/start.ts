import { type Command, Option } from 'commander';

import type { JsonObject, StartRunInput } from '../../core/types.js';
import { act, examples, withTarget } from '../context.js';
import { printJson, println } from '../output.js';
import { compact, intOption, jsonObjectOption, keyValueOption } from '../parse.js';

interface StartOptions {
  job: string;
  subject?: string;
  trigger?: string;
  actor?: string;
  parent?: string;
  id?: string;
  leaseS?: number;
  deadline?: string;
  notes?: string;
  param?: Record<string, string>;
  params?: JsonObject;
  tag?: Record<string, string>;
  externalId?: Record<string, string>;
  submitted?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('start')
    .description('start a run and print its id (for shell pipelines); idempotent with --id')
    .requiredOption('--job <name>', 'what kind of work (e.g. nightly-export)')
    .option('--subject <subject>', 'what the run is about (e.g. acme/api)')
    .option('--trigger <trigger>', 'why it runs (schedule, manual, backfill…)')
    .option('--actor <actor>', 'who asked')
    .option('--parent <id>', 'parent run id')
    .option('--id <id>', 'run id (1–128 of letters, digits, ._:@+-); the same id and identity returns the existing run')
    .option('--lease-s <seconds>', 'lease: without a heartbeat for 2× this, the run is timed out', intOption('--lease-s', 1))
    .option('--deadline <time>', 'ISO 8601 time after which the run is timed out')
    .option('--notes <text>', 'free-form notes')
    .option('--param <key=value>', 'a parameter (repeatable; values are strings)', keyValueOption('--param'))
    .option('--params <json>', 'parameters as a JSON object (or @file); --param entries are merged in', jsonObjectOption('--params'))
    .option('--tag <key=value>', 'a tag (repeatable)', keyValueOption('--tag'))
    .option('--external-id <key=value>', 'an external id such as temporal.workflowId=wf-1 (repeatable)', keyValueOption('--external-id'))
    .addOption(new Option('--submitted', 'record the run as submitted instead of starting it'))
    .option('--json', 'print the whole run as JSON instead of its id')
    .action(
      act(async (o: StartOptions, c: Command) =>
        withTarget(c, async (ledger) => {
          const params = o.params || o.param ? { ...(o.params ?? {}), ...(o.param ?? {}) } : undefined;
          const input: StartRunInput = compact({
            id: o.id,
            job: o.job,
            subject: o.subject,
            trigger: o.trigger,
            actor: o.actor,
            parentId: o.parent,
            status: o.submitted ? ('submitted' as const) : undefined,
            leaseS: o.leaseS,
            deadlineAt: o.deadline,
            notes: o.notes,
            params,
            tags: o.tag,
            externalIds: o.externalId,
          });
          const run = await ledger.startRun(input);
          if (o.json) printJson({ ...run.run, created: run.created });
          else println(run.id);
        }),
      ),
    );
  examples(cmd, [
    'ID=$(runledger start --job nightly-export --subject acme --trigger schedule --lease-s 300)',
    'runledger start --job week-collection --id "week-2026-05" --param week=2026-05   # safe to repeat',
    'runledger start --job agent-md --subject acme/api --external-id temporal.workflowId=wf-42 --tag team=core',
  ]);
}
