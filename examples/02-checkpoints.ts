/**
 * Recipe 2 — checkpoints that survive a restart (seed 001).
 *
 * The seed service added diff metadata to a checkpoint after it had been persisted, so the
 * metadata lived only in memory and was gone after a restart. A runledger checkpoint is
 * written once, whole, with a content hash; it cannot be mutated afterwards.
 *
 *   npx tsx examples/02-checkpoints.ts
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import { openLedger } from '../src/index.js';

const open = () => openLedger({ dataDir: process.env.RUNLEDGER_DATA_DIR });

// Compute the diff manifest BEFORE writing: the checkpoint is stored in one piece.
const diffPaths = ['src/plan.ts', 'src/decide.ts'];
const diffHash = createHash('sha256').update(diffPaths.join('\n')).digest('hex');

let ledger = await open();
const run = await ledger.startRun({ job: 'plan-execution', subject: 'plan-17', trigger: 'decision' });
const { checkpoint } = await run.checkpoint({
  name: 'pre_decision',
  kind: 'workspace_snapshot',
  ref: 'sandbox://plan-17',
  metadata: { decisionId: 'd-3', diff_paths: diffPaths, diff_based: true, diff_hash: diffHash },
});
console.log(`checkpoint ${checkpoint.name} stored with content hash ${checkpoint.contentHash}`);

// Trying to change it later is refused, not silently lost.
try {
  await run.checkpoint({ name: 'pre_decision', kind: 'workspace_snapshot', ref: 'sandbox://plan-17', metadata: { decisionId: 'd-3' } });
  assert.fail('a checkpoint must not be overwritten');
} catch (err) {
  assert.equal((err as { code?: string }).code, 'key_conflict');
  console.log(`rewriting it is refused: ${(err as Error).message}`);
}

// The service restarts.
await ledger.close();
ledger = await open();

// The checkpoint reads back whole, and verifies against its hash.
const back = await ledger.run(run.id).getCheckpoint('pre_decision');
assert.deepEqual(back.metadata, { decisionId: 'd-3', diff_paths: diffPaths, diff_based: true, diff_hash: diffHash });
const verdict = await ledger.verify(run.id);
assert.equal(verdict.ok, true);
console.log(`after restart: metadata ${JSON.stringify(back.metadata)}; verify ok=${verdict.ok}`);

await ledger.run(run.id).complete({ output: { decision: 'apply' } });
await ledger.close();
console.log('recipe 2 ok');
