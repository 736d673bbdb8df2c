/**
 * `runledger retention`, `prune` and `export` as subprocesses, and `import` of an export:
 *
 * - rules set and listed; `prune --dry-run` writes nothing;
 * - `prune --archive` killed with SIGKILL at several points: every run is, at every moment,
 *   in the ledger or whole in the archive; a re-run finishes; `import` of the archive restores
 *   every pruned run with the same ids, seqs and hashes as a full export taken before, and
 *   `verify` is clean.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type OpenedLedger, openLedger } from '../../src/index.js';
import { dropSchemas, manualClock, PG_URL } from '../helpers.js';
import { type CliStore, cliStore, collect, runCli, spawnCli, tempDir } from './cli.js';

let store: CliStore;
const tmp = tempDir();
const cli = (args: string[]) => runCli([...store.args, ...args]);
const RUNS_PER_SUBJECT = 6;
const SUBJECTS = 4;
let all: string[] = [];

async function openStore(clock?: () => Date): Promise<OpenedLedger> {
  return store.dataDir
    ? openLedger({ dataDir: store.dataDir, ...(clock ? { clock } : {}) })
    : openLedger({ url: PG_URL, schema: store.schema, poolSize: 2, ...(clock ? { clock } : {}) });
}

async function withStore<T>(fn: (l: OpenedLedger) => Promise<T>): Promise<T> {
  const l = await openStore();
  try {
    return await fn(l);
  } finally {
    await l.close();
  }
}

/** Every run line of an NDJSON export file, skipping header and end lines and a last line cut short. */
function runLines(file: string): { run: { id: string; lastHash: string }; events: { seq: number; hash: string }[] }[] {
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (!text.endsWith('\n')) lines.pop(); // cut short by the kill: not a whole line
  return lines
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l))
    .filter((v) => v.run !== undefined);
}

const storedIds = () =>
  withStore(async (l) => (await l.database.query<{ id: string }>(`select id from runs order by id`)).rows.map((r) => r.id));

beforeAll(async () => {
  store = cliStore();
  // Runs that finished 100 days ago: a clock in the past, then the CLI runs on the real one.
  const clock = manualClock(new Date(Date.now() - 100 * 86_400_000).toISOString());
  const l = await openStore(clock.now);
  try {
    for (let s = 0; s < SUBJECTS; s++)
      for (let i = 0; i < RUNS_PER_SUBJECT; i++) {
        const run = await l.startRun({ job: 'nightly', subject: `s${s}` });
        await run.events(Array.from({ length: 3 }, (_, k) => ({ type: 'step', key: `k${k}`, body: { s, i, k } })));
        await run.checkpoint({ name: 'cp', metadata: { s, i } });
        clock.advance(60);
        await run.complete({ output: { s, i } });
        all.push(run.id);
      }
  } finally {
    await l.close();
  }
  all = all.sort();
}, 120_000);
afterAll(async () => {
  store.cleanup();
  tmp.cleanup();
  await dropSchemas();
});

describe('runledger retention / prune / export', () => {
  it('sets and lists rules; prune --dry-run writes nothing', async () => {
    expect((await cli(['retention', 'set', '--keep-days', '30'])).code).toBe(0);
    const bad = await cli(['retention', 'set', '--keep-days', '-3']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--keep-days');
    const ls = await cli(['retention', 'ls', '--json']);
    expect(JSON.parse(ls.stdout).rules).toMatchObject([{ keepDays: 30, keepLastPerSubject: 0 }]);

    const counts = () =>
      withStore(async (l) =>
        Promise.all(
          ['runs', 'events', 'checkpoints', 'tombstones'].map(
            async (t) => (await l.database.query<{ n: number }>(`select count(*)::int as n from ${t}`)).rows[0].n,
          ),
        ),
      );
    const before = await counts();
    const dry = await cli(['prune', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    // Every run but each subject's current one.
    expect(JSON.parse(dry.stdout).eligible).toBe(SUBJECTS * (RUNS_PER_SUBJECT - 1));
    expect(await counts()).toEqual(before);
  });

  it('prune --archive killed with SIGKILL at several points loses nothing; import of the archive restores every run exactly', async () => {
    const full = join(tmp.dir, 'full.ndjson');
    const exported = await cli(['export', '--out', full]);
    expect(exported.code, exported.stderr).toBe(0);
    const before = new Map(runLines(full).map((r) => [r.run.id, r]));
    expect([...before.keys()].sort()).toEqual(all);

    const archive = join(tmp.dir, 'archive.ndjson');
    const lineCount = () => {
      try {
        return readFileSync(archive, 'utf8').split('\n').length - 1;
      } catch {
        return -1;
      }
    };
    // Kill points: as soon as the archive exists (header only), after a chunk or two, and mid-run with no pause.
    for (const [atLines, sleepMs] of [
      [0, 300],
      [3, 300],
      [6, 0],
      [10, 0],
    ] as const) {
      const child = spawnCli([
        ...store.args,
        'prune',
        '--archive',
        archive,
        '--chunk-size',
        '2',
        '--sleep-ms',
        String(sleepMs),
        '--no-progress',
      ]);
      const done = collect(child);
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (lineCount() >= atLines || child.exitCode !== null) {
            clearInterval(poll);
            resolve();
          }
        }, 5);
      });
      child.kill('SIGKILL');
      await done;
      // Every run is in the ledger, or whole in the archive (or both).
      const inLedger = new Set(await storedIds());
      const inArchive = new Set(runLines(archive).map((r) => r.run.id));
      for (const id of all) expect(inLedger.has(id) || inArchive.has(id), `run ${id} lost after a kill at ${atLines} lines`).toBe(true);
    }
    // A last run finishes the job.
    const last = await cli(['prune', '--archive', archive, '--json']);
    expect(last.code, last.stderr).toBe(0);
    const left = await storedIds();
    expect(left.length).toBe(SUBJECTS);
    expect(statSync(archive).size).toBeGreaterThan(0);

    // The pruned runs answer 410 pruned.
    const show = await cli(['runs', 'show', all.find((id) => !left.includes(id))!]);
    expect(show.code).toBe(1);
    expect(show.stderr).toContain('pruned');

    // Import of the archive (no --source: it is recognised as an export) restores them exactly.
    const imported = await cli(['import', archive, '--json']);
    expect(imported.code, imported.stdout + imported.stderr).toBe(0);
    const report = JSON.parse(imported.stdout.trim().split('\n').at(-1)!);
    expect(report.restored).toBe(all.length - SUBJECTS);
    expect(report.invalid).toBe(0);
    expect(await storedIds()).toEqual(all);
    const again = join(tmp.dir, 'again.ndjson');
    expect((await cli(['export', '--out', again])).code).toBe(0);
    const after = new Map(runLines(again).map((r) => [r.run.id, r]));
    for (const [id, r] of before) expect(after.get(id), id).toEqual(r);
    const verify = await cli(['verify', '--all']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    // Importing it again restores nothing twice.
    const twice = JSON.parse((await cli(['import', archive, '--json'])).stdout.trim().split('\n').at(-1)!);
    expect(twice.restored).toBe(0);
  }, 240_000);
});
