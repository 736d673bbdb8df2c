/**
 * External ids: write-once per key — the same value again is a no-op, another
 * value is `key_conflict` and nothing of that call is stored; every new id is a
 * `run.external_id` event; runs are searchable by id and by a missing key.
 * update(): tags merge (last write wins per key), notes, compare-and-set on version.
 */
import { describe, expect, it } from 'vitest';

import { onPostgres, rejectsWith, useFreshLedger } from '../helpers.js';
import { eventRows, fingerprint } from './support.js';

const ledger = useFreshLedger({ poolSize: onPostgres ? 20 : undefined });

describe('write-once external ids', () => {
  it('a new key is stored and logged; the same value again is a no-op (no version bump, no event)', async () => {
    const run = await ledger.startRun({ job: 'ext', externalIds: { 'temporal.workflowId': 'wf-1' } });
    const v1 = await run.setExternalIds({ 'amc.executionId': 'exec-1' });
    expect(v1.externalIds).toEqual({ 'temporal.workflowId': 'wf-1', 'amc.executionId': 'exec-1' });
    expect(v1.version).toBe(2);
    const fp = await fingerprint(ledger);
    const same = await run.setExternalIds({ 'amc.executionId': 'exec-1', 'temporal.workflowId': 'wf-1' });
    expect(same).toEqual(v1);
    expect(await fingerprint(ledger)).toBe(fp);

    const logged = (await eventRows(ledger, run.id)).filter((e) => e.type === 'run.external_id').map((e) => e.body);
    expect(logged).toEqual([
      { key: 'temporal.workflowId', value: 'wf-1' },
      { key: 'amc.executionId', value: 'exec-1' },
    ]);
  });

  it('another value for a set key is key_conflict naming key and both values; nothing of the call is stored', async () => {
    const run = await ledger.startRun({ job: 'ext', externalIds: { 'temporal.workflowId': 'wf-1' } });
    const fp = await fingerprint(ledger);
    const err = await rejectsWith(
      run.update({ externalIds: { 'new.key': 'fresh', 'temporal.workflowId': 'wf-2' }, tags: { t: '1' }, notes: 'n' }),
      'key_conflict',
    );
    expect(err.message).toContain('temporal.workflowId');
    expect(err.message).toContain('wf-1');
    expect(err.message).toContain('wf-2');
    expect(err.details[0]).toMatchObject({ field: 'externalIds.temporal.workflowId' });
    expect(await fingerprint(ledger)).toBe(fp);
    expect((await run.get()).externalIds).toEqual({ 'temporal.workflowId': 'wf-1' });
  });

  it('concurrent writers of one key: exactly one value wins, the others are key_conflict or no-ops', async () => {
    const run = await ledger.startRun({ job: 'ext' });
    const results = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => run.setExternalIds({ exec: `e${i % 4}` })));
    const winner = (await run.get()).externalIds.exec;
    results.forEach((r, i) => {
      if (`e${i % 4}` === winner) expect(r.status).toBe('fulfilled');
      else expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'key_conflict' });
    });
    expect((await eventRows(ledger, run.id)).filter((e) => e.type === 'run.external_id')).toHaveLength(1);
  });

  it('listRuns finds runs by externalId=key:value (values may contain colons) and by missingExternalId=key', async () => {
    const ns = ledger.inNamespace('ext-list');
    const a = await ns.startRun({ job: 'ext', externalIds: { 'temporal.workflowId': 'wf:a:1' } });
    const b = await ns.startRun({ job: 'ext', externalIds: { 'temporal.workflowId': 'wf:b:1', 'amc.executionId': 'x' } });
    const c = await ns.startRun({ job: 'ext' });
    await ns.run(c.id).setExternalIds({ 'amc.executionId': 'y' });

    const ids = async (filter: object) => (await ns.listRuns(filter)).runs.map((r) => r.id).sort();
    expect(await ids({ externalId: 'temporal.workflowId:wf:a:1' })).toEqual([a.id]);
    expect(await ids({ externalId: 'temporal.workflowId:wf:a' })).toEqual([]);
    expect(await ids({ externalId: 'amc.executionId:y' })).toEqual([c.id]);
    expect(await ids({ missingExternalId: 'temporal.workflowId' })).toEqual([c.id]);
    expect(await ids({ missingExternalId: 'amc.executionId' })).toEqual([a.id]);
    expect(await ids({ missingExternalId: 'never.set' })).toEqual([a.id, b.id, c.id].sort());
  });
});

describe('update(): tags, notes, compare-and-set', () => {
  it('tags merge, last write wins per key; each change bumps version once', async () => {
    const run = await ledger.startRun({ job: 'upd', tags: { env: 'prod', team: 'a' } });
    const v2 = await run.update({ tags: { team: 'b', region: 'eu' } });
    expect(v2).toMatchObject({ tags: { env: 'prod', team: 'b', region: 'eu' }, version: 2 });
    const v3 = await run.update({ notes: 'hello' });
    expect(v3).toMatchObject({ tags: { env: 'prod', team: 'b', region: 'eu' }, notes: 'hello', version: 3 });
    // No actual change: no new version.
    expect((await run.update({ tags: { env: 'prod' }, notes: 'hello' })).version).toBe(3);
  });

  it('ifVersion: the current version succeeds; a stale one is version_mismatch and stores nothing', async () => {
    const run = await ledger.startRun({ job: 'upd' });
    const v2 = await run.update({ tags: { a: '1' }, ifVersion: 1 });
    expect(v2.version).toBe(2);
    const fp = await fingerprint(ledger);
    const err = await rejectsWith(run.update({ tags: { a: '2' }, ifVersion: 1 }), 'version_mismatch');
    expect(err.message).toMatch(/version 2, not 1/);
    expect(err.details[0]).toMatchObject({ expected: 1, actual: 2 });
    expect(await fingerprint(ledger)).toBe(fp);
    // Status changes bump the version too, so a CAS across them fails.
    await run.complete();
    await rejectsWith(run.update({ notes: 'late', ifVersion: 2 }), 'version_mismatch');
    expect((await run.update({ notes: 'late', ifVersion: 3 })).notes).toBe('late');
  });

  it('16 concurrent compare-and-sets on one version: exactly one wins', async () => {
    const run = await ledger.startRun({ job: 'upd' });
    const results = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => run.update({ tags: { who: `w${i}` }, ifVersion: 1 })));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'version_mismatch' });
    expect((await run.get()).version).toBe(2);
  });

  it('concurrent tag merges on different keys all land', async () => {
    const run = await ledger.startRun({ job: 'upd' });
    await Promise.all(Array.from({ length: 16 }, (_, i) => run.update({ tags: { [`k${i}`]: `${i}` } })));
    const after = await run.get();
    expect(Object.keys(after.tags)).toHaveLength(16);
    expect(after.version).toBe(17);
  });

  it('update on a missing run is not_found', async () => {
    await rejectsWith(ledger.run('missing').update({ tags: { a: '1' } }), 'not_found');
  });
});
