/**
 * The demo data behind `runledger demo` (commands/demo.ts): realistic runs of the five flows in the README's recipes, so a newcomer
 * opening the dashboard sees something. Everything goes through the `Ledger` interface, so it
 * works embedded, on PostgreSQL and against a server (--server).
 *
 * - a week of history, imported (source `runledger-demo`): compliance checks per agent
 *   (heartbeat every 6 h, owner tests now and then), daily agent-md runs per repository, and a
 *   finished week-collection with its child runs;
 * - live runs recorded now: agent-md workflows with events, checkpoints and statistics, a
 *   failure after a retry, a running week-collection whose children carry AMC execution ids,
 *   fresh compliance verdicts, and a run that stops heartbeating (suspect, then timed out).
 */
import type { ImportRecord, Json, JsonObject, Ledger, RunError, StartedRun } from '../core/types.js';

export const DEMO_SOURCE = 'runledger-demo';

export interface DemoOptions {
  /** The stuck run's lease in seconds: suspect after one lease, timed out after two (default 60). */
  stuckLeaseS?: number;
  /** Clock for the imported history (default now). */
  now?: Date;
}

export interface DemoSummary {
  imported: number;
  live: number;
  runIds: {
    agentMdCompleted: string;
    agentMdFailed: string;
    agentMdRunning: string;
    stuck: string;
    collection: string;
    collectionChildren: string[];
  };
}

export const DEMO_AGENTS = [
  'https://agents.acme.dev/support-bot',
  'https://agents.acme.dev/billing-agent',
  'https://agents.acme.dev/triage-agent',
  'https://agents.globex.io/sales-assistant',
  'https://agents.globex.io/docs-helper',
  'https://agents.initech.com/onboarding-guide',
];
export const DEMO_REPOS = ['acme/api', 'acme/web', 'acme/billing', 'globex/etl', 'initech/tps-reports'];
const CHECKS = ['schema.valid', 'auth.required', 'pii.redacted', 'latency.p95', 'tools.declared', 'refusal.policy', 'rate.limits'];

