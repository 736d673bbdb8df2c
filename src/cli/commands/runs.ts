import type { Command } from 'commander';

import type { ListRunsFilter, Run, RunStatus } from '../../core/types.js';
import { act, examples, withTarget } from '../context.js';
import { formatAge, oneLine, printJson, println, runDuration, runsTable, runStatus, table } from '../output.js';
import { compact, intOption, listOption } from '../parse.js';
import { formatEvent, tailRun } from '../tail.js';

interface LsOptions {
  job?: string;
  subject?: string;
  status?: string[];
  trigger?: string;
  actor?: string;
  parent?: string;
  externalId?: string;
  missingExternalId?: string;
  tag?: string;
  createdAfter?: string;
  createdBefore?: string;
  limit?: number;
  cursor?: string;
  json?: boolean;
}

function registerLs(runs: Command): void {
  const cmd = runs
    .command('ls')
    .alias('list')
    .description('list runs, newest first (keyset paging with --cursor)')
    .option('--job <name>', 'only this job')
    .option('--subject <subject>', 'only this subject')
    .option('--status <list>', 'only these statuses, comma separated (e.g. failed,timed_out)', listOption)
    .option('--trigger <trigger>', 'only this trigger')
    .option('--actor <actor>', 'only this actor')
    .option('--parent <id>', 'only children of this run')
    .option('--external-id <key:value>', 'only runs with this external id')
    .option('--missing-external-id <key>', 'only runs that have no external id under this key')
    .option('--tag <key:value>', 'only runs with this tag')
    .option('--created-after <time>', 'created after this ISO 8601 time')
    .option('--created-before <time>', 'created before this ISO 8601 time')
    .option('--limit <n>', 'page size 1–500 (default 50)', intOption('--limit', 1, 500))
    .option('--cursor <cursor>', 'the next page: the cursor printed by the previous page')
    .option('--json', 'print { runs, nextCursor } as JSON')
    .action(
      act(async (o: LsOptions, c: Command) =>
        withTarget(c, async (ledger) => {
          const filter: ListRunsFilter = compact({
            job: o.job,
            subject: o.subject,
            status: o.status as RunStatus[] | undefined,
            trigger: o.trigger,
            actor: o.actor,
            parentId: o.parent,
            externalId: o.externalId,
            missingExternalId: o.missingExternalId,
            tag: o.tag,
            createdAfter: o.createdAfter,
            createdBefore: o.createdBefore,
            limit: o.limit,
            cursor: o.cursor,
          });
          const page = await ledger.listRuns(filter);
          if (o.json) return printJson(page);
          if (page.runs.length === 0) println('no runs');
          else println(runsTable(page.runs));
          if (page.nextCursor) process.stderr.write(`more: add --cursor ${page.nextCursor}\n`);
        }),
      ),
    );
  examples(cmd, [
    'runledger runs ls',
    'runledger runs ls --job agent-md --status failed,timed_out --limit 20',
    'runledger runs ls --missing-external-id temporal.workflowId --created-after 2026-01-01T00:00:00Z',
    'runledger runs ls --tag team:core --json | jq -r ".runs[].id"',
  ]);
}

function kv(map: Record<string, string>): string {
  const entries = Object.entries(map);
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(', ') : '-';
}

