/**
 * Bad input is `validation_failed` with a message that names the field, echoes the value
 * and says what is allowed — and nothing is stored, not even part of a batch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { OpenedLedger, StartedRun } from '../../src/index.js';
import { dropSchemas, freshLedger, rejectsWith } from '../helpers.js';
import { fingerprint } from './support.js';

let ledger: OpenedLedger;
let run: StartedRun;

beforeAll(async () => {
  ledger = await freshLedger();
  run = await ledger.startRun({ id: 'target', job: 'validation', subject: 's' });
});
afterAll(async () => {
  await ledger?.close();
  await dropSchemas();
});

/** [label, call, field, fragments the message must contain (value and what is allowed)] */
type Case = [string, () => Promise<unknown>, string | undefined, string[]];

const cases = (): Case[] => [
  // startRun
  ['empty job', () => ledger.startRun({ job: '' }), 'job', ['job', 'got ""', '1–200 characters']],
  ['missing job', () => ledger.startRun({} as never), 'job', ['job is required', 'got nothing']],
  ['too long job', () => ledger.startRun({ job: 'j'.repeat(201) }), 'job', ['job', 'got "jjj', '1–200 characters']],
  ['job with NUL', () => ledger.startRun({ job: 'a\u0000b' }), 'job', ['job', '\\u0000']],
  ['bad id', () => ledger.startRun({ id: 'has space', job: 'j' }), 'id', ['id', '"has space"', 'letters, digits and ._:@+-']],
  ['too long id', () => ledger.startRun({ id: 'i'.repeat(129), job: 'j' }), 'id', ['id', '1–128']],
  ['bad status', () => ledger.startRun({ job: 'j', status: 'done' as never }), 'status', ['status', '"done"', 'submitted or running']],
  ['zero lease', () => ledger.startRun({ job: 'j', leaseS: 0 }), 'leaseS', ['leaseS', 'got 0', '1–604800']],
  ['fractional lease', () => ledger.startRun({ job: 'j', leaseS: 1.5 }), 'leaseS', ['leaseS', '1.5', 'whole number']],
  ['bad deadline', () => ledger.startRun({ job: 'j', deadlineAt: 'tomorrow' }), 'deadlineAt', ['deadlineAt', '"tomorrow"', 'ISO 8601']],
  ['array params', () => ledger.startRun({ job: 'j', params: [] as never }), 'params', ['params', 'got []', 'JSON object']],
  ['NaN in params', () => ledger.startRun({ job: 'j', params: { x: NaN } }), 'params.x', ['params.x', 'NaN', 'must be JSON']],
  ['numeric tag', () => ledger.startRun({ job: 'j', tags: { a: 1 } as never }), 'tags.a', ['tags.a', 'got 1', 'strings']],
  ['unknown field', () => ledger.startRun({ job: 'j', jobb: 'x' } as never), undefined, ['unknown field(s) jobb']],
  // events
  ['empty event type', () => run.event('', {}), 'events.0.type', ['events.0.type', 'got ""', '1–200']],
  [
    'bad level',
    () => run.event('t', {}, { level: 'loud' as never }),
    'events.0.level',
    ['"loud"', 'trace, debug, info, warn, error, fatal'],
  ],
  ['bad at', () => run.event('t', {}, { at: 'noon' }), 'events.0.at', ['events.0.at', '"noon"', 'ISO 8601']],
  [
    'undefined in body',
    () => run.event('t', { x: undefined } as never),
    'events.0.body.x',
    ['events.0.body.x', 'undefined', 'must be JSON'],
  ],
  ['bigint in body', () => run.event('t', { n: 1n } as never), 'events.0.body.n', ['bigint', 'must be JSON']],
  ['Date deep in body', () => run.event('t', { a: [1, { at: new Date(0) }] } as never), 'events.0.body.a.1.at', ['must be JSON']],
  [
    // The library bounds nesting itself (the HTTP layer has its own, stricter, body limit).
    'body nested 101 levels',
    () => run.event('t', JSON.parse('['.repeat(101) + ']'.repeat(101)) as never),
    'events.0.body' + '.0'.repeat(100),
    ['nests deeper than 100 levels'],
  ],
  ['empty batch', () => run.events([]), 'events', ['events', 'got []', '1–1000']],
  ['batch of 1001', () => run.events(Array.from({ length: 1001 }, () => ({ type: 't' }))), 'events', ['events', '1–1000']],
  [
    'one bad event in a batch',
    () => run.events([{ type: 'ok' }, { type: 'ok' }, { type: 'bad', level: 'nope' as never }]),
    'events.2.level',
    ['events.2.level', '"nope"'],
  ],
  // checkpoints
  ['missing metadata', () => run.checkpoint({ name: 'c' } as never), 'metadata', ['metadata', 'got nothing', 'JSON object']],
  ['string metadata', () => run.checkpoint({ name: 'c', metadata: 'x' } as never), 'metadata', ['metadata', 'got "x"', 'JSON object']],
  ['empty checkpoint name', () => run.checkpoint({ name: '', metadata: {} }), 'name', ['name', 'got ""', '1–200']],
  // finishes and updates
  ['array statistics', () => run.complete({ statistics: [] as never }), 'statistics', ['statistics', 'got []', 'JSON object']],
  ['misspelled output', () => run.complete({ outptu: 1 } as never), undefined, ['unknown field(s) outptu']],
  ['fail without a message', () => run.fail({ error: {} } as never), 'error.message', ['error.message', 'got nothing', 'string']],
  ['ifVersion 0', () => run.update({ ifVersion: 0 }), 'ifVersion', ['ifVersion', 'got 0', 'whole number ≥ 1']],
  ['numeric external id', () => run.setExternalIds({ k: 5 } as never), 'externalIds.k', ['externalIds.k', 'got 5', 'strings']],
  // reads and others
  ['bad run id', async () => ledger.run('bad id'), 'id', ['id', '"bad id"', 'letters, digits']],
  ['bad namespace', async () => ledger.inNamespace('bad ns'), 'namespace', ['namespace', '"bad ns"', 'letters, digits and ._-']],
  ['bad import source', () => ledger.importRuns('bad source!', []), 'source', ['source', '"bad source!"', 'letters, digits']],
  ['bad events limit', () => run.listEvents({ limit: 0 }), 'limit', ['limit', 'got 0', '1–1000']],
];