/** A small deterministic generator, so the demo looks the same every time. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
    hex: (n: number) => Array.from({ length: n }, () => Math.floor(next() * 16).toString(16)).join(''),
  };
}

const iso = (ms: number) => new Date(ms).toISOString();
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

function stackOf(type: string, message: string, frames: string[]): string {
  return [`${type}: ${message}`, ...frames.map((f) => `    at ${f}`)].join('\n');
}

function complianceRecord(
  rnd: ReturnType<typeof prng>,
  agent: string,
  trigger: 'heartbeat' | 'owner_test',
  startMs: number,
  failing: number,
): ImportRecord {
  const durationMs = rnd.int(8_000, 45_000);
  const failed = CHECKS.filter(() => rnd.next() < failing);
  const latencyP95 = rnd.int(180, 900);
  const events = CHECKS.map((check, i) => ({
    type: 'check.result',
    level: (failed.includes(check) ? 'warn' : 'info') as 'warn' | 'info',
    at: iso(startMs + ((i + 1) * durationMs) / (CHECKS.length + 1)),
    body: { check, passed: !failed.includes(check), ...(check === 'latency.p95' ? { ms: latencyP95 } : {}) },
  }));
  const record: ImportRecord = {
    sourceId: `compliance:${agent}:${trigger}:${startMs}`,
    job: 'compliance-check',
    subject: agent,
    trigger,
    ...(trigger === 'owner_test' ? { actor: rnd.pick(['emma@acme.dev', 'brian@acme.dev', 'ops@globex.io']) } : { actor: 'scheduler' }),
    startedAt: iso(startMs),
    createdAt: iso(startMs - rnd.int(100, 2000)),
    finishedAt: iso(startMs + durationMs),
    params: { suite: 'adcp-compliance', suiteVersion: '2.3.0', checks: CHECKS.length },
    statistics: { checksRun: CHECKS.length, checksPassed: CHECKS.length - failed.length, latencyP95Ms: latencyP95 },
    output: { verdict: failed.length ? 'fail' : 'pass', failedChecks: failed },
    events,
  };
  if (failed.length) {
    record.status = 'failed';
    record.error = {
      type: 'compliance_failed',
      message: `${failed.length} of ${CHECKS.length} checks failed: ${failed.join(', ')}`,
      details: { failedChecks: failed },
    };
  }
  return record;
}

function agentMdRecord(rnd: ReturnType<typeof prng>, repo: string, startMs: number, i: number): ImportRecord {
  const durationMs = rnd.int(90_000, 480_000);
  const filesScanned = rnd.int(120, 2400);
  const tokensIn = rnd.int(40_000, 260_000);
  const tokensOut = rnd.int(2_000, 9_000);
  const workflowId = `agent-md-${repo.replace('/', '-')}-${rnd.hex(8)}`;
  const trigger = i % 5 === 3 ? 'manual' : 'schedule';
  const failed = rnd.next() < 0.12;
  const cancelled = !failed && rnd.next() < 0.04;
  const record: ImportRecord = {
    sourceId: `agent-md:${repo}:${startMs}`,
    job: 'agent-md',
    subject: repo,
    trigger,
    actor: trigger === 'manual' ? 'emma@acme.dev' : 'temporal-scheduler',
    createdAt: iso(startMs - rnd.int(1000, 20_000)),
    startedAt: iso(startMs),
    finishedAt: iso(startMs + durationMs),
    externalIds: { 'temporal.workflowId': workflowId, 'temporal.runId': `${rnd.hex(8)}-${rnd.hex(4)}-${rnd.hex(4)}-${rnd.hex(12)}` },
    params: { model: 'claude-sonnet', maxFiles: 2500, branch: 'main' },
    events: [
      { type: 'workflow.started', level: 'info', at: iso(startMs + 200), body: { workflowId } },
      { type: 'repo.cloned', level: 'info', at: iso(startMs + durationMs * 0.1), body: { repo, branch: 'main' } },
      { type: 'files.scanned', level: 'info', at: iso(startMs + durationMs * 0.3), body: { files: filesScanned } },
      { type: 'llm.request', level: 'debug', at: iso(startMs + durationMs * 0.4), body: { tokensIn } },
    ],
  };
  if (failed) {
    record.status = 'failed';
    record.error = {
      type: 'RateLimitError',
      message: 'model provider answered 429 Too Many Requests after 5 attempts',
      details: { attempts: 5, retryAfterS: 30 },
      stack: stackOf('RateLimitError', '429 Too Many Requests', [
        'ModelClient.complete (src/llm/client.ts:88:13)',
        'async generateAgentMd (src/activities/agent-md.ts:142:22)',
        'async Activity.execute (node_modules/@temporalio/worker/lib/activity.js:91:20)',
      ]),
    };
    record.statistics = { filesScanned, tokensIn, tokensOut: 0 };
    record.events!.push({ type: 'llm.error', level: 'error', at: iso(startMs + durationMs * 0.95), body: { status: 429 } });
  } else if (cancelled) {
    record.status = 'cancelled';
    record.notes = 'superseded by a newer push';
  } else {
    record.statistics = { filesScanned, tokensIn, tokensOut, costUsd: Math.round(tokensIn * 0.0003 + tokensOut * 0.0015) / 100 };
    record.output = { agentMdBytes: rnd.int(3000, 14000), sections: ['Overview', 'Build', 'Tests', 'Conventions'] };
    record.events!.push({ type: 'llm.response', level: 'info', at: iso(startMs + durationMs * 0.9), body: { tokensOut } });
  }
  return record;
}

function weekLabel(ms: number): string {
  const d = new Date(ms);
  const jan4 = Date.UTC(d.getUTCFullYear(), 0, 4);
  const week = 1 + Math.round((ms - jan4) / (7 * DAY) + ((new Date(jan4).getUTCDay() + 6) % 7) / 7);
  return `${d.getUTCFullYear()}-W${String(Math.max(1, Math.min(53, week))).padStart(2, '0')}`;
}

type Rnd = ReturnType<typeof prng>;

/** Steps 1 and 2: a week of compliance checks per agent and daily agent-md runs per repository. */
function weekOfHistory(rnd: Rnd, now: number): ImportRecord[] {
  const history: ImportRecord[] = [];

  // Step 1: a week of compliance checks: heartbeat every 6 h per agent, owner tests now and then.
  // billing-agent has been failing since yesterday; triage-agent is flaky.
  DEMO_AGENTS.forEach((agent, a) => {
    for (let t = now - 7 * DAY + a * 11 * MIN; t < now - 2 * HOUR; t += 6 * HOUR) {
      const failing = agent.endsWith('billing-agent') && t > now - DAY ? 0.35 : agent.endsWith('triage-agent') ? 0.06 : 0.01;
      history.push(complianceRecord(rnd, agent, 'heartbeat', t, failing));
      if (rnd.next() < 0.12) history.push(complianceRecord(rnd, agent, 'owner_test', t + rnd.int(30, 300) * MIN, failing / 2));
    }
  });

  // Step 2: daily agent-md runs per repository.
  DEMO_REPOS.forEach((repo, r) => {
    for (let d = 7; d >= 1; d--) history.push(agentMdRecord(rnd, repo, now - d * DAY + (2 + r) * HOUR + rnd.int(0, 40) * MIN, d));
  });
  return history;
}

