/**
 * Recipe 4 — compliance checks with one canonical history (seed 003).
 *
 * The seed team wrote owner-triggered tests to two tables that drifted apart, then needed a
 * backfill that was idempotent, chunked, dry-run first, guarded against the dual-write
 * window, and a rule for which verdict is "current". Here:
 *   - heartbeat and owner-triggered checks are runs of one job; the current status per agent
 *     is derived in the same transaction by the freshness rule;
 *   - the legacy table is backfilled with `runledger import --from-postgres`: dry-run first,
 *     cutover on, then the real import, then a re-run that inserts nothing.
 *
 *   npx tsx examples/04-compliance-checks.ts   (the legacy table lives in LEGACY_DATABASE_URL,
 *                                               default postgres://postgres@127.0.0.1:5432/test)
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import { openLedger } from '../src/index.js';

const LEGACY_URL = process.env.LEGACY_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = process.env.RUNLEDGER_DATA_DIR;
const tag = Date.now().toString(36);
const agents = {
  alpha: `https://alpha-${tag}.example/mcp`,
  beta: `https://beta-${tag}.example/mcp`,
  gamma: `https://gamma-${tag}.example/mcp`,
};

/** The CLI, as a reader would call `runledger …` (from this checkout's sources). */
function runledger(...args: string[]): string {
  const target = dataDir ? ['--data-dir', dataDir] : [];
  return execFileSync(process.execPath, ['--import', 'tsx', join(repo, 'src/cli/main.ts'), ...target, ...args], {
    encoding: 'utf8',
    cwd: repo,
  });
}

// Step 1: the legacy table, as the seed team had it (owner tests, with the dual-write window).
const legacy = new pg.Client({ connectionString: LEGACY_URL });
await legacy.connect();
const schema = `legacy_${tag}`;
await legacy.query(`create schema ${schema}`);
await legacy.query(`create table ${schema}.agent_test_history (
  id serial primary key, agent_url text not null, user_id text, passed boolean not null, score int,
  started_at timestamptz not null, finished_at timestamptz not null)`);
const day = (d: number, h = 12) => new Date(Date.UTC(2026, 0, d, h)).toISOString();
const rows: [string, string, boolean, number, string, string][] = [
  [agents.alpha, 'u1', false, 40, day(1), day(1, 13)],
  [agents.alpha, 'u1', true, 90, day(2), day(2, 13)],
  [agents.beta, 'u2', true, 80, day(3), day(3, 13)],
  [agents.gamma, 'u3', false, 10, day(4), day(4, 13)], // gamma was only ever tested through the legacy path
];
for (const r of rows) {
  await legacy.query(
    `insert into ${schema}.agent_test_history (agent_url, user_id, passed, score, started_at, finished_at) values ($1,$2,$3,$4,$5,$6)`,
    r,
  );
}

// Step 2: live checks through the canonical path: heartbeat and owner-triggered runs of one job.
let ledger = await openLedger({ dataDir });
async function check(agent: string, trigger: 'heartbeat' | 'owner_test', passed: boolean) {
  const run = await ledger.startRun({
    job: 'compliance-check',
    subject: agent,
    trigger,
    actor: trigger === 'owner_test' ? 'u1' : undefined,
  });
  const statistics = { storyboardsPassing: passed ? 30 : 12, storyboardsTotal: 30 };
  return passed
    ? run.complete({ statistics })
    : run.fail({ error: { type: 'storyboards_failing', message: '18 of 30 failing' }, statistics });
}
const live = await check(agents.alpha, 'owner_test', true); // the first live owner run: the cutover point for owner_test
// The dual write: the same owner run also landed in the legacy table. It must not be imported twice.
await legacy.query(
  `insert into ${schema}.agent_test_history (agent_url, user_id, passed, score, started_at, finished_at) values ($1, 'u1', true, 95, $2, $3)`,
  [agents.alpha, live.startedAt, live.finishedAt],
);
await check(agents.alpha, 'heartbeat', true);
await check(agents.beta, 'heartbeat', false);
const alphaNow = await ledger.getSubject('compliance-check', agents.alpha);
console.log(
  `live: alpha ${alphaNow.status} (${alphaNow.trigger}), beta ${(await ledger.getSubject('compliance-check', agents.beta)).status}`,
);
await ledger.close(); // the CLI below opens the same embedded store

// Step 3: backfill with the CLI — dry run first.
// Only owner-triggered rows (user_id set); `passed` becomes a terminal status in the query.
const query = `select id, agent_url, case when passed then 'completed' else 'failed' end as status, score, started_at, finished_at
                 from ${schema}.agent_test_history where user_id is not null`;
const importArgs = [
  'import',
  '--from-postgres',
  LEGACY_URL,
  '--query',
  query,
  '--key',
  'id',
  '--source',
  'agent_test_history',
  '--map',
  'id=sourceId,agent_url=subject,score=statistics.score,started_at=startedAt,finished_at=finishedAt',
  '--set',
  'job=compliance-check',
  '--set',
  'trigger=owner_test',
  '--chunk-size',
  '2',
  '--json',
];
const lastJson = (out: string) => JSON.parse(out.trim().split('\n').at(-1)!);
const dry = lastJson(runledger(...importArgs, '--dry-run'));
console.log(`dry run: ${JSON.stringify({ read: dry.read, inserted: dry.inserted, skippedCutover: dry.skippedCutover })}`);
assert.equal(dry.read, 5);
assert.equal(dry.skippedCutover, 1); // the dual-write row (at the first live owner run)
assert.equal(dry.inserted, 4);

const real = lastJson(runledger(...importArgs));
assert.deepEqual([real.inserted, real.skippedCutover, real.invalid], [dry.inserted, dry.skippedCutover, 0]); // the dry run told the truth
const rerun = lastJson(runledger(...importArgs));
assert.equal(rerun.inserted, 0); // a re-run is a no-op
console.log(
  `import: inserted ${real.inserted}, skipped by cutover ${real.skippedCutover}; re-run inserted ${rerun.inserted}, duplicates ${rerun.duplicates}`,
);

// Step 4: one canonical history per agent, and a current status decided by freshness.
ledger = await openLedger({ dataDir });
const alpha = await ledger.getSubject('compliance-check', agents.alpha);
assert.equal(alpha.runId, alphaNow.runId); // old history never displaces the fresher live verdict
const gamma = await ledger.getSubject('compliance-check', agents.gamma);
assert.equal(gamma.status, 'failed'); // an agent with no live run gets its latest imported verdict
const history = await ledger.listRuns({ job: 'compliance-check', subject: agents.alpha });
console.log(`alpha history: ${history.runs.map((r) => `${r.trigger}:${r.status}${r.source ? ' (imported)' : ''}`).join(', ')}`);
assert.equal(history.runs.length, 4); // 2 live + 2 backfilled (the dual-write duplicate was skipped)
assert.equal((await ledger.verify()).ok, true);
await ledger.close();

await legacy.query(`drop schema ${schema} cascade`);
await legacy.end();
console.log('recipe 4 ok');