function showRun(run: Run): string {
  const now = Date.now();
  const when = (iso: string | null) => (iso ? `${iso} (${formatAge(iso, now)} ago)` : '-');
  const rows: [string, string][] = [
    ['id', run.id],
    ['namespace', run.namespace],
    ['status', runStatus(run) + (run.attempt > 1 ? ` (attempt ${run.attempt})` : '')],
    ['job', run.job],
    ['subject', run.subject ?? '-'],
    ['trigger', run.trigger ?? '-'],
    ['actor', run.actor ?? '-'],
    ['parent', run.parentId ?? '-'],
    ['created', when(run.createdAt)],
    ['started', when(run.startedAt)],
    ['finished', when(run.finishedAt)],
    ['duration', runDuration(run, now)],
    ['heartbeat', when(run.heartbeatAt)],
    ['lease', run.leaseS ? `${run.leaseS}s` : '-'],
    ['deadline', run.deadlineAt ?? '-'],
    ['external ids', kv(run.externalIds)],
    ['tags', kv(run.tags)],
    ['params', oneLine(run.params, 200) || '-'],
    ['notes', run.notes ?? '-'],
    ['output', run.output === null ? '-' : oneLine(run.output, 200)],
    ['statistics', run.statistics === null ? '-' : oneLine(run.statistics, 200)],
    ['error', run.error ? `${run.error.type ? `${run.error.type}: ` : ''}${run.error.message}` : '-'],
    ['progress', run.progress === null ? '-' : oneLine(run.progress, 200)],
  ];
  if (run.source) rows.push(['source', `${run.source} ${run.sourceId ?? ''}`.trim()]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

function registerShow(runs: Command): void {
  const cmd = runs
    .command('show')
    .description('show a run, its most recent events and its checkpoints')
    .argument('<id>', 'run id')
    .option('--events <n>', 'how many recent events to show (default 20)', intOption('--events', 0, 1000), 20)
    .option('--json', 'print { run, events, checkpoints } as JSON')
    .action(
      act(async (id: string, o: { events: number; json?: boolean }, c: Command) =>
        withTarget(c, async (ledger) => {
          const run = await ledger.getRun(id);
          const handle = ledger.run(id);
          const events =
            o.events > 0 ? (await handle.listEvents({ afterSeq: Math.max(0, run.lastSeq - o.events), limit: o.events })).events : [];
          const checkpoints = await handle.listCheckpoints();
          if (o.json) return printJson({ run, events, checkpoints });
          println(showRun(run));
          println();
          println(`events (${run.lastSeq}${events.length < run.lastSeq ? `, showing the last ${events.length}` : ''})`);
          for (const e of events) println(`  ${formatEvent(e)}`);
          println();
          println(`checkpoints (${checkpoints.length})`);
          if (checkpoints.length) {
            const t = table(
              ['NAME', 'KIND', 'SEQ', 'HASH', 'CREATED'],
              checkpoints.map((k) => [k.name, k.kind ?? '-', String(k.seq), k.contentHash.slice(0, 16), k.createdAt]),
            );
            println(t.replace(/^/gm, '  '));
          }
        }),
      ),
    );
  examples(cmd, [
    'runledger runs show "$ID"',
    'runledger runs show "$ID" --events 100',
    'runledger runs show "$ID" --json | jq .run.status',
  ]);
}

function registerTail(runs: Command): void {
  const cmd = runs
    .command('tail')
    .description("follow a run's events live until it finishes (exit 0 if it completed, 1 if it failed, was cancelled or timed out)")
    .argument('<id>', 'run id')
    .option('-n, --lines <n>', 'print this many events from before now first (default 10)', intOption('--lines', 0), 10)
    .option('--json', 'print each event as one JSON line')
    .action(
      act(async (id: string, o: { lines: number; json?: boolean }, c: Command) =>
        withTarget(c, async (ledger) => {
          const abort = new AbortController();
          const stop = () => abort.abort();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
          try {
            return await tailRun(ledger, id, { lines: o.lines, json: o.json, signal: abort.signal });
          } finally {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
          }
        }),
      ),
    );
  examples(cmd, [
    'runledger runs tail "$ID"',
    'runledger --server http://127.0.0.1:7070 runs tail "$ID" --json | jq -r .type',
    'runledger runs tail "$ID" -n 0 && echo "completed"',
  ]);
}

export function register(program: Command): void {
  const runs = program.command('runs').description('list, show and follow runs');
  registerLs(runs);
  registerShow(runs);
  registerTail(runs);
  examples(runs, ['runledger runs ls --status running', 'runledger runs show "$ID"', 'runledger runs tail "$ID"']);
}
