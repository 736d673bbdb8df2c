/**
 * The dashboard, end to end: the built web app served by the real server over a fresh
 * ledger filled by `runledger demo`'s seeder, driven in Debian's chromium through
 * playwright-core. Screenshots of each page land in build/screenshots/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';

import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DemoSummary, seedDemo } from '../../src/cli/demo.js';
import type { OpenedLedger, Run } from '../../src/index.js';
import { startServer } from '../../src/server/serve.js';
import { createToken } from '../../src/server/tokens.js';
import { dropSchemas, freshLedger } from '../helpers.js';
import { startReceiver } from '../server/webhook-receiver.js';

// axe-core, injected into each page: the accessibility check of every page.
const AXE = readFileSync(resolve(import.meta.dirname, '../../node_modules/axe-core/axe.min.js'), 'utf8');

/** axe's serious and critical violations on the page as it is now, one line each. */
async function seriousViolations(p: Page): Promise<string[]> {
  await p.addScriptTag({ content: AXE });
  return p.evaluate(async () => {
    type Violation = { id: string; impact: string | null; help: string; nodes: { target: string[] }[] };
    const axe = (window as unknown as { axe: { run(ctx: Document): Promise<{ violations: Violation[] }> } }).axe;
    const { violations } = await axe.run(document);
    return violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map(
        (v) =>
          `${v.id} (${v.impact}): ${v.help} — ${v.nodes
            .slice(0, 3)
            .map((n) => n.target.join(' '))
            .join('; ')}`,
      );
  });
}

const CHROMIUM = process.env.RUNLEDGER_CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`skipping the dashboard tests: no chromium at ${CHROMIUM} (apt-get install chromium)`);