// Each operation, given the wrong kind of thing where it takes an object: no zod wording
// ("Invalid input: expected object, received undefined"), the shape it takes instead.
const ZOD_WORDING = /Invalid input|expected \w+, received|Too (big|small)|Unrecognized key/;
const WRONG_KINDS: [string, unknown][] = [
  ['nothing', undefined],
  ['a string', 'msg'],
  ['a number', 5],
  ['an array', []],
  ['a Date', new Date('2026-01-02T03:04:05Z')],
];
const objectTakers = (run: StartedRun): [string, (x: never) => Promise<unknown>, string][] => [
  ['startRun', (x) => ledger.startRun(x), '{ job,'],
  ['complete', (x) => run.complete(x), '{ output?, statistics?, notes? }'],
  ['fail', (x) => run.fail(x), '{ error: { message, type?, details? }'],
  ['fail error', (x) => run.fail({ error: x }), 'error must be an object { message, type?, details?'],
  ['cancel', (x) => run.cancel(x), '{ reason? }'],
  ['retry error', (x) => run.retry({ error: x }), 'error must be an object { message'],
  ['checkpoint', (x) => run.checkpoint(x), '{ name, metadata,'],
  ['update', (x) => run.update(x), '{ tags?, notes?, externalIds?, ifVersion? }'],
  ['events', (x) => run.events([x]), 'events.0 must be an object { type,'],
  ['listRuns', (x) => ledger.listRuns(x), '{ job?, subject?, status?'],
  ['listSubjects', (x) => ledger.listSubjects(x), '{ job?, status?, overdue?, dueBefore?, limit?, cursor? }'],
  ['stats', (x) => ledger.stats(x), '{ job?, from?, to?, bucket? }'],
];

