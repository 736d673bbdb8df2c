/** The CLI in shell pipelines: start/event/complete, idempotent start, listing, showing, verifying. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { RUN_ID_PATTERN } from '../../src/core/ids.js';
import type { LedgerEvent, Run, RunPage, VerifyResult } from '../../src/core/types.js';
import { openLedger } from '../../src/index.js';
import { MIGRATIONS } from '../../src/store/migrate.js';
import { dropSchemas, PG_URL, sleep } from '../helpers.js';
import { type CliStore, cliStore, runBash, runCli, tempDir } from './cli.js';

let store: CliStore;
const tmp = tempDir();
const cli = (...args: string[]) => runCli([...store.args, ...args]);
const json = <T>(text: string) => JSON.parse(text) as T;

beforeAll(() => {
  store = cliStore();
});
afterAll(async () => {
  store.cleanup();
  tmp.cleanup();
  await dropSchemas();
});

describe('runledger CLI in shell pipelines', { timeout: 240_000 }, () => {
  it('applies migrations once with migrate', async () => {
    const first = await cli('migrate', '--json');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    // Every migration the package carries, in order (src/generated/migrations.ts).
    const names = MIGRATIONS.map((m) => m.name);
    expect(json<{ applied: string[]; current: string }>(first.stdout)).toMatchObject({ applied: names, current: names.at(-1) });
    const again = await cli('migrate');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`applied: nothing (up to date)\ncurrent: ${names.at(-1)}`);
  });

  it('start, event and complete from a bash pipeline; a finish without notes keeps them', async () => {
    writeFileSync(join(tmp.dir, 'out.json'), '{"nouns":150}');
    const r = await runBash(
      `ID=$(runledger start --job pipeline --subject Genesis --notes "Initial extraction run" --lease-s 60)
       echo "$ID"
       runledger event "$ID" progress --body '{"done":1}'
       runledger heartbeat "$ID"
       runledger complete "$ID" --output @out.json --statistics '{"nouns":150}'`,
      store.args,
      { cwd: tmp.dir },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [id, seq, ...rest] = r.stdout.trimEnd().split('\n');
    expect(id).toMatch(RUN_ID_PATTERN);
    expect(seq).toBe('2');
    expect(rest).toEqual([]);

    const shown = await cli('runs', 'show', id, '--json');
    expect(shown.code).toBe(0);
    const { run, events } = json<{ run: Run; events: LedgerEvent[] }>(shown.stdout);
    expect(run).toMatchObject({
      id,
      job: 'pipeline',
      subject: 'Genesis',
      status: 'completed',
      output: { nouns: 150 },
      statistics: { nouns: 150 },
      notes: 'Initial extraction run',
    });
    expect(events.map((e) => e.type)).toEqual(['run.status', 'progress', 'run.status']);
    expect(events[1].body).toEqual({ done: 1 });

    const human = await cli('runs', 'show', id);
    expect(human.stdout).toMatch(/^status\s+completed$/m);
    expect(human.stdout).toMatch(/^ {2}#2 \S+ progress \{"done":1\}$/m);
  });

  it('start --id is idempotent; another identity under that id is id_conflict (exit 1)', async () => {
    const args = ['start', '--job', 'week-collection', '--id', 'week-2026-05', '--subject', 'acme', '--param', 'week=2026-05'];
    const a = await cli(...args);
    const b = await cli(...args);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(a.stdout).toBe('week-2026-05\n');
    expect(b.stdout).toBe('week-2026-05\n');

    const conflict = await cli(
      'start',
      '--job',
      'week-collection',
      '--id',
      'week-2026-05',
      '--subject',
      'other',
      '--param',
      'week=2026-05',
    );
    expect(conflict.code).toBe(1);
    expect(conflict.stdout).toBe('');
    expect(conflict.stderr).toBe('error: run week-2026-05 already exists with a different subject\n');

    const listed = json<RunPage>((await cli('runs', 'ls', '--job', 'week-collection', '--json')).stdout);
    expect(listed.runs.map((r) => [r.id, r.subject, r.params])).toEqual([['week-2026-05', 'acme', { week: '2026-05' }]]);
  });

  it('fail, cancel and event keys behave as in the library; finished runs refuse other verdicts', async () => {
    const r = await runBash(
      `A=$(runledger start --job steps)
       B=$(runledger start --job steps)
       runledger event "$A" page --key p1 --body '{"page":1}'
       runledger event "$A" page --key p1 --body '{"page":1}'
       runledger fail "$A" --message "upstream returned 503" --type http_error --details '{"status":503}'
       runledger cancel "$B" --reason superseded
       echo "$A $B"`,
      store.args,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [seq1, seq2, ids] = r.stdout.trimEnd().split('\n');
    expect(seq1).toBe('2');
    expect(seq2).toBe('2'); // the repeated key returns the original seq
    const [a, b] = ids.split(' ');

    const runA = json<{ run: Run }>((await cli('runs', 'show', a, '--json')).stdout).run;
    expect(runA).toMatchObject({
      status: 'failed',
      error: { type: 'http_error', message: 'upstream returned 503', details: { status: 503 } },
    });
    const runB = json<{ run: Run }>((await cli('runs', 'show', b, '--json')).stdout).run;
    expect(runB).toMatchObject({ status: 'cancelled' });

    const late = await cli('complete', a);
    expect(late.code).toBe(1);
    expect(late.stderr).toBe(`error: run ${a} is already failed; it cannot become completed\n`);
  });

  it('runs ls filters by every DESIGN filter, pages with --cursor, prints a table or JSON', async () => {
    const r = await runBash(
      `A=$(runledger start --job lsjob --subject s1 --trigger manual --actor ann --tag team=core --external-id wf=1)
       runledger complete "$A"
       B=$(runledger start --job lsjob --subject s2 --trigger schedule --parent "$A")
       runledger fail "$B" --message boom
       C=$(runledger start --job lsjob2 --subject s1)
       echo "$A $B $C"`,
      store.args,
    );
    expect(r.code).toBe(0);
    const [a, b, c] = r.stdout.trim().split(' ');
    const ids = async (...filter: string[]) => {
      const res = await cli('runs', 'ls', ...filter, '--json');
      expect(res.stderr).toBe('');
      return json<RunPage>(res.stdout).runs.map((x) => x.id);
    };
    expect(await ids('--job', 'lsjob')).toEqual([b, a]);
    expect(await ids('--subject', 's1', '--created-after', '2000-01-01T00:00:00Z')).toEqual([c, a]);
    expect(await ids('--status', 'failed,running')).toEqual(expect.arrayContaining([b, c]));
    expect(await ids('--job', 'lsjob', '--status', 'completed')).toEqual([a]);
    expect(await ids('--trigger', 'schedule')).toEqual([b]);
    expect(await ids('--actor', 'ann')).toEqual([a]);
    expect(await ids('--parent', a)).toEqual([b]);
    expect(await ids('--tag', 'team:core')).toEqual([a]);
    expect(await ids('--external-id', 'wf:1')).toEqual([a]);
    expect(await ids('--job', 'lsjob', '--missing-external-id', 'wf')).toEqual([b]);
    expect(await ids('--job', 'lsjob', '--created-before', '2000-01-01T00:00:00Z')).toEqual([]);

    const page1 = json<RunPage>((await cli('runs', 'ls', '--job', 'lsjob', '--limit', '1', '--json')).stdout);
    expect(page1.runs.map((x) => x.id)).toEqual([b]);
    expect(page1.nextCursor).toBeTruthy();
    expect(await ids('--job', 'lsjob', '--limit', '1', '--cursor', page1.nextCursor!)).toEqual([a]);

    const table = await cli('runs', 'ls', '--job', 'lsjob');
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATUS\s+JOB\s+SUBJECT\s+TRIGGER\s+DURATION\s+AGE$/);
    expect(lines[1]).toMatch(new RegExp(`^${b}\\s+failed\\s+lsjob\\s+s2\\s+schedule\\s+\\S+\\s+\\d+[smhd]$`));
    expect(lines[2]).toMatch(new RegExp(`^${a}\\s+completed\\s+lsjob\\s+s1\\s+manual\\s+`));

    const bad = await cli('runs', 'ls', '--status', 'done');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/status must be one or more of submitted, running, retrying, completed, failed, cancelled, timed_out/);
  });

  it('runs tail prints a finished run and exits 0 when it completed, 1 when it failed', async () => {
    const ok = await runBash(
      `ID=$(runledger start --job tail); runledger event "$ID" step --body '"one"' >/dev/null; runledger complete "$ID"; echo "$ID"`,
      store.args,
    );
    const id = ok.stdout.trim();
    const tail = await cli('runs', 'tail', id);
    expect(tail.code).toBe(0);
    expect(tail.stdout).toMatch(
      /^#1 \S+ run.status \{"status":"running"\}\n#2 \S+ step one\n#3 \S+ run.status \{"status":"completed"\}\n$/,
    );
    expect(tail.stderr).toBe(`run ${id} completed\n`);

    const failed = await runBash(`ID=$(runledger start --job tail); runledger fail "$ID" --message no; echo "$ID"`, store.args);
    const tail2 = await cli('runs', 'tail', failed.stdout.trim(), '--json', '-n', '1');
    expect(tail2.code).toBe(1);
    const lines = tail2.stdout
      .trimEnd()
      .split('\n')
      .map((l) => json<LedgerEvent>(l));
    expect(lines.map((e) => [e.seq, e.type])).toEqual([[2, 'run.status']]);
  });

  it('reap times out a run that stopped heartbeating and prints it', async () => {
    const id = (await cli('start', '--job', 'reaped', '--lease-s', '1')).stdout.trim();
    await sleep(2500); // past two leases
    const r = await cli('reap');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^suspected: \\d+\n[\\s\\S]*timed out: 1\n {2}default/${id}\n$`));
    const run = json<{ run: Run }>((await cli('runs', 'show', id, '--json')).stdout).run;
    expect(run).toMatchObject({ status: 'timed_out', error: { type: 'lease_expired' } });
    const again = await cli('reap', '--json');
    expect(json(again.stdout)).toEqual({ acquired: true, suspected: [], timedOut: [] });
  });

  it('verify exits 0 on an intact ledger and 1 when a stored event was altered', async () => {
    const r = await runBash(
      `ID=$(runledger start --job verify); runledger event "$ID" x --body '{"n":1}' >/dev/null; runledger complete "$ID"; echo "$ID"`,
      store.args,
    );
    const id = r.stdout.trim();
    const one = await cli('verify', id);
    expect(one.code).toBe(0);
    expect(one.stdout).toBe('ok: 1 run(s), 3 event(s) verified\n');
    const all = await cli('verify', '--all', '--json');
    expect(all.code).toBe(0);
    expect(json<VerifyResult>(all.stdout)).toMatchObject({ ok: true, problems: [] });

    // Tamper behind the ledger's back (the immutability trigger has to be switched off first).
    const ledger = store.dataDir
      ? await openLedger({ dataDir: store.dataDir })
      : await openLedger({ url: PG_URL, schema: store.schema, poolSize: 1 });
    try {
      await ledger.database.exec(`alter table events disable trigger events_immutable`);
      await ledger.database.query(`update events set body = '{"n":2}' where run_id = $1 and seq = 2`, [id]);
      await ledger.database.exec(`alter table events enable trigger events_immutable`);
    } finally {
      await ledger.close();
    }
    const bad = await cli('verify', id);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(new RegExp(`^1 problem\\(s\\) in 1 run\\(s\\), 3 event\\(s\\):\\n  ${id} #2: hash_mismatch: `));
    const badAll = await cli('verify', '--all', '--json');
    expect(badAll.code).toBe(1);
    expect(json<VerifyResult>(badAll.stdout).problems).toEqual([expect.objectContaining({ runId: id, seq: 2, problem: 'hash_mismatch' })]);

    const usage = await cli('verify');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe('error: give a run id, or --all to verify every run\n');
  });
  it('keeps JSON in the key order sent: runs show --json, and after export and import into another store', async () => {
    const params = '{"zeta":1,"alpha":{"omega":[{"yy":1,"b":2}],"beta":null},"a":"x"}';
    const body = '{"zz":true,"mid":[{"q":1,"aa":2}],"b":"y"}';
    const output = '{"second":2,"first":{"z":0,"a":1}}';
    const r = await runBash(
      `ID=$(runledger start --job key-order --params '${params}')
       echo "$ID"
       runledger event "$ID" ordered --body '${body}' >/dev/null
       runledger complete "$ID" --output '${output}' --statistics '${output}'`,
      store.args,
      { cwd: tmp.dir },
    );
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim().split('\n')[0];
    const check = (shown: { run: Run; events: LedgerEvent[] }) => {
      expect(JSON.stringify(shown.run.params)).toBe(params);
      expect(JSON.stringify(shown.run.output)).toBe(output);
      expect(JSON.stringify(shown.run.statistics)).toBe(output);
      expect(JSON.stringify(shown.events.find((e) => e.type === 'ordered')!.body)).toBe(body);
    };
    check(json((await cli('runs', 'show', id, '--json')).stdout));
    const file = join(tmp.dir, 'key-order.ndjson');
    // This job only: the store also holds the run the verify test tampered with, which an import refuses.
    const exported = await cli('export', '--job', 'key-order', '--out', file);
    expect(exported.code, exported.stderr).toBe(0);
    const other = cliStore();
    try {
      const imported = await runCli([...other.args, 'import', file]);
      expect(imported.code, imported.stderr).toBe(0);
      check(json((await runCli([...other.args, 'runs', 'show', id, '--json'])).stdout));
    } finally {
      other.cleanup();
    }
  });
});
