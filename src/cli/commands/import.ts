import { type Command, Option } from 'commander';

import { LIMITS } from '../../core/validation.js';
import { checkImportOptions, ImportFailedError, type ImportInput, type ImportReport, runImport } from '../../import/index.js';
import type { ImportFormat } from '../../import/readers.js';
import { firstLine, isExportHeader, restoreFile, type RestoreReport } from '../archive.js';
import { act, examples, withTarget } from '../context.js';
import { classify, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from '../errors.js';
import { println } from '../output.js';
import { intOption, listOption } from '../parse.js';
import { countProgress, progressBar, progressLines } from '../progress.js';

interface ImportCliOptions {
  source?: string;
  format?: ImportFormat;
  map?: string[];
  set?: string[];
  chunkSize: number;
  sleepMs: number;
  dryRun?: boolean;
  cutover: string;
  subjectStatus: boolean;
  fromPostgres?: string;
  query?: string;
  key?: string;
  showInvalid: number;
  progress?: boolean;
  json?: boolean;
}

/** Exit code of an import stopped by Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

function summary(r: ImportReport, showInvalid: number): string {
  const lines = [
    `${r.dryRun ? 'dry run (nothing written): ' : ''}import from ${r.from} as source ${r.source}${r.interrupted ? ' — interrupted, re-run to finish' : ''}`,
    `read ${r.read}  inserted ${r.inserted}  duplicates ${r.duplicates}  skipped by cutover ${r.skippedCutover}  invalid ${r.invalid}`,
    `${r.seconds}s, ${r.rowsPerSecond} rows/s, ${r.chunks} chunk${r.chunks === 1 ? '' : 's'}, longest chunk ${r.longestChunkMs}ms`,
  ];
  if (r.invalidRecords.length && showInvalid > 0) {
    lines.push('invalid records:');
    for (const i of r.invalidRecords.slice(0, showInvalid)) {
      const where = `line ${i.line}${i.key !== undefined ? ` (key ${i.key})` : ''}${i.sourceId !== null ? ` sourceId ${i.sourceId}` : ''}`;
      lines.push(`  ${where}: ${i.message}`);
    }
    const more = r.invalidRecords.length - showInvalid;
    if (more > 0) lines.push(`  … and ${more} more (--json lists them all)`);
  }
  return lines.join('\n');
}

/** `runledger import` of an export: every run restored exactly, batch by batch. */
async function restoreExport(file: string, o: ImportCliOptions, c: Command): Promise<number> {
  for (const [flag, set] of [
    ['--source', o.source !== undefined],
    ['--map', o.map !== undefined],
    ['--set', o.set !== undefined],
    ['--dry-run', o.dryRun === true],
  ] as const)
    if (set) throw new UsageError(`${flag} does not apply to an export file (${file} is one): its runs are restored exactly as exported`);
  return withTarget(c, async (ledger) => {
    const bar =
      o.progress === false
        ? undefined
        : process.stderr.isTTY
          ? countProgress('restoring')
          : o.progress
            ? countProgress('restoring', { lines: true })
            : undefined;
    let report: RestoreReport;
    try {
      report = await restoreFile(ledger, file, {
        onProgress: (runs, bytes, total) =>
          bar?.update(runs, undefined, `${Math.min(100, Math.floor((100 * bytes) / Math.max(1, total)))}% of the file`),
      });
    } finally {
      bar?.stop();
    }
    if (o.json) println(JSON.stringify(report));
    else {
      println(
        `restore of export ${file}${report.complete ? '' : ' — the file has no end line (cut short by a crash, or still being written)'}`,
      );
      println(
        `runs ${report.runs}  restored ${report.restored}  duplicates ${report.duplicates}  invalid ${report.invalid}  (${report.seconds}s)`,
      );
      for (const i of report.invalidRuns.slice(0, o.showInvalid))
        println(`  line ${i.line}${i.id ? ` run ${i.id}` : ''}: ${i.code}: ${i.message}`);
      const more = report.invalidRuns.length - o.showInvalid;
      if (more > 0) println(`  … and ${more} more (--json lists them all)`);
    }
    return report.invalid > 0 ? EXIT_FAILURE : EXIT_OK;
  });
}

export function register(program: Command): void {
  const cmd = program
    .command('import')
    .description(
      'import legacy run history (JSONL, CSV or a PostgreSQL table) in short chunks; idempotent on (source, sourceId). ' +
        'A file written by `runledger export` or `prune --archive` (recognised by its first line) is restored exactly instead: ' +
        'same ids, seqs and hashes, over a tombstone only when the chain ends in its hash; --source is then not needed',
    )
    .argument('[file]', 'a .jsonl or .csv file, an export (NDJSON), or - for stdin')
    .option(
      '--source <name>',
      'provenance name recorded on each run (e.g. agent_test_history); a re-run with the same name inserts nothing twice (required, except for an export)',
    )
    .addOption(new Option('--format <format>', 'input format (default: from the file extension)').choices(['jsonl', 'csv']))
    .option(
      '--map <column=field,...>',
      'rename legacy columns: id=sourceId,tested_at=startedAt,score=statistics.score (column= drops one; repeatable)',
      listOption,
    )
    .option(
      '--set <field=value>',
      'a constant for a field the rows lack, e.g. job=compliance-check (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      '--chunk-size <n>',
      `records per chunk, each one transaction (1–${LIMITS.importBatch})`,
      intOption('--chunk-size', 1, LIMITS.importBatch),
      1000,
    )
    .option('--sleep-ms <ms>', 'pause between chunks, to leave room for live writers', intOption('--sleep-ms', 0, 3_600_000), 0)
    .option('--dry-run', 'write nothing; report exactly what a real run would do')
    .option('--cutover <when>', 'auto: skip rows at/after the first live run of the same job and trigger; an ISO time; or none', 'auto')
    .option('--no-subject-status', 'do not update the current status of subjects from imported runs')
    .option('--from-postgres <url>', 'read from another PostgreSQL database instead of a file (with --query and --key)')
    .option('--query <sql>', 'with --from-postgres: the SELECT returning the legacy rows')
    .option('--key <column>', 'with --from-postgres: a unique column to read in keyset chunks')
    .option('--show-invalid <n>', 'how many invalid records to list (all with --json)', intOption('--show-invalid', 0), 20)
    .option('--progress', 'show progress even when stderr is not a terminal (then one line per chunk)')
    .option('--no-progress', 'no progress bar (by default it is shown on a terminal)')
    .option('--json', 'print the report as one JSON object on the last line')
    .action(
      act(async (file: string | undefined, o: ImportCliOptions, c: Command) => {
        if (file !== undefined && file !== '-' && o.fromPostgres === undefined && o.format !== 'csv') {
          const line = await firstLine(file).catch(() => null);
          if (line !== null && isExportHeader(line)) return restoreExport(file, o, c);
        }
        if (o.source === undefined)
          throw new UsageError("required option '--source <name>' not specified (only an export file needs none)");
        let from: ImportInput;
        if (o.fromPostgres !== undefined) {
          if (file !== undefined) throw new UsageError('give either a file or --from-postgres, not both');
          if (!o.query || !o.key) throw new UsageError('--from-postgres needs --query <sql> and --key <unique column>');
          from = { postgres: { url: o.fromPostgres, query: o.query, key: o.key } };
        } else {
          if (file === undefined)
            throw new UsageError('give a file to import (or - for stdin), or --from-postgres <url> --query <sql> --key <column>');
          if (o.query !== undefined || o.key !== undefined) throw new UsageError('--query and --key go with --from-postgres');
          from = { file, ...(o.format ? { format: o.format } : {}) };
        }
        if (o.fromPostgres === undefined && file === '-' && !o.format)
          throw new UsageError('reading stdin needs --format jsonl or --format csv');

        const importOptions = {
          source: o.source!,
          from,
          ...(o.map ? { map: o.map } : {}),
          ...(o.set ? { set: o.set } : {}),
          chunkSize: o.chunkSize,
          sleepMs: o.sleepMs,
          dryRun: o.dryRun === true,
          cutover: o.cutover,
          subjectStatus: o.subjectStatus,
        };
        // Fail on a typo before opening the store.
        checkImportOptions(importOptions);

        return withTarget(c, async (ledger) => {
          const abort = new AbortController();
          // 128 + the signal number, as shells report a process stopped by it.
          let stoppedBy: number | undefined;
          const onSignal = (signal: NodeJS.Signals) => {
            if (stoppedBy === undefined) {
              stoppedBy = signal === 'SIGTERM' ? 143 : EXIT_INTERRUPTED;
              abort.abort();
              process.stderr.write(`\nstopping after the chunk in flight (${signal} again stops at once; a re-run finishes the import)\n`);
            } else {
              // The open transaction dies with the connection: nothing half-written.
              process.exit(stoppedBy);
            }
          };
          process.on('SIGINT', onSignal);
          process.on('SIGTERM', onSignal);
          const bar = o.progress === false ? undefined : process.stderr.isTTY ? progressBar() : o.progress ? progressLines() : undefined;
          let report: ImportReport;
          try {
            report = await runImport(ledger, {
              ...importOptions,
              signal: abort.signal,
              ...(bar ? { onProgress: (p) => bar.update(p) } : {}),
            });
          } catch (err) {
            bar?.stop();
            // Every failure is fatal (exit 2). Mid-way, say what was done before why it stopped.
            const failed = err instanceof ImportFailedError ? err : undefined;
            const why = classify(failed ? failed.cause : err);
            if (failed && o.json) println(JSON.stringify({ ...failed.report, error: { code: why.code, message: why.message } }));
            else if (failed) println(summary(failed.report, o.showInvalid));
            if (o.json) {
              process.stderr.write(
                JSON.stringify({ error: { code: why.code, message: why.message, ...(why.details ? { details: why.details } : {}) } }) +
                  '\n',
              );
            } else {
              process.stderr.write(
                `error: ${failed ? 'import stopped: ' : ''}${why.message}${failed && failed.report.chunks ? '; a re-run resumes without duplicates' : ''}\n`,
              );
            }
            return EXIT_USAGE;
          } finally {
            process.off('SIGINT', onSignal);
            process.off('SIGTERM', onSignal);
          }
          bar?.stop();
          if (o.json) println(JSON.stringify(report));
          else println(summary(report, o.showInvalid));
          if (report.interrupted) return stoppedBy ?? EXIT_INTERRUPTED;
          return report.invalid > 0 ? EXIT_FAILURE : EXIT_OK;
        });
      }),
    );
  examples(cmd, [
    'runledger import history.jsonl --source legacy-runs --dry-run',
    'runledger import history.csv --source agent_test_history --map id=sourceId,agent_url=subject,tested_at=startedAt,score=statistics.score --set job=compliance-check --set trigger=owner_test',
    'runledger import big.jsonl --source legacy --chunk-size 500 --sleep-ms 50 --json',
    "runledger import --from-postgres postgres://old-db/app --query 'select * from agent_test_history where user_id is not null' --key id --source agent_test_history --map id=sourceId",
    'zcat history.jsonl.gz | runledger import - --format jsonl --source legacy',
  ]);
}