describe('the wrong kind of input is named in our words, with the shape that is taken', () => {
  for (const [op, , shape] of objectTakers(undefined as never)) {
    for (const [kind, value] of WRONG_KINDS) {
      // Optional inputs accept nothing.
      if (value === undefined && !['startRun', 'fail', 'fail error', 'checkpoint', 'update', 'events'].includes(op)) continue;
      it(`${op} given ${kind}`, async () => {
        // A run of its own: should the call wrongly succeed, it changes no other test's run.
        const own = await ledger.startRun({ job: 'wrong-kinds' });
        const call = objectTakers(own).find(([name]) => name === op)![1];
        const fp = await fingerprint(ledger);
        const err = await rejectsWith(call(value as never), 'validation_failed');
        expect(await fingerprint(ledger)).toBe(fp);
        expect(err.message).not.toMatch(ZOD_WORDING);
        if (kind === 'a Date' && ['fail error', 'retry error', 'events'].includes(op)) {
          // Nested, a Date is an object without the fields: the missing one is named.
          expect(err.message).toMatch(/^(error\.message|events\.0\.type) is required/);
          return;
        }
        expect(err.message).toContain(shape);
        expect(err.message).toContain(
          kind === 'nothing' ? 'got nothing' : kind === 'a Date' ? 'got a Date (2026-01-02T03:04:05.000Z)' : 'got ',
        );
      });
    }
  }

  it('a Date where a time string goes says it is a Date and how to pass one, not a valid-looking "2026-…"', async () => {
    const at = new Date('2026-01-02T03:04:05Z');
    for (const call of [
      () => ledger.startRun({ job: 'j', deadlineAt: at as never }),
      () => ledger.listRuns({ createdAfter: at as never }),
      () => run.event('t', {}, { at: at as never }),
    ]) {
      const err = await rejectsWith(call(), 'validation_failed');
      expect(err.message).toContain('got a Date (2026-01-02T03:04:05.000Z); pass an ISO 8601 string such as date.toISOString()');
      expect(err.message).not.toContain('got "2026');
    }
  });

  it('a too-long string is shown with its length; zod-default limits are in our words', async () => {
    const own = await ledger.startRun({ job: 'wrong-kinds' });
    const err = await rejectsWith(own.complete({ notes: 'n'.repeat(70_000) }), 'validation_failed');
    expect(err.message).toMatch(/^notes must be at most 65536 characters; got "n+\.\.\. \(70000 characters\)$/);
  });

  it('async methods reject, never throw before returning a promise: verify({ all: true }), track without fn', async () => {
    let p: Promise<unknown> | undefined;
    expect(() => (p = ledger.verify({ all: true } as never))).not.toThrow();
    const err = await rejectsWith(p!, 'validation_failed');
    expect(err.message).toBe('verify takes a run id (a string), or nothing to verify every run; got {"all":true}');
    expect(() => (p = ledger.track({ job: 'j' }, undefined as never))).not.toThrow();
    expect((await rejectsWith(p!, 'validation_failed')).message).toContain('track(options, fn) needs fn, a function');
    // Nothing was started by the refused track().
    expect((await ledger.listRuns({ job: 'j' })).runs).toEqual([]);
    expect(() => (p = ledger.getRun(5 as never))).not.toThrow();
    await rejectsWith(p!, 'validation_failed');
    expect(() => (p = ledger.listRuns('x' as never))).not.toThrow();
    await rejectsWith(p!, 'validation_failed');
  });
});

describe('validation errors name field, value and what is allowed; nothing is stored', () => {
  for (const [label, call, field, fragments] of cases()) {
    it(label, async () => {
      const fp = await fingerprint(ledger);
      const err = await rejectsWith(call(), 'validation_failed');
      for (const f of fragments) expect(err.message).toContain(f);
      if (field) expect(err.details.map((d) => (d as { field?: string }).field)).toContain(field);
      expect(await fingerprint(ledger)).toBe(fp);
    });
  }

  it('lists every problem of one input at once', async () => {
    const err = await rejectsWith(ledger.startRun({ job: '', leaseS: -1, status: 'x' as never }), 'validation_failed');
    expect(err.details.map((d) => (d as { field: string }).field).sort()).toEqual(['job', 'leaseS', 'status']);
  });

  it('values PostgreSQL cannot store inside JSON are validation_failed too, and store nothing', async () => {
    const fp = await fingerprint(ledger);
    await rejectsWith(run.event('t', { text: 'nul \u0000' }), 'validation_failed');
    await rejectsWith(run.checkpoint({ name: 'c', metadata: { text: '\u0000' } }), 'validation_failed');
    await rejectsWith(ledger.startRun({ job: 'j', params: { p: '\u0000' } }), 'validation_failed');
    await rejectsWith(run.update({ notes: 'a\u0000' }), 'validation_failed');
    // JSON is stored as json (migration 0009), which would take the \u0000 escape: the validator
    // refuses it in values and keys at any depth, naming the path.
    const inKey = await rejectsWith(run.event('t', { a: [{ 'k\u0000': 1 }] }), 'validation_failed');
    expect(inKey.message).toContain('body.a.0.k\u0000 is a key that must not contain the character \\u0000');
    const deep = await rejectsWith(run.heartbeat({ p: [{ q: 'x\u0000' }] }), 'validation_failed');
    expect(deep.message).toContain('p.0.q must not contain the character \\u0000');
    expect(await fingerprint(ledger)).toBe(fp);
  });

  it('an import batch keeps going past invalid records, naming each one and storing only the valid', async () => {
    const result = await ledger.importRuns('validation', [
      { sourceId: 'ok-1', job: 'imp', finishedAt: '2026-01-01T00:00:00Z' },
      { sourceId: 'bad-1', job: 'imp', status: 'running' },
      { sourceId: 'bad-2', job: '', finishedAt: '2026-01-01T00:00:00Z' },
      { sourceId: 'bad-3', job: 'imp', startedAt: '2026-01-02T00:00:00Z', finishedAt: '2026-01-01T00:00:00Z' },
    ]);
    expect(result).toMatchObject({ inserted: 1, invalid: 3 });
    const [, b1, b2, b3] = result.results;
    expect(b1.error?.message).toMatch(/status.*"running".*completed, failed, cancelled or timed_out|terminal status.*"running"/);
    expect(b2.error?.message).toContain('job');
    expect(b3.error?.message).toContain('finishedAt');
    expect((await ledger.listRuns({ job: 'imp' })).runs.map((r) => r.sourceId)).toEqual(['ok-1']);
  });
});