/** Step 3: last week's collection, finished, with one child per week and its execution id. */
function pastCollection(rnd: Rnd, now: number): { parent: ImportRecord; children: ImportRecord[] } {
  const pastStart = now - 5 * DAY;
  const pastId = `demo-collection-${weekLabel(pastStart)}`;
  const pastParent: ImportRecord = {
    sourceId: `week-collection:${pastId}`,
    id: pastId,
    job: 'week-collection',
    subject: 'Genesis',
    trigger: 'schedule',
    startedAt: iso(pastStart),
    finishedAt: iso(pastStart + 52 * MIN),
    params: { instance: 'amc-eu-1', weeks: 8 },
    statistics: { weeks: 8, rows: 0 },
    output: { weeksCollected: 8 },
  };
  const children: ImportRecord[] = [];
  let pastRows = 0;
  for (let w = 0; w < 8; w++) {
    const start = pastStart + w * 6 * MIN;
    const rows = rnd.int(12_000, 90_000);
    pastRows += rows;
    children.push({
      sourceId: `week-collection:${pastId}:${w}`,
      job: 'week-collection.week',
      subject: `Genesis ${weekLabel(pastStart - (8 - w) * 7 * DAY)}`,
      trigger: 'schedule',
      parentId: pastId,
      startedAt: iso(start),
      finishedAt: iso(start + rnd.int(3, 6) * MIN),
      externalIds: { 'amc.executionId': `exec-${rnd.hex(12)}` },
      params: { week: weekLabel(pastStart - (8 - w) * 7 * DAY), instance: 'amc-eu-1' },
      statistics: { rows },
    });
  }
  pastParent.statistics = { weeks: 8, rows: pastRows };
  return { parent: pastParent, children };
}

/** Imports the history in chunks; any record refused stops the demo (its data is ours, so that is a bug). */
async function importHistory(ledger: Ledger, batches: ImportRecord[][]): Promise<number> {
  let imported = 0;
  for (const batch of batches) {
    const result = await ledger.importRuns(DEMO_SOURCE, batch, { cutover: 'none' });
    const bad = result.results.find((r) => r.status === 'invalid');
    if (bad) throw new Error(`demo import refused record ${bad.sourceId}: ${bad.error?.message}`);
    imported += result.inserted;
  }
  return imported;
}

