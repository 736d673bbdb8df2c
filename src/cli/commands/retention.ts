/** `runledger retention set|rm|ls`, `runledger prune` and `runledger export`. */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';

import type { Command } from 'commander';

import type { ExportQuery, Ledger, PruneResult, RetentionRule } from '../../core/types.js';
import { Archive, endLine, headerLine } from '../archive.js';
import { act, examples, withTarget } from '../context.js';
import { EXIT_OK, UsageError } from '../errors.js';
import { printJson, println, table } from '../output.js';
import { intOption } from '../parse.js';
import { type CountProgress, countProgress } from '../progress.js';

/** Exit code of a command stopped by Ctrl-C (128 + SIGINT). */
const EXIT_INTERRUPTED = 130;

/** A page of export lines: as text from an embedded or PostgreSQL ledger, serialized from an HTTP one. */
async function exportPage(
  ledger: Ledger,
  query: ExportQuery,
): Promise<{ lines: string[]; ids: string[]; events: number; nextAfter: string | null }> {
  const direct = ledger as Ledger & { exportLines?: (q: ExportQuery) => ReturnType<typeof exportPage> };
  // Text from the database, passed through (the HTTP client parses what it reads, so it serializes).
  if (typeof direct.exportLines === 'function') return direct.exportLines(query);
  const page = await ledger.exportRuns(query);
  return {
    lines: page.runs.map((r) => JSON.stringify(r)),
    ids: page.runs.map((r) => r.run.id),
    events: page.runs.reduce((a, r) => a + r.events.length, 0),
    nextAfter: page.nextAfter,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function progressFor(label: string, o: { progress?: boolean }): CountProgress | undefined {
  if (o.progress === false) return undefined;
  if (process.stderr.isTTY) return countProgress(label);
  return o.progress ? countProgress(label, { lines: true }) : undefined;
}

/** Ctrl-C / SIGTERM: finish the chunk in flight, then stop (a second signal stops at once). */
function stopSignal(what: string) {
  const abort = new AbortController();
  let code: number | undefined;
  const on = (signal: NodeJS.Signals) => {
    if (code === undefined) {
      code = signal === 'SIGTERM' ? 143 : EXIT_INTERRUPTED;
      abort.abort();
      process.stderr.write(`\nstopping after the chunk in flight (${signal} again stops at once; a re-run ${what})\n`);
    } else process.exit(code);
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    signal: abort.signal,
    code: () => code,
    off() {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}

interface RuleOptions {
  job?: string;
  keepDays: number;
  keepLastPerSubject?: number;
  json?: boolean;
}

function registerRetention(program: Command): void {
  const retention = program
    .command('retention')
    .description(
      'retention rules: how long finished runs are kept (per job, or a namespace default); the server prunes what they allow, and so does `runledger prune`',
    );

  const set = retention
    .command('set')
    .description(
      'set the rule of a job (--job), or the namespace default (no --job); other rules are kept. A job’s own rule wins over the default, whole. Over --server it needs an admin token',
    )
    .option('--job <job>', 'the job the rule is for (default: the namespace default, for jobs without a rule of their own)')
    .requiredOption(
      '--keep-days <n>',
      'keep finished runs this many days after they finished (0–36500)',
      intOption('--keep-days', 0, 36500),
    )
    .option(
      '--keep-last-per-subject <n>',
      'and always keep the newest N runs of each subject, whatever their age (0–100000; default 0)',
      intOption('--keep-last-per-subject', 0, 100000),
    )
    .option('--json', 'print the rules as JSON')
    .action(
      act(async (o: RuleOptions, c: Command) =>
        withTarget(c, async (ledger) => {
          const current = (await ledger.getRetention()).rules;
          const rule: RetentionRule = {
            ...(o.job !== undefined ? { job: o.job } : {}),
            keepDays: o.keepDays,
            ...(o.keepLastPerSubject !== undefined ? { keepLastPerSubject: o.keepLastPerSubject } : {}),
          };
          const rules: RetentionRule[] = [
            ...current
              .filter((r) => r.job !== o.job)
              .map(({ job, keepDays, keepLastPerSubject }) => ({ ...(job !== undefined ? { job } : {}), keepDays, keepLastPerSubject })),
            rule,
          ];
          const result = await ledger.setRetention(rules);
          if (o.json) return printJson(result);
          println(
            `${o.job === undefined ? 'namespace default' : `job ${o.job}`}: keep ${o.keepDays} days${o.keepLastPerSubject ? `, and the newest ${o.keepLastPerSubject} runs of each subject` : ''}`,
          );
        }),
      ),
    );
  examples(set, [
    'runledger retention set --keep-days 90',
    'runledger retention set --job compliance-check --keep-days 400 --keep-last-per-subject 10',
  ]);

  const rm = retention
    .command('rm')
    .description('remove the rule of a job (--job), or the namespace default (no --job); without rules nothing is pruned')
    .option('--job <job>', 'the job whose rule to remove')
    .action(
      act(async (o: { job?: string }, c: Command) =>
        withTarget(c, async (ledger) => {
          const current = (await ledger.getRetention()).rules;
          const left = current.filter((r) => r.job !== o.job);
          if (left.length === current.length) {
            println(`no rule for ${o.job === undefined ? 'the namespace default' : `job ${o.job}`}; nothing changed`);
            return 1;
          }
          await ledger.setRetention(
            left.map(({ job, keepDays, keepLastPerSubject }) => ({ ...(job !== undefined ? { job } : {}), keepDays, keepLastPerSubject })),
          );
          println(`removed the rule for ${o.job === undefined ? 'the namespace default' : `job ${o.job}`}`);
        }),
      ),
    );

  const ls = retention
    .command('ls')
    .alias('list')
    .description('list the retention rules of the namespace')
    .option('--json', 'print them as JSON')
    .action(
      act(async (o: { json?: boolean }, c: Command) =>
        withTarget(c, async (ledger) => {
          const { rules } = await ledger.getRetention();
          if (o.json) return printJson({ rules });
          if (!rules.length)
            return println('no retention rules: runs are kept for ever (`runledger retention set --keep-days N` adds one)');
          println(
            table(
              ['JOB', 'KEEP DAYS', 'KEEP LAST PER SUBJECT', 'UPDATED'],
              rules.map((r) => [r.job ?? '(default)', String(r.keepDays), String(r.keepLastPerSubject), r.updatedAt]),
            ),
          );
        }),
      ),
    );
  examples(rm, ['runledger retention rm --job nightly-export', 'runledger retention rm']);
  examples(ls, ['runledger retention ls', 'runledger retention ls --json']);
  examples(retention, [
    'runledger retention set --keep-days 90',
    'runledger retention set --job compliance-check --keep-days 400 --keep-last-per-subject 10',
    'runledger retention ls',
    'runledger prune --dry-run',
  ]);
}

interface PruneCliOptions {
  dryRun?: boolean;
  archive?: string;
  chunkSize: number;
  sleepMs: number;
  progress?: boolean;
  json?: boolean;
}

function registerPrune(program: Command): void {
  const cmd = program
    .command('prune')
    .summary('delete finished runs the retention rules allow, leaving tombstones')
    .description(
      'delete the finished runs the retention rules allow (with their events and checkpoints), in short chunks, oldest first; ' +
        'never a live run, a subject’s current run or one of its newest keepLastPerSubject. Each leaves a tombstone: GET answers 410 pruned ' +
        'with its final chain head, and its id can never be reused. With --archive, each chunk is exported to FILE and synced to disk ' +
        'before it is deleted, so a crash at any point loses nothing (`runledger import FILE` restores the runs exactly). A server prunes by itself; ' +
        'this is for a ledger without one, or to prune now. Over --server it needs an admin token',
    )
    .option('--dry-run', 'delete nothing: count what the rules allow now, and list the first runs')
    .option('--archive <file>', 'append each chunk to this export file (NDJSON) and sync it before deleting the chunk')
    .option(
      '--chunk-size <n>',
      'runs per chunk, each one transaction (1–5000; with --archive at most 1000 per chunk)',
      intOption('--chunk-size', 1, 5000),
      500,
    )
    .option('--sleep-ms <ms>', 'pause between chunks, to leave room for live writers', intOption('--sleep-ms', 0, 3_600_000), 10)
    .option('--progress', 'show progress even when stderr is not a terminal (then one line per chunk)')
    .option('--no-progress', 'no progress bar (by default it is shown on a terminal)')
    .option('--json', 'print the report as JSON')
    .action(
      act(async (o: PruneCliOptions, c: Command) => {
        if (o.dryRun && o.archive)
          throw new UsageError('give --dry-run or --archive, not both (a dry run writes nothing, an archive included)');
        return withTarget(c, async (ledger) => {
          if (o.dryRun) {
            const r = await ledger.prune({ dryRun: true, limit: 20 });
            if (o.json) return printJson({ dryRun: true, eligible: r.eligible, first: r.runs });
            println(`dry run (nothing deleted): ${r.eligible} run${r.eligible === 1 ? '' : 's'} would be pruned now`);
            if (r.runs.length)
              println(
                table(
                  ['RUN', 'JOB', 'SUBJECT', 'FINISHED', 'EVENTS'],
                  r.runs.map((x) => [x.id, x.job, x.subject ?? '', x.finishedAt, String(x.lastSeq)]),
                ),
              );
            if ((r.eligible ?? 0) > r.runs.length) println(`… and ${(r.eligible ?? 0) - r.runs.length} more`);
            return EXIT_OK;
          }
          const started = Date.now();
          const total = (await ledger.prune({ dryRun: true, limit: 1 })).eligible;
          const bar = progressFor('pruning', o);
          const stop = stopSignal('prunes the rest');
          const report = {
            pruned: 0,
            events: 0,
            checkpoints: 0,
            chunks: 0,
            archived: 0,
            archive: o.archive ?? null,
            interrupted: false,
            seconds: 0,
          };
          const add = (r: PruneResult) => {
            report.pruned += r.pruned;
            report.events += r.events;
            report.checkpoints += r.checkpoints;
            report.chunks++;
            bar?.update(report.pruned, total, `${report.events} events`);
          };
          const archive = o.archive ? await Archive.open(o.archive, ledger.namespace) : undefined;
          try {
            if (archive) {
              let after: string | undefined;
              for (;;) {
                if (stop.signal.aborted) {
                  report.interrupted = true;
                  break;
                }
                const page = await exportPage(ledger, { prunable: true, limit: Math.min(1000, o.chunkSize), ...(after ? { after } : {}) });
                if (page.lines.length) {
                  // Written and synced first: the chunk is deleted only once it is safe on disk.
                  await archive.append(page.lines.map((l) => l + '\n'));
                  report.archived += page.lines.length;
                  add(await ledger.prune({ ids: page.ids }));
                }
                if (!page.nextAfter) break;
                after = page.nextAfter;
                if (o.sleepMs) await sleep(o.sleepMs);
              }
              if (!report.interrupted) await archive.append([endLine(report.archived)]);
            } else {
              for (;;) {
                if (stop.signal.aborted) {
                  report.interrupted = true;
                  break;
                }
                const r = await ledger.prune({ limit: o.chunkSize });
                add(r);
                if (!r.more) break;
                if (o.sleepMs) await sleep(o.sleepMs);
              }
            }
          } finally {
            stop.off();
            bar?.stop();
            await archive?.close();
          }
          report.seconds = Math.round((Date.now() - started) / 100) / 10;
          if (o.json) printJson(report);
          else
            println(
              `pruned ${report.pruned} runs (${report.events} events, ${report.checkpoints} checkpoints) in ${report.chunks} chunk${report.chunks === 1 ? '' : 's'}, ${report.seconds}s` +
                (archive ? `; archived ${report.archived} runs to ${o.archive}` : '') +
                (report.interrupted ? ' — interrupted, re-run to finish' : ''),
            );
          return report.interrupted ? (stop.code() ?? EXIT_INTERRUPTED) : EXIT_OK;
        });
      }),
    );
  examples(cmd, [
    'runledger prune --dry-run',
    'runledger prune --archive runs-2025.ndjson',
    'runledger prune --chunk-size 200 --sleep-ms 100 --json',
  ]);
}

interface ExportCliOptions {
  job?: string;
  before?: string;
  prunable?: boolean;
  out?: string;
  progress?: boolean;
}

async function write(out: WriteStream | NodeJS.WriteStream, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

function registerExport(program: Command): void {
  const cmd = program
    .command('export')
    .summary('write whole runs (run, events, checkpoints) as NDJSON')
    .description(
      'write whole runs as NDJSON — a header line, one { run, events, checkpoints } line per run with every event’s seq and hash, and an end line — ' +
        'in bounded memory whatever the ledger’s size. `runledger import FILE` restores them exactly (same ids, seqs and hashes; verify clean), ' +
        'also over the tombstone a prune left',
    )
    .option('--job <job>', 'only runs of this job')
    .option('--before <iso>', 'only runs that finished before this time (live runs are left out)')
    .option('--prunable', 'only the runs the retention rules allow pruning now')
    .option('--out <file>', 'write to this file (synced when done) instead of stdout')
    .option('--progress', 'show progress even when stderr is not a terminal')
    .option('--no-progress', 'no progress bar (by default it is shown on a terminal)')
    .action(
      act(async (o: ExportCliOptions, c: Command) =>
        withTarget(c, async (ledger) => {
          const query: ExportQuery = {
            ...(o.job !== undefined ? { job: o.job } : {}),
            ...(o.before !== undefined ? { before: o.before } : {}),
            ...(o.prunable ? { prunable: true } : {}),
          };
          const count = { runs: 0, events: 0 };
          const direct = ledger as Ledger & {
            exportStream?: (q: ExportQuery, count: { runs: number; events: number }) => AsyncGenerator<Buffer>;
          };
          // On a database, one stream of lines (one COPY on PostgreSQL); over HTTP, pages.
          const stream = typeof direct.exportStream === 'function' ? direct.exportStream(query, count) : null;
          // A bad option is refused before anything is written.
          const first = stream ? await stream.next() : null;
          let page = stream ? null : await exportPage(ledger, { ...query, limit: 1000 });
          const out = o.out ? createWriteStream(o.out) : process.stdout;
          const bar = progressFor('exporting', o);
          let runs = 0;
          let events = 0;
          try {
            await write(out, headerLine(ledger.namespace));
            if (stream && first) {
              for (let r = first; !r.done; r = await stream.next()) {
                if (!out.write(r.value)) await once(out, 'drain');
                bar?.update(count.runs, undefined, `${count.events} events`);
              }
              runs = count.runs;
              events = count.events;
            }
            for (; page;) {
              // The next page is read while this one is written (two pages in memory at most):
              // the database builds lines while this process writes them.
              const next = page.nextAfter ? exportPage(ledger, { ...query, limit: 1000, after: page.nextAfter }) : null;
              // A failed read is awaited (and thrown) below, never left unhandled.
              next?.catch(() => {});
              if (page.lines.length) await write(out, page.lines.join('\n') + '\n');
              runs += page.lines.length;
              events += page.events;
              bar?.update(runs, undefined, `${events} events`);
              page = next ? await next : null;
            }
            await write(out, endLine(runs));
          } finally {
            bar?.stop();
          }
          if (o.out) {
            const file = out as WriteStream;
            await new Promise<void>((resolve, reject) => file.end((err?: Error | null) => (err ? reject(err) : resolve())));
            const { open } = await import('node:fs/promises');
            const fh = await open(o.out, 'r+');
            await fh.sync();
            await fh.close();
            process.stderr.write(`exported ${runs} runs (${events} events) to ${o.out}\n`);
          }
        }),
      ),
    );
  examples(cmd, [
    'runledger export --out ledger.ndjson',
    'runledger export --job nightly-export --before 2026-01-01 --out nightly-2025.ndjson',
    'runledger export | gzip > ledger.ndjson.gz',
  ]);
}

export function register(program: Command): void {
  registerRetention(program);
  registerPrune(program);
  registerExport(program);
}
