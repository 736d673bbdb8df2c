/**
 * Recipe 5 — external execution ids (seed 004).
 *
 * The seed team's execution_id from the remote API was dropped somewhere between the call
 * and the database update. Here a collection run has one child run per week; each week
 * records the remote execution id the moment the call returns (write-once), and the weeks
 * still missing one can be listed with a filter.
 *
 *   npx tsx examples/05-execution-ids.ts
 */
import assert from 'node:assert/strict';

import { openLedger } from '../src/index.js';

const ledger = await openLedger({ dataDir: process.env.RUNLEDGER_DATA_DIR });
const collectionId = `collection-${Date.now()}`;

/** Stands in for the remote API: returns an execution id, except for one week where it fails. */
async function createWorkflowExecution(week: string): Promise<{ executionId: string } | null> {
  return week.endsWith('W03') ? null : { executionId: `amc-exec-${week}` };
}

const collection = await ledger.startRun({ id: collectionId, job: 'historical-collection', subject: 'instance-9' });
const weeks = ['2026-W01', '2026-W02', '2026-W03', '2026-W04'];

for (const week of weeks) {
  const child = await ledger.startRun({ job: 'week-collection', subject: week, parentId: collection.id, params: { week } });
  const result = await createWorkflowExecution(week);
  if (result) {
    // Recorded as soon as the remote call returns: nothing in between can drop it.
    await child.setExternalIds({ 'amc.executionId': result.executionId });
    await child.complete({ output: { rows: 100 } });
  } else {
    await child.fail({ error: { type: 'remote_error', message: `no execution id returned for ${week}` } });
  }
}

// Write-once: the same value again is a no-op, another value is refused.
const [first] = (await ledger.listRuns({ parentId: collection.id, externalId: 'amc.executionId:amc-exec-2026-W01' })).runs;
await ledger.run(first.id).setExternalIds({ 'amc.executionId': 'amc-exec-2026-W01' });
await assert.rejects(ledger.run(first.id).setExternalIds({ 'amc.executionId': 'something-else' }), { code: 'key_conflict' });

// Which weeks are missing an execution id?
const missing = await ledger.listRuns({ parentId: collection.id, missingExternalId: 'amc.executionId' });
console.log(`weeks missing an execution id: ${missing.runs.map((r) => r.subject).join(', ')}`);
assert.deepEqual(
  missing.runs.map((r) => r.subject),
  ['2026-W03'],
);

// Search by the remote id finds the week.
const found = await ledger.listRuns({ externalId: 'amc.executionId:amc-exec-2026-W02' });
assert.equal(found.runs[0].subject, '2026-W02');

const children = await ledger.listRuns({ parentId: collection.id });
await collection.complete({ statistics: { weeks: children.runs.length, missingExecutionIds: missing.runs.length } });
await ledger.close();
console.log('recipe 5 ok');
