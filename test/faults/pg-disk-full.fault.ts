/**
 * PostgreSQL with a full disk (SQLSTATE 53100): the ledger's tables live in a tablespace on
 * a small tmpfs of their own. Event batches are posted until the disk fills: the refused
 * write is 507 storage_full (not a 500), it stored nothing, /healthz answers, and once space
 * is freed writes work again. Needs root (mount) and a PostgreSQL server on this machine.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildServer, type OpenedLedger, openLedger } from '../../src/index.js';
import { BACKEND, dropSchemas, freshSchema, PG_URL } from '../helpers.js';
import { api, expectProblem } from '../server/support.js';

function whyNot(): string {
  if (BACKEND !== 'postgres') return 'a PostgreSQL test';
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs';
  return '';
}
const skip = whyNot();
const space = `rl_small_${process.pid}`;
let dir = '';
let mounted = false;
let admin: pg.Client | undefined;
let ledger: OpenedLedger | undefined;

beforeAll(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'runledger-pgfull-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12m', 'tmpfs', dir]);
  mounted = true;
  execFileSync('chown', ['postgres:postgres', dir]);
  admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create tablespace ${space} location '${dir}'`);
  ledger = await openLedger({ url: PG_URL, schema: freshSchema(), poolSize: 4 });
  // Every table and index of the ledger moves to the small disk.
  await ledger.database.exec(`do $$ declare r record; begin
    for r in select tablename from pg_tables where schemaname = current_schema() loop
      execute format('alter table %I set tablespace ${space}', r.tablename); end loop;
    for r in select indexname from pg_indexes where schemaname = current_schema() loop
      execute format('alter index %I set tablespace ${space}', r.indexname); end loop;
  end $$`);
  // Room to free later: a filler table on the same disk.
  await ledger.database.exec(`create table filler tablespace ${space} as select repeat('x', 2000) as pad from generate_series(1, 1500)`);
}, 120_000);

afterAll(async () => {
  await ledger?.close();
  await dropSchemas();
  await admin?.query(`drop tablespace if exists ${space}`).catch(() => {});
  await admin?.end();
  if (mounted) execFileSync('umount', ['-l', dir]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)(`PostgreSQL with a full disk${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('a write that meets SQLSTATE 53100 is 507 storage_full, stores nothing, and writes resume once space is freed', async () => {
    const app = await buildServer({ ledger: ledger!, auth: 'off' });
    const call = api(app);
    try {
      const run = await ledger!.startRun({ job: 'fill' });
      const batch = (n: number) => ({
        events: Array.from({ length: 200 }, (_, i) => ({ type: 'fill', body: { n, i, pad: 'y'.repeat(400) } })),
      });
      let refused;
      let acked = 0;
      for (let n = 0; n < 1000 && !refused; n++) {
        const res = await call('POST', `/v1/runs/${run.id}/events`, batch(n));
        if (res.status === 200 || res.status === 201) acked += 200;
        else refused = res;
      }
      expect(refused, 'the disk never filled').toBeDefined();
      const p = expectProblem(refused!, 507, 'storage_full');
      expect(p.detail).toMatch(/disk is full \(SQLSTATE 53100/);
      // Nothing partial: exactly the acknowledged events are stored.
      expect((await ledger!.getRun(run.id)).lastSeq).toBe(acked + 1);
      expect((await call('GET', '/healthz')).status).toBe(200);

      await ledger!.database.exec('drop table filler');
      const again = await call('POST', `/v1/runs/${run.id}/events`, { events: [{ type: 'after', body: { ok: true } }] });
      expect(again.status, again.text).toBeLessThan(300);
      expect((await ledger!.getRun(run.id)).lastSeq).toBe(acked + 2);
    } finally {
      await app.close();
    }
  });
});