/** Step 4a: an agent-md workflow recorded live with events, two checkpoints and statistics. */
async function agentMdCompleted(ledger: Ledger, rnd: Rnd): Promise<StartedRun> {
  const ok = await ledger.startRun({
    job: 'agent-md',
    subject: 'acme/api',
    trigger: 'manual',
    actor: 'emma@acme.dev',
    leaseS: 300,
    params: { model: 'claude-sonnet', maxFiles: 2500, branch: 'main' },
    externalIds: { 'temporal.workflowId': `agent-md-acme-api-${rnd.hex(8)}` },
    tags: { team: 'platform' },
  });
  await ok.events([
    { type: 'workflow.started', level: 'info', body: { queue: 'agent-md' } },
    { type: 'repo.cloned', level: 'info', body: { repo: 'acme/api', commit: rnd.hex(40) } },
    { type: 'files.scanned', level: 'info', body: { files: 1184, skipped: 37 } },
    { type: 'llm.request', level: 'debug', body: { model: 'claude-sonnet', tokensIn: 182_400 } },
    { type: 'llm.retry', level: 'warn', body: { status: 529, attempt: 1, waitMs: 4000 } },
    { type: 'llm.response', level: 'info', body: { tokensOut: 6120 } },
  ]);
  const diffPaths = ['AGENTS.md', 'docs/agents/build.md', 'docs/agents/tests.md'];
  await ok.checkpoint({
    name: 'pre_decision',
    kind: 'diff',
    ref: `sha256:${rnd.hex(64)}`,
    metadata: { diffPaths, diffHash: rnd.hex(64), linesAdded: 212, linesRemoved: 48 },
  });
  await ok.checkpoint({
    name: 'final_payload',
    kind: 'agent_md',
    metadata: { sections: 6, bytes: 11_912, model: 'claude-sonnet' },
    data: {
      title: 'AGENTS.md for acme/api',
      sections: ['Overview', 'Setup', 'Build', 'Tests', 'Conventions', 'Gotchas'],
      excerpt: '## Build\n\nRun `make build`; the API needs PostgreSQL 15 on :5432.',
    },
  });
  await ok.complete({
    output: { agentMdBytes: 11_912, sections: ['Overview', 'Setup', 'Build', 'Tests', 'Conventions', 'Gotchas'], pullRequest: 1044 },
    statistics: { filesScanned: 1184, tokensIn: 182_400, tokensOut: 6120, costUsd: 0.64, llmRetries: 1 },
    notes: 'Opened PR #1044 with the regenerated AGENTS.md.',
  });
  return ok;
}

/** Step 4b: an agent-md workflow that times out, is retried, and fails for good. */
async function agentMdFailed(ledger: Ledger, rnd: Rnd): Promise<StartedRun> {
  const bad = await ledger.startRun({
    job: 'agent-md',
    subject: 'acme/billing',
    trigger: 'schedule',
    actor: 'temporal-scheduler',
    leaseS: 300,
    params: { model: 'claude-sonnet', maxFiles: 2500, branch: 'main' },
    externalIds: { 'temporal.workflowId': `agent-md-acme-billing-${rnd.hex(8)}` },
  });
  await bad.event('workflow.started', { queue: 'agent-md' }, { level: 'info' });
  await bad.event('repo.cloned', { repo: 'acme/billing' }, { level: 'info' });
  const timeout: RunError = { type: 'ActivityTimeout', message: 'activity generate_agent_md timed out after 300 s (attempt 1)' };
  await bad.retry({ error: timeout });
  await bad.start();
  await bad.event('workflow.retry', { attempt: 2 }, { level: 'warn' });
  await bad.event('files.scanned', { files: 3120, skipped: 0 }, { level: 'info' });
  await bad.event('llm.error', { status: 400, reason: 'context length exceeded' }, { level: 'error' });
  await bad.fail({
    error: {
      type: 'ContextLengthExceeded',
      message: 'prompt is 412,880 tokens; the model accepts at most 200,000',
      details: { tokens: 412_880, limit: 200_000, files: 3120 },
      stack: stackOf('ContextLengthExceeded', 'prompt is 412,880 tokens; the model accepts at most 200,000', [
        'buildPrompt (src/activities/agent-md.ts:97:11)',
        'async generateAgentMd (src/activities/agent-md.ts:139:18)',
        'async Activity.execute (node_modules/@temporalio/worker/lib/activity.js:91:20)',
      ]),
    },
    statistics: { filesScanned: 3120, tokensIn: 412_880, tokensOut: 0 },
  });
  return bad;
}

