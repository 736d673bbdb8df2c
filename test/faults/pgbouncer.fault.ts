/**
 * runledger behind a real PgBouncer in transaction pooling mode (Debian's 1.18, which keeps
 * no prepared statements across transactions), on a database of its own (PgBouncer drops
 * the `options` startup parameter, so the ledger lives in the database's default schema):
 * - a server started without any flag finds the pooler at its first prepared statement,
 *   turns prepared statements off by itself, says so once on stderr, and no request fails;
 * - a second server started with RUNLEDGER_PREPARED_STATEMENTS=off never prepares;
 * - concurrent lifecycles through both servers are whole, gapless and verify;
 * - both reapers time out each expired run exactly once;
 * - LISTEN cannot work through the pooler: the server says so in its log, and a tail on
 *   one server still sees a run finished through the other, at the periodic re-check;
 * - the library through the pooler reports the switch through `onWarning`.
 */
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createClient, type OpenedLedger, openLedger, type RunledgerClient } from '../../src/index.js';
import { BACKEND, PG_URL } from '../helpers.js';
import { adminQuery } from '../pg-admin.js';
import { freePort, type PgBouncer, pgBouncerUnavailable, type ServeProcess, sleep, startPgBouncer, startServe } from './support.js';

const skip =
  BACKEND !== 'postgres' ? 'skipped: a pooler sits in front of a PostgreSQL server (embedded has none)' : (pgBouncerUnavailable() ?? '');
const DATABASE = `rl_pgbouncer_${randomBytes(4).toString('hex')}`;
const RUNS = 40;

let bouncer: PgBouncer | undefined;
let a: ServeProcess | undefined;
let b: ServeProcess | undefined;
let ca: RunledgerClient;
let cb: RunledgerClient;
/** The same database, directly (not through the pooler): what the post-mortems read. */
let direct: OpenedLedger | undefined;

const admin = (sql: string) => adminQuery(PG_URL, sql);

beforeAll(async () => {
  if (skip) return;
  await admin(`create database ${DATABASE}`);
  bouncer = await startPgBouncer(PG_URL, DATABASE, await freePort());
  const args = ['--database-url', bouncer.url];
  // The first server migrates the empty database through the pooler; the second starts once it has.
  a = await startServe(args, await freePort(), ['--reap-interval-s', '1']);
  b = await startServe(args, await freePort(), ['--reap-interval-s', '1'], { RUNLEDGER_PREPARED_STATEMENTS: 'off' });
  ca = createClient({ baseUrl: a.url });
  cb = createClient({ baseUrl: b.url });
  const u = new URL(PG_URL);
  u.pathname = `/${DATABASE}`;
  direct = await openLedger({ url: u.toString(), poolSize: 2, migrate: false });
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await direct?.close();
  await bouncer?.stop();
  if (!skip) await admin(`drop database if exists ${DATABASE} with (force)`);
});

describe.skipIf(skip)(`behind PgBouncer in transaction mode${skip ? ` (${skip})` : ''}`, () => {
  it(`${RUNS} concurrent lifecycles through two servers: none fails, all whole and verified`, async () => {
    const results = await Promise.allSettled(
      Array.from({ length: RUNS }, async (_, i) => {
        const c = i % 2 ? ca : cb;
        const run = await c.startRun({ job: 'pooled', subject: `s${i % 5}`, params: { i } });
        await run.events([
          { type: 'step', body: { n: 1 }, key: `k${i}-1` },
          { type: 'step', body: { n: 2 }, key: `k${i}-2` },
          { type: 'step', body: { n: 3 }, key: `k${i}-3` },
        ]);
        await run.checkpoint({ name: 'half', metadata: { i } });
        await run.complete({ output: { i } });
        return run.id;
      }),
    );
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    expect(failed, 'calls that failed behind the pooler').toEqual([]);
    const ids = results.map((r) => (r as PromiseFulfilledResult<string>).value);
    for (const id of ids) {
      const run = await direct!.getRun(id);
      expect(run.status).toBe('completed');
      // run.status running, 3 steps, the checkpoint, run.status completed.
      expect(run.lastSeq).toBe(6);
      expect((await direct!.verify(id)).ok).toBe(true);
    }
    const subjects = await direct!.listSubjects({ job: 'pooled' });
    expect(subjects.subjects.map((s) => s.status)).toEqual(Array(5).fill('completed'));
    // The server without a flag turned prepared statements off by itself and said so once.
    const warnings = a!.output().match(/prepared statements do not survive between transactions/g) ?? [];
    expect(warnings.length, a!.output()).toBe(1);
    expect(b!.output()).not.toMatch(/prepared statements do not survive/);
  });

  it(`both reapers time out each expired run exactly once (${RUNS / 2} runs)`, async () => {
    const ids = Array.from({ length: RUNS / 2 }, (_, i) => `pooled-reap-${i}`);
    await Promise.all(ids.map((id, i) => (i % 2 ? ca : cb).startRun({ id, job: 'pooled-reap', subject: id, leaseS: 1 })));
    for (let tries = 0; ; tries++) {
      const page = await ca.listRuns({ job: 'pooled-reap', status: ['timed_out'], limit: 100 });
      if (page.runs.length === ids.length) break;
      if (tries > 240) throw new Error(`only ${page.runs.length} of ${ids.length} runs timed out after 60 s`);
      await sleep(250);
    }
    await sleep(2500);
    const { rows } = await direct!.database.query<{ run_id: string; n: number }>(
      `select run_id, count(*)::int as n from events where type = 'run.status' and body->>'status' = 'timed_out' and run_id like 'pooled-reap-%' group by run_id`,
    );
    expect(rows.length).toBe(ids.length);
    expect(rows.filter((r) => r.n !== 1)).toEqual([]);
  });

  it('LISTEN through the pooler is detected and logged; a tail still sees the other server’s completion', async () => {
    const run = await ca.startRun({ job: 'pooled-tail', subject: 'x' });
    const seen: string[] = [];
    const tail = cb.tail(run.id, { onEvent: (e) => void seen.push(e.type) });
    // Opening the tail on b makes b LISTEN; its own test notice never comes back.
    for (let tries = 0; !/LISTEN is in place but its own test notice never arrived/.test(b!.output()); tries++) {
      if (tries > 100) throw new Error(`no LISTEN warning after 10 s:\n${b!.output()}`);
      await sleep(100);
    }
    await run.event('step', { n: 1 });
    await run.complete({ output: { ok: true } });
    const result = await tail;
    expect(result.finished).toBe(true);
    expect(seen).toEqual(['run.status', 'step', 'run.status']);
  });

  it('the library through the pooler switches by itself and reports it through onWarning', async () => {
    const warnings: string[] = [];
    const ledger = await openLedger({ url: bouncer!.url, poolSize: 3, onWarning: (m) => warnings.push(m) });
    try {
      const runs = await Promise.all(Array.from({ length: 12 }, (_, i) => ledger.startRun({ job: 'pooled-lib', subject: `l${i}` })));
      await Promise.all(runs.map((r) => r.complete({ output: { ok: 1 } })));
      expect((await ledger.listRuns({ job: 'pooled-lib', status: ['completed'] })).runs.length).toBe(12);
      // Every call succeeded (above). Whether the pooler loses a prepared statement depends on
      // which server connection each transaction gets (group commit shares few), so the switch
      // may or may not have been needed; when it was, it was reported once.
      expect(warnings.length, warnings.join('\n')).toBeLessThanOrEqual(1);
      for (const w of warnings) expect(w).toMatch(/prepared statements do not survive between transactions/);
    } finally {
      await ledger.close();
    }
  });
});
