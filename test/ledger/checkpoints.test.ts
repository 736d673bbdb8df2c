/**
 * Checkpoints: written once, whole, with contentHash = sha256 of the RFC 8785
 * canonical JSON of { name, kind, ref, metadata, data }; immutable (same content again is
 * created=false, other content under the name is key_conflict); read back whole after a
 * restart. Mutating the caller's object after the write changes nothing stored.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { type JsonObject, openLedger } from '../../src/index.js';
import { freshSchema, onPostgres, PG_URL, rejectsWith, useFreshLedger } from '../helpers.js';
import { eventRows, expectedCheckpointHash, fingerprint } from './support.js';

const ledger = useFreshLedger({ poolSize: onPostgres ? 20 : undefined });

describe('checkpoints', () => {
  it('contentHash is sha256 of the RFC 8785 JSON of { name, kind, ref, metadata, data }', async () => {
    const run = await ledger.startRun({ job: 'cp' });
    const cases = [
      {
        name: 'full',
        kind: 'state',
        ref: 'git:abc123',
        metadata: { z: 1, a: [true, null, 'é'], n: 0.5 },
        data: { blob: 'x'.repeat(1000) },
      },
      { name: 'minimal', metadata: {} },
      { name: 'data-null-vs-absent', metadata: { k: 'v' }, data: null },
      { name: 'unicode-keys', metadata: { '\u20ac': 1, '\r': 2, '1': 3, ö: 4, '\ud83d\ude00': 5 } },
    ];
    for (const input of cases) {
      const { checkpoint, created } = await run.checkpoint(input as never);
      expect(created).toBe(true);
      expect(checkpoint.contentHash, input.name).toBe(expectedCheckpointHash(input));
    }
    // Absent data and null data are the same content.
    const again = await run.checkpoint({ name: 'data-null-vs-absent', metadata: { k: 'v' } });
    expect(again.created).toBe(false);
  });

  it('is recorded in the log as run.checkpoint at its seq', async () => {
    const run = await ledger.startRun({ job: 'cp' });
    const { checkpoint } = await run.checkpoint({ name: 'pre_decision', kind: 'diff', metadata: { diffPaths: ['a.md'] } });
    const ev = (await eventRows(ledger, run.id)).find((e) => e.seq === checkpoint.seq)!;
    expect(ev).toMatchObject({ type: 'run.checkpoint', body: { name: 'pre_decision', kind: 'diff', contentHash: checkpoint.contentHash } });
  });

  it('same content again is created=false and writes nothing; other content under the name is key_conflict', async () => {
    const run = await ledger.startRun({ job: 'cp' });
    const first = await run.checkpoint({ name: 'c', kind: 'k', metadata: { a: 1, b: 2 }, data: [1, 2] });
    const fp = await fingerprint(ledger);
    const same = await run.checkpoint({ name: 'c', kind: 'k', metadata: { b: 2, a: 1 }, data: [1, 2] });
    expect(same).toEqual({ checkpoint: first.checkpoint, created: false });
    expect(await fingerprint(ledger)).toBe(fp);

    for (const other of [
      { name: 'c', kind: 'k', metadata: { a: 1, b: 3 }, data: [1, 2] },
      { name: 'c', kind: 'k', metadata: { a: 1, b: 2 }, data: [2, 1] },
      { name: 'c', kind: 'other', metadata: { a: 1, b: 2 }, data: [1, 2] },
      { name: 'c', kind: 'k', ref: 'r', metadata: { a: 1, b: 2 }, data: [1, 2] },
      { name: 'c', metadata: { a: 1, b: 2 }, data: [1, 2] },
    ]) {
      const err = await rejectsWith(run.checkpoint(other), 'key_conflict');
      expect(err.message).toContain('"c"');
      expect(await fingerprint(ledger)).toBe(fp);
    }
    expect(await run.getCheckpoint('c')).toEqual({ ...first.checkpoint, data: [1, 2] });
  });

  it('concurrent writes of one name: one stored; same content is created=false, other content key_conflict', async () => {
    const run = await ledger.startRun({ job: 'cp' });
    const results = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) => run.checkpoint({ name: 'race', metadata: { v: i % 2 } })),
    );
    const created = results.filter((r) => r.status === 'fulfilled' && r.value.created);
    expect(created).toHaveLength(1);
    const stored = (await run.getCheckpoint('race')).metadata.v;
    results.forEach((r, i) => {
      if (i % 2 === stored) expect(r.status).toBe('fulfilled');
      else expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'key_conflict' });
    });
    expect((await eventRows(ledger, run.id)).filter((e) => e.type === 'run.checkpoint')).toHaveLength(1);
  });

  it("mutating the caller's metadata after the write changes nothing stored", async () => {
    const run = await ledger.startRun({ job: 'cp' });
    const metadata: JsonObject = { diffPaths: ['a.md'], diffHash: 'h1' };
    const { checkpoint } = await run.checkpoint({ name: 'pre_decision', metadata });
    metadata.diffPaths = ['a.md', 'b.md'];
    metadata.decision = 'approve';
    expect((await run.getCheckpoint('pre_decision')).metadata).toEqual({ diffPaths: ['a.md'], diffHash: 'h1' });
    expect(checkpoint.metadata).toEqual({ diffPaths: ['a.md'], diffHash: 'h1' });
    // Writing the mutated object under the same name is refused, not merged.
    await rejectsWith(run.checkpoint({ name: 'pre_decision', metadata }), 'key_conflict');
  });

  it('lists without data, reads one whole; missing ones are not_found', async () => {
    const run = await ledger.startRun({ job: 'cp' });
    await run.checkpoint({ name: 'b', metadata: { i: 1 }, data: { payload: 'big' } });
    await run.checkpoint({ name: 'a', metadata: { i: 2 } });
    const list = await run.listCheckpoints();
    expect(list.map((c) => c.name)).toEqual(['b', 'a']);
    for (const c of list) expect(c).not.toHaveProperty('data');
    expect((await run.getCheckpoint('b')).data).toEqual({ payload: 'big' });
    await rejectsWith(run.getCheckpoint('nope'), 'not_found');
    await rejectsWith(ledger.run('no-run').getCheckpoint('a'), 'not_found');
    await rejectsWith(ledger.run('no-run').checkpoint({ name: 'a', metadata: {} }), 'not_found');
  });

  it('a finished run refuses new checkpoints but answers a repeat of an existing one', async () => {
    const run = await ledger.startRun({ job: 'cp' });
    await run.checkpoint({ name: 'kept', metadata: { a: 1 } });
    await run.complete();
    expect((await run.checkpoint({ name: 'kept', metadata: { a: 1 } })).created).toBe(false);
    await rejectsWith(run.checkpoint({ name: 'new', metadata: {} }), 'run_finished');
  });
});

describe('checkpoints survive a restart ', () => {
  it('is read back whole, with the same hash, after closing and reopening the ledger', async () => {
    let dir: string | undefined;
    const open = async () => (onPostgres ? openLedger({ url: PG_URL, schema, poolSize: 2 }) : openLedger({ dataDir: dir! }));
    const schema = onPostgres ? freshSchema() : '';
    if (!onPostgres) dir = await mkdtemp(join(tmpdir(), 'runledger-cp-'));
    try {
      const input = {
        name: 'pre_decision',
        kind: 'agent-state',
        ref: 'git:0123abc',
        metadata: { diffPaths: ['docs/a.md', 'docs/b.md'], diffHash: 'sha256:ff', nested: { deep: [1, { x: null }] } },
        data: { transcript: Array.from({ length: 200 }, (_, i) => ({ turn: i, text: `line ${i} ✓` })) },
      };
      const first = await open();
      const run = await first.startRun({ id: 'restart-1', job: 'cp', subject: 'acme/api' });
      const { checkpoint } = await run.checkpoint(input);
      await run.complete({ output: 'done' });
      await first.close();

      const second = await open();
      try {
        const back = await second.run('restart-1').getCheckpoint('pre_decision');
        expect(back).toEqual({ ...checkpoint, data: input.data });
        expect(back.contentHash).toBe(expectedCheckpointHash(input));
        expect(await second.verify()).toMatchObject({ ok: true, runsChecked: 1 });
        expect((await second.getRun('restart-1')).status).toBe('completed');
      } finally {
        await second.close();
      }
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  });
});
