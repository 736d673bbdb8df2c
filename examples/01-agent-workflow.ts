/**
 * Recipe 1 — agent workflow snapshots (seed 000).
 *
 * The seed team's complete_run() updated snapshots by (owner, repo) with no run id, so two
 * runs for one repository overwrote each other, and a worker that died never completed.
 * Here every write names one run, completion is one transaction, and a run whose worker
 * stops heartbeating is timed out by the reaper instead of staying "running" forever.
 *
 *   npx tsx examples/01-agent-workflow.ts
 */
import assert from 'node:assert/strict';

import { openLedger, type StartedRun } from '../src/index.js';

const ledger = await openLedger({ dataDir: process.env.RUNLEDGER_DATA_DIR }); // ./.runledger, or DATABASE_URL
const repo = `acme/api-${Date.now()}`; // a fresh subject, so the recipe can run again

async function agentWorkflow(run: StartedRun, flavour: string) {
  for (const step of ['clone', 'analyse', 'write']) {
    await run.event('agent.step', { step, flavour });
  }
  await run.complete({
    output: { agentMd: `# AGENTS.md (${flavour})` },
    statistics: { inputTokens: flavour.length * 1000, outputTokens: 420 },
  });
}

// Two workflow runs for the same repository, at the same time.
const [a, b] = await Promise.all([
  ledger.startRun({ job: 'agent-md', subject: repo, trigger: 'manual', externalIds: { 'temporal.workflowId': `wf-a-${repo}` } }),
  ledger.startRun({ job: 'agent-md', subject: repo, trigger: 'schedule', externalIds: { 'temporal.workflowId': `wf-b-${repo}` } }),
]);
await Promise.all([agentWorkflow(a, 'first'), agentWorkflow(b, 'second')]);

// Each kept its own output: nothing was updated by (owner, repo).
const [runA, runB] = await Promise.all([ledger.getRun(a.id), ledger.getRun(b.id)]);
assert.deepEqual(runA.output, { agentMd: '# AGENTS.md (first)' });
assert.deepEqual(runB.output, { agentMd: '# AGENTS.md (second)' });
console.log(`run ${a.id}: ${runA.status}, ${JSON.stringify(runA.statistics)}`);
console.log(`run ${b.id}: ${runB.status}, ${JSON.stringify(runB.statistics)}`);

// A worker that dies: it starts a run with a 1 s lease and is never heard from again
// (a killed process sends no more heartbeats — here we simply stop).
const orphan = await ledger.startRun({ job: 'agent-md', subject: repo, trigger: 'manual', leaseS: 1 });
await new Promise((r) => setTimeout(r, 2200)); // past 2 × lease
const reaped = await ledger.reap(); // `runledger serve` does this every few seconds
assert.ok(reaped.timedOut.some((r) => r.id === orphan.id));
const dead = await ledger.getRun(orphan.id);
assert.equal(dead.status, 'timed_out');
assert.equal(dead.error?.type, 'lease_expired');
console.log(`run ${orphan.id}: ${dead.status} (${dead.error?.message})`);

// The API reads status and output from one place: the run, and the subject's current status.
const subject = await ledger.getSubject('agent-md', repo);
console.log(`subject ${repo}: current ${subject.status} from run ${subject.runId}; ${subject.recentRuns.length} runs`);
assert.equal(subject.recentRuns.length, 3);

await ledger.close();
console.log('recipe 1 ok');
