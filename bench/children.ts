/**
 * `npx tsx bench/children.ts [N]` — what a parent's `children: { total, byStatus }` costs
 * on `getRun`: a parent with N children (default 10 000, inserted by SQL) against a run
 * with none, read alternately on PostgreSQL; prints the medians and their ratio.
 */
import { openLedger } from '../src/index.js';
import { freshLedgerSchema, PG_URL } from './lib/postgres.js';

const N = Number(process.argv[2] ?? 10_000);
const READS = 200;

const { schema, drop } = await freshLedgerSchema('children');
const ledger = await openLedger({ url: PG_URL, schema, migrate: false });
try {
  const parent = await ledger.startRun({ job: 'collection' });
  const lone = await ledger.startRun({ job: 'collection' });
  await ledger.database.query(
    `insert into runs (namespace, id, job, subject, parent_id, status, created_at, finished_at)
     select 'default', 'child-' || i, 'week', 'w' || i, $1, (array['completed','failed','running','cancelled'])[1 + i % 4],
            now(), case when i % 4 = 2 then null else now() end
       from generate_series(1, $2::int) i`,
    [parent.id, N],
  );
  await ledger.database.query('analyze runs');
  const ms = { parent: [] as number[], lone: [] as number[] };
  for (let i = 0; i < READS; i++) {
    for (const [name, id] of [
      ['parent', parent.id],
      ['lone', lone.id],
    ] as const) {
      const t = performance.now();
      await ledger.getRun(id);
      ms[name].push(performance.now() - t);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const children = (await ledger.getRun(parent.id)).children;
  console.log(`children: ${JSON.stringify(children)}`);
  console.log(
    `getRun median over ${READS} reads: ${median(ms.parent).toFixed(2)} ms with ${N} children, ${median(ms.lone).toFixed(2)} ms without (${(median(ms.parent) / median(ms.lone)).toFixed(1)}×)`,
  );
} finally {
  await ledger.close();
  await drop();
}