const ROOT = resolve(import.meta.dirname, '../..');
const WEB_OUT = join(ROOT, 'dist/web');
const SHOTS = join(ROOT, 'build/screenshots');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds the dashboard unless dist/web is newer than every source (npm test builds it first). */
async function buildWebOnce(): Promise<void> {
  const index = join(WEB_OUT, 'index.html');
  const sources = Math.max(newestMtime(join(ROOT, 'web')), statSync(join(ROOT, 'src/core/types.ts')).mtimeMs);
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  // As `npm run build:web` does it: in its own process, away from vitest's NODE_ENV=test.
  const env = { ...process.env, NODE_ENV: 'production' };
  execFileSync(
    process.execPath,
    [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'],
    {
      cwd: ROOT,
      env,
      stdio: 'inherit',
    },
  );
}

describe('dashboard bundle', () => {
  beforeAll(buildWebOnce);

  it('loads one small entry script; uPlot comes only with the charts page', () => {
    const html = readFileSync(join(WEB_OUT, 'index.html'), 'utf8');
    const scripts = [...html.matchAll(/<script[^>]+src="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts).toHaveLength(1);
    expect(scripts[0]).toMatch(/^\/assets\//);
    const entry = readFileSync(join(WEB_OUT, scripts[0]!));
    // React 19 + react-dom are ~60 KB of it; the budget keeps the rest in check.
    expect(gzipSync(entry).length).toBeLessThan(100 * 1024);
    expect(entry.includes('u-legend')).toBe(false);
    const charts = readdirSync(join(WEB_OUT, 'assets')).filter((f) => /^ChartsPage-.*\.js$/.test(f));
    expect(charts).toHaveLength(1);
    expect(readFileSync(join(WEB_OUT, 'assets', charts[0]!), 'utf8')).toContain('u-legend');
  });
});

// Waits up to 30 s for a page that refreshes itself (the runs list follows the change feed,
// and polls every 10 s for new runs and read-time flags such as suspect).
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 30_000, interval: 100 });

describe.skipIf(!hasChromium)('dashboard in chromium', () => {
  let ledger: OpenedLedger;
  let server: Awaited<ReturnType<typeof startServer>>;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let demo: DemoSummary;
  const errors: string[] = [];

  const shot = (p: Page, name: string, fullPage = true) => p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
  const go = async (hash: string, p: Page = page) => {
    await p.goto(`${server.url}/${hash}`);
  };
  const rowsText = (p: Page = page) => p.locator('table.runs-table tbody tr').allInnerTexts();

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    await buildWebOnce();
    ledger = await freshLedger();
    server = await startServer({
      ledger,
      port: 0,
      auth: 'off',
      reapIntervalS: 0,
      logger: false,
      webhooks: { allowPrivateTargets: true, pollMs: 100 },
    });
    demo = await seedDemo(ledger, { stuckLeaseS: 1 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (err) => errors.push(err.message));
    page.setDefaultTimeout(15_000);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await ledger?.close();
    await dropSchemas();
  });

  it('serves the dashboard at / and lists runs newest first, flagging the suspect run', async () => {
    await go('');
    await page.locator('table.runs-table tbody tr').first().waitFor();
    const ids = await page.locator('table.runs-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run-id')));
    expect(ids.length).toBe(50);
    // Newest first: the last live runs of the demo are compliance checks.
    const newest = await ledger.listRuns({ limit: 1 });
    expect(ids[0]).toBe(newest.runs[0]!.id);
    await poll(() => page.locator(`tr[data-run-id="${demo.runIds.stuck}"] .badge.suspect`).count()).toBe(1);
    await poll(async () => (await page.locator('.live-note').innerText()).startsWith('Live')).toBe(true);
    await shot(page, 'runs');
  });

  it('loads more with the keyset cursor', async () => {
    await page.getByRole('button', { name: 'Load more' }).click();
    await poll(() => page.locator('table.runs-table tbody tr').count()).toBe(100);
    const ids = await page.locator('table.runs-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run-id')));
    expect(new Set(ids).size).toBe(100);
  });

  it('filters by job and status, and by external id', async () => {
    await go('#/runs');
    await page.getByLabel('Job').fill('compliance-check');
    await page.getByLabel('Status').selectOption('failed');
    await page.getByRole('button', { name: 'Apply' }).click();
    await poll(() => page.evaluate(() => location.hash)).toContain('job=compliance-check');
    await poll(async () => {
      const rows = await rowsText();
      return rows.length > 0 && rows.every((r) => r.includes('compliance-check') && r.includes('failed'));
    }).toBe(true);
    const failed = await ledger.listRuns({ job: 'compliance-check', status: 'failed', limit: 500 });
    await poll(async () => (await rowsText()).length).toBe(Math.min(50, failed.runs.length));

    const child = await ledger.getRun(demo.runIds.collectionChildren[0]!);
    const [key, value] = Object.entries(child.externalIds)[0]!;
    await go('#/runs');
    await page.getByLabel('External id').fill(`${key}:${value}`);
    await page.getByLabel('External id').press('Enter');
    await poll(() => page.locator('table.runs-table tbody tr').evaluateAll((r) => r.map((x) => x.getAttribute('data-run-id')))).toEqual([
      child.id,
    ]);

    // A malformed external id filter is explained, not sent.
    await page.getByLabel('External id').fill('no-colon');
    await page.getByRole('button', { name: 'Apply' }).click();
    await poll(() => page.locator('#externalId-error').isVisible()).toBe(true);
  });

  it('searches by id prefix, filters by actor, tag and time range, counts the matches, and keeps every filter in the URL', async () => {
    const target = await ledger.getRun(demo.runIds.agentMdFailed);
    await go('#/runs');
    await page.getByLabel('Search').fill(target.id.slice(0, 13));
    await page.getByLabel('Search').press('Enter');
    await poll(() => page.locator('table.runs-table tbody tr').evaluateAll((r) => r.map((x) => x.getAttribute('data-run-id')))).toContain(
      target.id,
    );
    const byPrefix = await ledger.listRuns({ q: target.id.slice(0, 13), withTotal: true, limit: 50 });
    await poll(() => page.getByTestId('runs-count').innerText()).toContain(`${byPrefix.total} run`);

    // Actor + tag + a time range that holds the tagged run: the answer is exactly what the API says.
    const tagged = (await ledger.listRuns({ tag: 'team:platform', limit: 1 })).runs[0]!;
    const after = new Date(Date.parse(tagged.createdAt) - 60_000);
    const before = new Date(Date.parse(tagged.createdAt) + 60_000);
    const local = (d: Date) => {
      const p = (n: number) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
    };
    await go('#/runs');
    await page.getByLabel('Actor').fill(tagged.actor!);
    await page.getByLabel('Tag').fill('team:platform');
    await page.getByLabel('Created after').fill(local(after));
    await page.getByLabel('Created before').fill(local(before));
    await page.getByRole('button', { name: 'Apply' }).click();
    await poll(() => page.evaluate(() => decodeURIComponent(location.hash))).toContain('tag=team:platform');
    const hash = await page.evaluate(() => location.hash);
    for (const k of ['actor=', 'createdAfter=', 'createdBefore=']) expect(hash).toContain(k);
    const expected = await ledger.listRuns({
      actor: tagged.actor!,
      tag: 'team:platform',
      // The inputs keep minutes: the filter is what they show.
      createdAfter: new Date(Math.floor(after.getTime() / 60_000) * 60_000).toISOString(),
      createdBefore: new Date(Math.floor(before.getTime() / 60_000) * 60_000).toISOString(),
      limit: 50,
    });
    expect(expected.runs.map((r) => r.id)).toContain(tagged.id);
    await poll(() => page.locator('table.runs-table tbody tr').evaluateAll((r) => r.map((x) => x.getAttribute('data-run-id')))).toEqual(
      expected.runs.map((r) => r.id),
    );
    await poll(() => page.getByTestId('runs-count').innerText()).toContain(`${expected.runs.length} run`);

    // Reloading the URL restores every field.
    await page.reload();
    await poll(() => page.getByLabel('Tag').inputValue()).toBe('team:platform');
    expect(await page.getByLabel('Actor').inputValue()).toBe(tagged.actor);
    expect(await page.getByLabel('Created after').inputValue()).toBe(local(after));

    // A tag without a colon is explained, not sent.
    await page.getByLabel('Tag').fill('platform');
    await page.getByRole('button', { name: 'Apply' }).click();
    await poll(() => page.locator('#tag-error').isVisible()).toBe(true);
    await shot(page, 'runs-filtered');
  });

  it('shows a run created while the page is open', async () => {
    await go('#/runs?job=live-demo');
    await page.getByText('No run matches these filters').waitFor();
    const run = await ledger.startRun({ job: 'live-demo', subject: 'acme/api' });
    // A new run is not in the change feed: the list's slow poll brings it.
    await page.locator(`tr[data-run-id="${run.id}"]`).waitFor({ timeout: 30_000 });
    await run.complete({});
    await poll(() => page.locator(`tr[data-run-id="${run.id}"] [data-status]`).getAttribute('data-status')).toBe('completed');
  });

  it('follows the change feed: a finished run updates the list through /v1/changes/stream', async () => {
    const streams: string[] = [];
    const onRequest = (r: { url(): string }) => r.url().includes('/v1/changes/stream') && streams.push(r.url());
    page.on('request', onRequest);
    try {
      const run = await ledger.startRun({ job: 'feed-demo', subject: 'acme/web' });
      await go('#/runs?job=feed-demo');
      await page.locator(`tr[data-run-id="${run.id}"]`).waitFor();
      await poll(() => streams.length).toBeGreaterThan(0);
      expect(new URL(streams[0]!).searchParams.get('after')).toBe('now');
      await run.fail({ error: { message: 'feed says so' } });
      await poll(() => page.locator(`tr[data-run-id="${run.id}"] [data-status]`).getAttribute('data-status')).toBe('failed');
    } finally {
      page.off('request', onRequest);
    }
  });

  it('lists webhooks with their recent deliveries', async () => {
    const receiver = await startReceiver();
    try {
      const hook = await ledger.createWebhook({ url: receiver.url, types: ['run.finished'], description: 'pager' });
      receiver.secret = hook.secret;
      const run = await ledger.startRun({ job: 'hooked', subject: 'acme/api' });
      await run.complete({});
      await poll(async () => (await ledger.listWebhookDeliveries(hook.id, { state: 'delivered' })).length).toBe(1);
      expect(receiver.received.every((r) => r.verified)).toBe(true);
      await go('#/webhooks');
      const item = page.locator(`li[data-webhook="${hook.id}"]`);
      await item.waitFor();
      expect(await item.innerText()).toContain('pager');
      await item.getByRole('button', { name: receiver.url }).click();
      const row = item.locator('table.deliveries tbody tr').first();
      await row.waitFor();
      expect(await row.innerText()).toMatch(/run\.finished\s+delivered\s+1\s+HTTP 204/);
      await shot(page, 'webhooks');
    } finally {
      await receiver.close();
    }
  });

  it('opens a run: timeline, checkpoints with a verified badge, output and statistics', async () => {
    await go('#/runs?job=agent-md&subject=acme/api&trigger=manual');
    await page.locator(`tr[data-run-id="${demo.runIds.agentMdCompleted}"] a[title="${demo.runIds.agentMdCompleted}"]`).click();
    await page.getByRole('heading', { name: demo.runIds.agentMdCompleted }).waitFor();
    await page.getByText('✓ chain verified').waitFor();
    await poll(() => page.locator('.timeline li .badge').allInnerTexts()).toEqual(['running', 'completed']);
    await page.getByRole('button', { name: 'pre_decision' }).click();
    const view = page.getByTestId('checkpoint-view');
    await view.getByText('diffPaths').waitFor();
    await view.getByText('"docs/agents/build.md"').waitFor();
    expect(await view.locator('.badge.good').innerText()).toContain('verified');
    await poll(() => page.getByLabel('Statistics').innerText()).toContain('tokensIn');
    await poll(() => page.getByLabel('External ids').innerText()).toContain('temporal.workflowId');
    await shot(page, 'run-detail');
  });

  it('shows JSON in the key order it was sent: event body, params, tags, output and statistics', async () => {
    // Orders neither sorted nor jsonb's (shorter keys first), nested in objects and arrays.
    const body = { zeta: 'z', alpha: { omega: [{ yy: 1, b: 2 }], beta: null }, mid: 3, a: 'short' };
    const run = await ledger.startRun({ job: 'key-order', params: { zone: 'z', app: 'a', b: 1 }, tags: { zone: 'z', app: 'a' } });
    await run.event('ordered.body', body);
    await run.complete({ output: { second: 2, first: 1 }, statistics: { tokensOut: 5, in: 3 } });
    await go(`#/runs/${run.id}`);
    const event = page.locator('.events .event', { hasText: 'ordered.body' });
    await event.waitFor();
    expect(await event.locator('.ebody > details > summary').innerText()).toBe(JSON.stringify(body));
    await event.locator('.ebody > details > summary').click();
    await event.locator('.ebody > details[open]').waitFor();
    const keys = async (scope: ReturnType<Page['locator']>) =>
      (await scope.locator('.j-key').allTextContents()).map((k) => k.replace(/: $/, ''));
    // Depth first, array elements by index.
    expect(await keys(event.locator('.ebody'))).toEqual(['zeta', 'alpha', 'omega', '0', 'yy', 'b', 'beta', 'mid', 'a']);
    expect(await keys(page.locator('section[aria-labelledby="params-title"]'))).toEqual(['zone', 'app', 'b']);
    expect(await keys(page.locator('section[aria-labelledby="out-title"]'))).toEqual(['second', 'first']);
    expect(await keys(page.locator('section[aria-labelledby="stats-title"]'))).toEqual(['tokensOut', 'in']);
    expect(await page.getByLabel('Tags').locator('dt').allTextContents()).toEqual(['zone', 'app']);
  });

  it('opens an event body into its tree', async () => {
    await go(`#/runs/${demo.runIds.agentMdCompleted}`);
    const event = page.locator('.events .event', { hasText: 'repo.cloned' });
    await event.waitFor();
    await event.locator('.ebody > details > summary').click();
    await event.locator('.ebody > details[open]').waitFor();
    expect(await event.locator('.ebody > details').innerText()).toContain('commit:');
  });

  it('filters the event log by level', async () => {
    await page.getByLabel('Level').selectOption('warn');
    const levels = await page.locator('.events .event .lvl').allInnerTexts();
    expect(levels).toEqual(['warn']);
    await page.getByLabel('Level').selectOption('');
    expect(await page.locator('.events .event').count()).toBeGreaterThan(5);
  });

  it('flags a checkpoint whose stored content no longer matches its hash', async () => {
    const run = await ledger.startRun({ job: 'tamper-demo', subject: 'acme/api' });
    await run.checkpoint({ name: 'pre_decision', metadata: { diffHash: 'abc' } });
    await run.checkpoint({ name: 'final', metadata: { ok: true } });
    await run.complete({});
    // Go around the immutability trigger, as a corrupting bug or a hand edit would.
    const db = ledger.database;
    await db.query('alter table checkpoints disable trigger checkpoints_immutable');
    try {
      await db.query(`update checkpoints set metadata = '{"diffHash":"mutated"}' where run_id = $1 and name = 'pre_decision'`, [run.id]);
    } finally {
      await db.query('alter table checkpoints enable trigger checkpoints_immutable');
    }
    await go(`#/runs/${run.id}`);
    await page.getByText('✗ 1 integrity problem').waitFor();
    const items = page.locator('.checkpoints > li');
    await poll(() => items.filter({ hasText: 'pre_decision' }).locator('.badge.bad').innerText()).toContain('mismatch');
    expect(await items.filter({ hasText: 'final' }).locator('.badge.good').innerText()).toContain('verified');
    await shot(page, 'run-checkpoint-mismatch');
  });

  it('tails a live run: an appended event and the completion arrive without reload', async () => {
    await go(`#/runs/${demo.runIds.agentMdRunning}`);
    await poll(() => page.getByTestId('stream-state').innerText()).toContain('live');
    // "live" means caught up: every event the run already had is on the page (the badge once
    // showed as soon as the stream opened, before its backlog had arrived).
    const before = await page.locator('.events .event').count();
    expect(before).toBe((await ledger.getRun(demo.runIds.agentMdRunning)).lastSeq);
    await ledger.run(demo.runIds.agentMdRunning).event('llm.response', { tokensOut: 4242 }, { level: 'info' });
    await page.locator('.events .event', { hasText: '4242' }).waitFor();
    expect(await page.locator('.events .event').count()).toBe(before + 1);
    await shot(page, 'run-live');
    await ledger.run(demo.runIds.agentMdRunning).complete({ statistics: { tokensOut: 4242 } });
    await poll(() => page.locator('.page-head [data-status]').getAttribute('data-status')).toBe('completed');
    await poll(() => page.getByTestId('stream-state').innerText()).toBe('complete');
  });

  it('shows a failure with its stack, and a parent with its children', async () => {
    await go(`#/runs/${demo.runIds.agentMdFailed}`);
    await page.getByRole('heading', { name: 'Error: ContextLengthExceeded' }).waitFor();
    expect(await page.locator('pre.stack').innerText()).toContain('buildPrompt');
    await poll(() => page.locator('.timeline li .badge').allInnerTexts()).toEqual(['running', 'retrying', 'running', 'failed']);
    await shot(page, 'run-failed');

    await go(`#/runs/${demo.runIds.collection}`);
    await page.getByRole('heading', { name: /Child runs/ }).waitFor();
    expect(await page.getByRole('heading', { name: /Child runs/ }).innerText()).toContain('6 of 8 finished');
    expect(await page.getByRole('progressbar').getAttribute('aria-valuenow')).toBe('6');
    const child = demo.runIds.collectionChildren[2]!;
    await page.locator(`a[title="${child}"]`).click();
    await page
      .getByRole('link', { name: /parent/ })
      .first()
      .waitFor();
    await shot(page, 'run-collection-child');
  });

  it('groups child runs under their parents in the list, collapsed until opened, and keeps the grouping in the URL', async () => {
    const l = ledger.inNamespace('tree');
    const parent = await l.startRun({ job: 'collect', subject: 'batch-1' });
    const kids = [];
    for (let i = 0; i < 3; i++) kids.push(await l.startRun({ job: 'item', subject: `item-${i}`, parentId: parent.id }));
    const grandchild = await l.startRun({ job: 'part', parentId: kids[0]!.id });
    const loner = await l.startRun({ job: 'other' });
    await go('#/runs?namespace=tree');
    await page.locator('table.runs-table tbody tr').first().waitFor();
    const order = () => page.locator('table.runs-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run-id')));
    // Ungrouped: newest first, children anywhere.
    expect(await order()).toEqual([loner.id, grandchild.id, kids[2]!.id, kids[1]!.id, kids[0]!.id, parent.id]);
    await page.getByTestId('group-toggle').click();
    await poll(() => page.evaluate(() => location.hash)).toBe('#/runs?namespace=tree&group=parent');
    await poll(order).toEqual([loner.id, parent.id]);
    const toggle = page.getByRole('button', { name: `Show 3 child runs of ${parent.id}` });
    expect(await toggle.getAttribute('aria-expanded')).toBe('false');
    await toggle.click();
    await poll(order).toEqual([loner.id, parent.id, kids[2]!.id, kids[1]!.id, kids[0]!.id]);
    await page.getByRole('button', { name: `Show 1 child run of ${kids[0]!.id}` }).click();
    await poll(order).toEqual([loner.id, parent.id, kids[2]!.id, kids[1]!.id, kids[0]!.id, grandchild.id]);
    const depths = await page.locator('table.runs-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-depth')));
    expect(depths).toEqual(['0', '0', '1', '1', '1', '2']);
    expect(await seriousViolations(page)).toEqual([]);
    await shot(page, 'runs-grouped');
    // A reload keeps the grouping (it is in the URL); opened parents start closed again.
    await page.reload();
    await poll(order).toEqual([loner.id, parent.id]);
    await page.getByTestId('group-toggle').click();
    await poll(() => page.evaluate(() => location.hash)).toBe('#/runs?namespace=tree');
    await poll(order).toEqual([loner.id, grandchild.id, kids[2]!.id, kids[1]!.id, kids[0]!.id, parent.id]);
    expect(errors).toEqual([]);
  });

  it('draws the children on one time axis, one bar per child', async () => {
    await go(`#/runs/${demo.runIds.collection}`);
    const gantt = page.getByLabel('Timeline of the child runs');
    await gantt.waitFor();
    const ids = await gantt.locator('li.gantt-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run-id')));
    expect(new Set(ids)).toEqual(new Set(demo.runIds.collectionChildren));
    // Each bar is coloured by its run's status.
    for (const id of demo.runIds.collectionChildren.slice(0, 3)) {
      const child = await ledger.getRun(id!);
      expect(await gantt.locator(`li[data-run-id="${id}"] .gantt-bar`).getAttribute('class')).toContain(`status-${child.status}`);
    }
    await shot(page, 'run-gantt');
  });

  it('shows an exec run’s output as logs (stderr marked, search, download) and the CLI command that reproduces it', async () => {
    const run = await ledger.startRun({
      job: 'backup',
      subject: 'db1',
      trigger: 'manual',
      params: { command: ['bash', '-c', "echo it's done"] },
    });
    await run.events([
      { type: 'log', level: 'info', body: { stream: 'stdout', line: 'dumping table users' } },
      { type: 'log', level: 'error', body: { stream: 'stderr', line: 'warning: table orders is large' } },
      { type: 'log', level: 'info', body: { stream: 'stdout', line: 'dumping table orders' } },
    ]);
    await run.complete({});
    await go(`#/runs/${run.id}`);
    const log = page.getByRole('log', { name: 'Command output' });
    await poll(() => log.locator('.log-line').allInnerTexts()).toEqual([
      'dumping table users',
      'warning: table orders is large',
      'dumping table orders',
    ]);
    expect(await log.locator('.log-line.stream-stderr').allInnerTexts()).toEqual(['warning: table orders is large']);
    await page.getByLabel('Search the logs').fill('ORDERS');
    await poll(() => log.locator('.log-line').count()).toBe(2);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
    expect(download.suggestedFilename()).toBe(`${run.id}.log`);
    const text = readFileSync((await download.path())!, 'utf8');
    expect(text).toBe('dumping table users\nwarning: table orders is large\ndumping table orders\n');

    await page.getByText('CLI command').click();
    expect(await page.getByTestId('cli-command').innerText()).toBe(
      `runledger exec --job backup --subject db1 --trigger manual -- bash -c 'echo it'\\''s done'`,
    );
    await shot(page, 'run-logs');
  });

  it('shows the subjects board with trigger-badged strips', async () => {
    await go('#/subjects?job=compliance-check');
    await page.locator('li.tile').first().waitFor();
    expect(await page.locator('li.tile').count()).toBe(6);
    // billing-agent: the owner test after the failing heartbeat is the current verdict.
    const billing = page.locator('li.tile[data-subject="https://agents.acme.dev/billing-agent"]');
    expect(await billing.locator('.tile-head [data-status]').getAttribute('data-status')).toBe('completed');
    expect(await billing.locator('.trigger-badge').innerText()).toBe('owner_test');
    await poll(() => billing.locator('.strip .cell').count()).toBeGreaterThan(5);
    const cells = await billing.locator('.strip .cell').allInnerTexts();
    expect(cells).toContain('OT');
    expect(cells).toContain('H');
    expect(await billing.locator('.strip .cell.status-failed').count()).toBeGreaterThan(0);
    await shot(page, 'subjects');
  });

  it('marks an overdue subject and shows its failure streak; a run started again clears the badge', async () => {
    const hoursAgo = (h: number) => new Date(Date.now() - h * 3600_000).toISOString();
    await ledger.importRuns('dashboard-health', [
      { sourceId: 'n1', job: 'nightly-db', subject: 'db-1', status: 'failed', startedAt: hoursAgo(4), finishedAt: hoursAgo(3.9) },
      { sourceId: 'n2', job: 'nightly-db', subject: 'db-1', status: 'failed', startedAt: hoursAgo(3), finishedAt: hoursAgo(2.9) },
      { sourceId: 'n3', job: 'nightly-db', subject: 'db-2', status: 'completed', startedAt: hoursAgo(0.2), finishedAt: hoursAgo(0.1) },
      { sourceId: 'n4', job: 'nightly-db', subject: 'db-2', status: 'completed', startedAt: hoursAgo(0.4), finishedAt: hoursAgo(0.3) },
    ]);
    await ledger.setExpectation('nightly-db', { every: '1h', grace: '5m' });
    await go('#/subjects?job=nightly-db');
    const late = page.locator('li.tile[data-subject="db-1"]');
    const onTime = page.locator('li.tile[data-subject="db-2"]');
    await late.locator('.overdue-badge').waitFor();
    expect(await late.locator('.streak').innerText()).toContain('2 failures in a row');
    expect(await onTime.locator('.overdue-badge').count()).toBe(0);
    expect(await onTime.locator('.streak').innerText()).toMatch(/2 successes in a row · next due /);
    await shot(page, 'subjects-health');

    const again = await ledger.startRun({ job: 'nightly-db', subject: 'db-1' });
    await page.reload();
    await onTime.waitFor();
    expect(await late.locator('.overdue-badge').count()).toBe(0);
    await again.complete();
  });

  it('cancels a live run from its page (the worker is told at its next heartbeat)', async () => {
    const live = await ledger.startRun({ job: 'dashboard-cancel', subject: 'c1', leaseS: 600 });
    await go(`#/runs/${live.id}`);
    const dialogs: string[] = [];
    page.once('dialog', (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await poll(() => page.locator('.page-head [data-status]').getAttribute('data-status')).toBe('cancelled');
    expect(dialogs).toEqual([`Cancel run ${live.id}? Its worker is told to stop at its next heartbeat.`]);
    const run = await ledger.getRun(live.id);
    expect([run.status, run.error]).toEqual(['cancelled', expect.objectContaining({ message: 'cancelled from the dashboard' })]);
    expect(await page.getByRole('button', { name: 'Cancel run' }).count()).toBe(0);
    // The worker's next heartbeat is refused, saying the run is finished.
    await expect(live.heartbeat()).rejects.toMatchObject({ code: 'run_finished' });
  });

  it('draws the charts from /v1/stats', async () => {
    await go('#/charts?range=7d');
    await page.locator('.plot canvas').first().waitFor();
    expect(await page.locator('.plot canvas').count()).toBe(2);
    expect(await page.locator('table tbody tr', { hasText: 'compliance-check' }).count()).toBe(1);
    await shot(page, 'charts');
  });

  it('compares runs showing only the fields that differ', async () => {
    const { runs } = await ledger.listRuns({ job: 'compliance-check', subject: 'https://agents.acme.dev/billing-agent', limit: 2 });
    await go('#/runs?job=compliance-check&subject=https://agents.acme.dev/billing-agent');
    for (const r of runs) await page.getByLabel(`Select run ${r.id} to compare`).check();
    await page.getByRole('link', { name: 'Compare 2 selected' }).click();
    await page.getByLabel('Params differences').waitFor();
    // Same suite for both: no param differs.
    expect(await page.getByLabel('Params differences').innerText()).toContain('All 3 fields are the same');
    const statFields = await page.getByLabel('Statistics differences').locator('tbody th').allInnerTexts();
    expect(statFields).toContain('checksPassed');
    for (const f of statFields) {
      const cells = await page.getByLabel('Statistics differences').locator(`tr[data-field="${f}"] td`).allInnerTexts();
      expect(new Set(cells).size).toBeGreaterThan(1);
    }
    // A differing number shows its change from the first run, and its cell is highlighted.
    const [first, second] = runs as [Run, Run];
    const numericStat = statFields.find((f) => typeof first.statistics?.[f] === 'number' && typeof second.statistics?.[f] === 'number');
    expect(numericStat, 'a numeric statistic that differs').toBeDefined();
    const a = first.statistics![numericStat!] as number;
    const b = second.statistics![numericStat!] as number;
    const row = page.getByLabel('Statistics differences').locator(`tr[data-field="${numericStat}"]`);
    expect(await row.locator('td.differs .delta').innerText()).toContain(
      `${b > a ? '+' : '\u2212'}${Number(Math.abs(b - a).toPrecision(12))}`,
    );
    // The toggle shows the identical params too (greyed), and hides them again.
    await page.getByLabel('Show identical fields').check();
    await poll(() => page.getByLabel('Params differences').locator('tr.row-same').count()).toBe(3);
    await page.getByLabel('Show identical fields').uncheck();
    await poll(() => page.getByLabel('Params differences').locator('tr.row-same').count()).toBe(0);
    // Every numeric statistic is drawn, one bar per run.
    const bars = page.getByLabel('Statistics chart').locator(`figure[data-stat="${numericStat}"] .stat-bar`);
    expect(await bars.count()).toBe(2);
    await shot(page, 'compare');
  });

  it('every page passes axe (no serious or critical violation) in light and in dark mode, which follows the system', async () => {
    const compare = (await ledger.listRuns({ job: 'compliance-check', limit: 2 })).runs.map((r) => r.id).join(',');
    const pages: [string, string, string][] = [
      ['runs', '#/runs', 'table.runs-table tbody tr'],
      ['run', `#/runs/${demo.runIds.agentMdCompleted}`, 'text=✓ chain verified'],
      ['run-failed', `#/runs/${demo.runIds.agentMdFailed}`, 'pre.stack'],
      ['subjects', '#/subjects?job=compliance-check', 'li.tile'],
      ['charts', '#/charts?range=7d', '.plot canvas'],
      ['compare', `#/compare?ids=${compare}`, '[aria-label="Statistics differences"]'],
      ['webhooks', '#/webhooks', 'h1'],
      ['retention', '#/retention', 'h1'],
    ];
    try {
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        for (const [name, hash, ready] of pages) {
          await go(hash);
          await page.locator(ready).first().waitFor();
          const bg = await page.evaluate(
            () => getComputedStyle(document.body).backgroundColor || getComputedStyle(document.documentElement).backgroundColor,
          );
          expect(await seriousViolations(page), `${name} (${scheme}): background ${bg}`).toEqual([]);
          if (scheme === 'dark') await shot(page, `dark-${name}`);
        }
      }
      // Dark mode really is dark: the page background follows the preference.
      const bg = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--bg').trim());
      expect(bg).toBe('#0b1120');
    } finally {
      await page.emulateMedia({ colorScheme: 'light' });
    }
  });

  it('shows a pruned run as pruned with its tombstone, and the namespace’s retention rules', async () => {
    const l = ledger.inNamespace('retained');
    const old = await l.startRun({ job: 'nightly', subject: 'acme' });
    await old.event('step', { n: 1 });
    await old.complete();
    const head = await old.get();
    await (await l.startRun({ job: 'nightly', subject: 'acme' })).complete();
    await l.setRetention([{ keepDays: 0 }, { job: 'audit', keepDays: 400, keepLastPerSubject: 3 }]);
    expect((await l.prune()).runs.map((r) => r.id)).toEqual([old.id]);
    await go(`#/runs/${old.id}?namespace=retained`);
    await page.locator('.pruned-run').getByText('pruned', { exact: true }).waitFor();
    const facts = await page.locator('.facts.tombstone').innerText();
    expect(facts).toContain(old.id);
    expect(facts).toContain('acme');
    expect(facts).toContain(String(head.lastSeq));
    await shot(page, 'pruned-run');
    await page.getByRole('link', { name: 'Retention rules' }).click();
    await poll(() => page.evaluate(() => location.hash)).toBe('#/retention?namespace=retained');
    const rows = await page.locator('table.retention-rules tbody tr').allInnerTexts();
    expect(rows.map((r) => r.split('\t').slice(0, 3))).toEqual([
      ['default (every other job)', '0', '0'],
      ['audit', '400', '3'],
    ]);
    await shot(page, 'retention');
    expect(errors).toEqual([]);
  });

  it('has readable empty and error states, and real keyboard focus', async () => {
    await go('#/runs?namespace=nobody-here');
    await page.getByText('No runs yet').waitFor();
    await go('#/runs/no-such-run');
    await page.getByRole('alert').getByText('Not found', { exact: true }).waitFor();
    await shot(page, 'not-found');
    await go('#/runs');
    await page.reload();
    await page.locator('table.runs-table tbody tr').first().waitFor();
    const focused: string[] = [];
    for (let i = 0; i < 4; i++) {
      await page.keyboard.press('Tab');
      focused.push(await page.evaluate(() => `${document.activeElement?.tagName}:${document.activeElement?.textContent?.trim()}`));
    }
    expect(focused).toEqual(['A:Skip to content', 'A:runledger', 'A:Runs', 'A:Subjects']);
    await page.keyboard.press('Enter');
    await poll(() => page.evaluate(() => location.hash)).toBe('#/subjects');
    // The new page takes the focus and names itself.
    await poll(() => page.evaluate(() => document.activeElement?.id)).toBe('main');
    expect(await page.title()).toBe('Subjects · runledger');
    expect(errors).toEqual([]);
  });

  it('fits a 390 px wide screen', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    try {
      const p = await phone.newPage();
      const overflow = () => p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      for (const [hash, name] of [
        ['', 'runs-390'],
        [`#/runs/${demo.runIds.agentMdFailed}`, 'run-390'],
        ['#/subjects?job=compliance-check', 'subjects-390'],
        ['#/charts?range=7d', 'charts-390'],
        [`#/compare?ids=${(await ledger.listRuns({ job: 'compliance-check', limit: 2 })).runs.map((r) => r.id).join(',')}`, 'compare-390'],
        ['#/webhooks', 'webhooks-390'],
        ['#/retention', 'retention-390'],
        ['#/runs?namespace=tree&group=parent', 'runs-grouped-390'],
      ] as const) {
        await go(hash, p);
        await p.locator('main section, main article').first().waitFor();
        await p.waitForLoadState('networkidle', { timeout: 5000 }).catch(() => {});
        await p
          .locator('.state.loading')
          .first()
          .waitFor({ state: 'detached', timeout: 5000 })
          .catch(() => {});
        expect(await overflow(), `${name} overflows horizontally`).toBeLessThanOrEqual(0);
        // What a phone shows first: the viewport.
        await shot(p, name, false);
      }
    } finally {
      await phone.close();
    }
  });

  describe('with auth required', () => {
    let authServer: Awaited<ReturnType<typeof startServer>>;
    let token: string;

    beforeAll(async () => {
      authServer = await startServer({ ledger, port: 0, auth: 'required', reapIntervalS: 0, logger: false });
      token = (await createToken(ledger.database, { namespace: 'default', scope: 'read', name: 'dashboard-test' })).token;
    });
    afterAll(async () => {
      await authServer?.close();
    });

    it('asks for a token once, keeps it, and tails events with it', async () => {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      try {
        const p = await ctx.newPage();
        await p.goto(`${authServer.url}/#/runs`);
        const dialog = p.getByRole('dialog', { name: 'This server needs a token' });
        await dialog.waitFor();
        await shot(p, 'auth-prompt');
        await p.getByLabel('Token', { exact: true }).fill('not-a-token');
        await p.getByRole('button', { name: 'Use token' }).click();
        await dialog.getByText('The stored token was refused').waitFor();
        await p.getByLabel('Token', { exact: true }).fill(token);
        await p.getByRole('button', { name: 'Use token' }).click();
        await p.locator('table.runs-table tbody tr').first().waitFor();
        expect(await dialog.count()).toBe(0);
        expect(await p.evaluate(() => localStorage.getItem('runledger.token'))).toBe(token);

        // A reload asks nothing: the token is kept.
        await p.reload();
        await p.locator('table.runs-table tbody tr').first().waitFor();
        expect(await dialog.count()).toBe(0);

        // The live tail sends the token too (EventSource cannot, so it reads the stream with fetch).
        const run = await ledger.startRun({ job: 'auth-demo', subject: 'acme/api' });
        await p.goto(`${authServer.url}/#/runs/${run.id}`);
        await poll(() => p.getByTestId('stream-state').innerText()).toContain('live');
        await run.event('hello.with.token', { ok: true });
        await p.locator('.events .event', { hasText: 'hello.with.token' }).waitFor();
        await run.complete({});
        await poll(() => p.getByTestId('stream-state').innerText()).toBe('complete');
      } finally {
        await ctx.close();
      }
    });
  });
});