/** Step 4c: an agent-md workflow still running, heartbeating its progress. */
async function agentMdRunning(ledger: Ledger, rnd: Rnd): Promise<StartedRun> {
  const running = await ledger.startRun({
    job: 'agent-md',
    subject: 'globex/etl',
    trigger: 'schedule',
    actor: 'temporal-scheduler',
    leaseS: 900,
    params: { model: 'claude-sonnet', maxFiles: 2500, branch: 'release/2.4' },
    externalIds: { 'temporal.workflowId': `agent-md-globex-etl-${rnd.hex(8)}` },
  });
  await running.events([
    { type: 'workflow.started', level: 'info', body: { queue: 'agent-md' } },
    { type: 'repo.cloned', level: 'info', body: { repo: 'globex/etl', branch: 'release/2.4' } },
    { type: 'files.scanned', level: 'info', body: { files: 640, skipped: 12 } },
  ]);
  await running.heartbeat({ phase: 'generating', done: 2, of: 5 });
  return running;
}

/** Step 5: a run that stops heartbeating: suspect after one lease, timed out after two. */
async function stuckRun(ledger: Ledger, rnd: Rnd, leaseS: number): Promise<StartedRun> {
  const stuck = await ledger.startRun({
    job: 'agent-md',
    subject: 'initech/tps-reports',
    trigger: 'schedule',
    actor: 'temporal-scheduler',
    leaseS,
    params: { model: 'claude-sonnet', maxFiles: 2500, branch: 'main' },
    externalIds: { 'temporal.workflowId': `agent-md-initech-tps-reports-${rnd.hex(8)}` },
  });
  await stuck.event('workflow.started', { queue: 'agent-md' }, { level: 'info' });
  await stuck.event('worker.lost', { host: 'worker-3', reason: 'OOMKilled' }, { level: 'error' });
  return stuck;
}

/** Step 6: this week's collection: a parent and one child per week, each with its AMC execution id. */
async function currentCollection(ledger: Ledger, rnd: Rnd, now: number): Promise<{ collection: StartedRun; children: string[] }> {
  const collection = await ledger.startRun({
    job: 'week-collection',
    subject: 'Genesis',
    trigger: 'manual',
    actor: 'analyst@acme.dev',
    params: { instance: 'amc-eu-1', weeks: 8 },
  });
  const children: string[] = [];
  let rows = 0;
  for (let w = 0; w < 8; w++) {
    const week = weekLabel(now - (8 - w) * 7 * DAY);
    const child = await ledger.startRun({
      job: 'week-collection.week',
      subject: `Genesis ${week}`,
      trigger: 'manual',
      parentId: collection.id,
      status: w === 7 ? 'submitted' : 'running',
      params: { week, instance: 'amc-eu-1' },
    });
    children.push(child.id);
    if (w === 7) continue; // still queued: no execution id yet
    const executionId = `exec-${rnd.hex(12)}`;
    await child.setExternalIds({ 'amc.executionId': executionId });
    await child.event('amc.execution.created', { executionId, week }, { level: 'info' });
    if (w === 6) {
      await child.heartbeat({ state: 'RUNNING', pollCount: 4 });
      continue; // still running in AMC
    }
    if (w === 4) {
      await child.event('amc.execution.status', { executionId, state: 'FAILED' }, { level: 'error' });
      await child.fail({
        error: {
          type: 'AmcQueryTimeout',
          message: `AMC execution ${executionId} exceeded the 30 min query limit`,
          details: { executionId, week },
        },
      });
      continue;
    }
    const r = rnd.int(12_000, 90_000);
    rows += r;
    await child.event('amc.execution.status', { executionId, state: 'SUCCEEDED' }, { level: 'info' });
    await child.complete({ statistics: { rows: r }, output: { table: `report_data_weeks`, week, rows: r } });
  }
  await collection.event('collection.progress', { done: 5, failed: 1, running: 1, queued: 1, of: 8 }, { level: 'info' });
  await collection.heartbeat({ done: 6, of: 8, rows });
  return { collection, children };
}

/** Step 7: fresh compliance verdicts: heartbeats now, and an owner test that fixes billing-agent. Returns how many runs. */
async function freshCompliance(ledger: Ledger, rnd: Rnd): Promise<number> {
  let live = 0;

  for (const agent of DEMO_AGENTS) {
    const run = await ledger.startRun({
      job: 'compliance-check',
      subject: agent,
      trigger: 'heartbeat',
      actor: 'scheduler',
      params: { suite: 'adcp-compliance', suiteVersion: '2.3.0', checks: CHECKS.length },
    });
    live++;
    const failedChecks = agent.endsWith('billing-agent') ? ['pii.redacted'] : [];
    await run.events(
      CHECKS.map((check) => ({
        type: 'check.result',
        level: failedChecks.includes(check) ? ('warn' as const) : ('info' as const),
        body: { check, passed: !failedChecks.includes(check) } as Json,
      })),
    );
    const statistics: JsonObject = {
      checksRun: CHECKS.length,
      checksPassed: CHECKS.length - failedChecks.length,
      latencyP95Ms: rnd.int(180, 700),
    };
    if (failedChecks.length)
      await run.fail({ error: { type: 'compliance_failed', message: `1 of ${CHECKS.length} checks failed: pii.redacted` }, statistics });
    else await run.complete({ statistics, output: { verdict: 'pass', failedChecks: [] } });
  }
  const ownerTest = await ledger.startRun({
    job: 'compliance-check',
    subject: DEMO_AGENTS[1]!,
    trigger: 'owner_test',
    actor: 'emma@acme.dev',
    params: { suite: 'adcp-compliance', suiteVersion: '2.3.0', checks: CHECKS.length },
  });
  live++;
  await ownerTest.event('check.result', { check: 'pii.redacted', passed: true, note: 'redaction filter deployed' }, { level: 'info' });
  await ownerTest.complete({
    statistics: { checksRun: CHECKS.length, checksPassed: CHECKS.length, latencyP95Ms: 410 },
    output: { verdict: 'pass', failedChecks: [] },
  });
  return live;
}

/** Fills `ledger` with the demo runs. The caller checks that it is empty. */
export async function seedDemo(ledger: Ledger, opts: DemoOptions = {}): Promise<DemoSummary> {
  // One generator through every step, in this order: the same seed gives the same demo every time.
  const rnd = prng(20251209);
  const now = (opts.now ?? new Date()).getTime();
  const history = weekOfHistory(rnd, now);
  const past = pastCollection(rnd, now);
  const sorted = history.sort((x, y) => Date.parse(x.startedAt!) - Date.parse(y.startedAt!));
  const imported = await importHistory(ledger, [[past.parent], past.children, ...chunks(sorted, 500)]);

  const ok = await agentMdCompleted(ledger, rnd);
  const bad = await agentMdFailed(ledger, rnd);
  const running = await agentMdRunning(ledger, rnd);
  const stuck = await stuckRun(ledger, rnd, opts.stuckLeaseS ?? 60);
  const { collection, children } = await currentCollection(ledger, rnd, now);
  const compliance = await freshCompliance(ledger, rnd);

  return {
    imported,
    live: [ok, bad, running, stuck, collection].length + children.length + compliance,
    runIds: {
      agentMdCompleted: ok.id,
      agentMdFailed: bad.id,
      agentMdRunning: running.id,
      stuck: stuck.id,
      collection: collection.id,
      collectionChildren: children,
    },
  };
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
