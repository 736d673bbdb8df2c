/**
 * The hand-written raw-SQL baseline: what a team writes against the same tables without
 * the library. A lifecycle is ONE transaction of plain statements (run row, status
 * events, the three events, completion, subject status); the batch is one multi-row
 * INSERT. Seq and hashes are computed in the app with the same chain function, so the
 * rows are equivalent to the library's (the module checks that `verify` accepts them).
 */
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import { v7 as uuidv7 } from 'uuid';

import { chainHash } from '../../src/core/hash.js';
import type { Json } from '../../src/core/types.js';
import type { Session, Variant } from '../lib/harness.js';
import { backendCpu, schemaPool } from '../lib/postgres.js';
import {
  EVENTS_PER_LIFECYCLE,
  JOB,
  logBatch,
  NAMESPACE,
  nextLifecycle,
  outputOf,
  paramsOf,
  progressBody,
  subjectOf,
  TRIGGER,
} from './workload.js';

interface RawConn {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}
export interface RawDb extends RawConn {
  transaction<T>(fn: (c: RawConn) => Promise<T>): Promise<T>;
}
export type RawSource = (
  concurrency: number,
) => Promise<{ db: RawDb; release(): Promise<void>; serverCpu?: () => Promise<Map<number, number>> }>;

/** The raw baseline over its own pg pool (begin/commit on one checked-out client). */
export function rawDbOnPool(pool: pg.Pool): RawDb {
  return {
    query: (sql, params) => pool.query(sql, params),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const result = await fn(client);
        await client.query('commit');
        return result;
      } catch (err) {
        await client.query('rollback').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
  };
}

/** The raw baseline on an existing `schema`, with its own pool of `concurrency` connections per session. */
export function pgRawSource(schema: string): RawSource {
  return async (concurrency) => {
    const pool = schemaPool(schema, concurrency);
    return { db: rawDbOnPool(pool), release: () => pool.end(), serverCpu: backendCpu };
  };
}

/** The raw baseline over a PGlite instance (its own transaction()). */
export function rawDbOnPglite(instance: PGlite): RawDb {
  return {
    query: (sql, params) => instance.query(sql, params),
    transaction: (fn) => instance.transaction((tx) => fn(tx)),
  };
}

const insertRun = `
insert into runs (namespace, id, job, subject, trigger, status, params, created_at, started_at, last_seq, last_hash)
values ($1, $2, $3, $4, $5, 'running', $6::json, $7, $7, $8, $9)`;

const insertEvent = `
insert into events (namespace, run_id, seq, type, at, recorded_at, body, hash)
values ($1, $2, $3, $4, $5, $5, $6::json, $7)`;

const completeRun = `
update runs set status = 'completed', output = $3::json, finished_at = $4, heartbeat_at = $5,
       version = version + 1, last_seq = $6, last_hash = $7
 where namespace = $1 and id = $2`;

const upsertSubject = `
insert into subject_status as s (namespace, job, subject, run_id, status, trigger, finished_at, previous_status, status_changed_at)
values ($1, $2, $3, $4, 'completed', $5, $6, null, $6)
on conflict (namespace, job, subject) do update set
  run_id = excluded.run_id, status = excluded.status, trigger = excluded.trigger, finished_at = excluded.finished_at,
  previous_status = s.status,
  status_changed_at = case when s.status = excluded.status then s.status_changed_at else excluded.finished_at end
where (s.finished_at, s.run_id) < (excluded.finished_at, excluded.run_id)`;

/** Appends one event to the in-memory chain head and inserts it. */
async function event(c: RawConn, id: string, head: { seq: number; hash: string }, type: string, body: Json) {
  const at = new Date().toISOString();
  head.seq += 1;
  head.hash = chainHash(head.hash, { at, body, key: null, level: null, seq: head.seq, type });
  await c.query(insertEvent, [NAMESPACE, id, head.seq, type, at, JSON.stringify(body), head.hash]);
  return at;
}

export function rawLifecycle(label: string, source: RawSource): Variant {
  return {
    name: 'raw',
    label,
    async open(concurrency) {
      const { db, release, serverCpu } = await source(concurrency);
      return {
        serverCpu,
        async op() {
          await rawLifecycleOnce(db);
        },
        close: release,
      };
    },
  };
}

/** One lifecycle in one transaction: 8 statements between begin and commit. */
export async function rawLifecycleOnce(db: RawDb): Promise<string> {
  const n = nextLifecycle();
  const id = uuidv7();
  const subject = subjectOf(n);
  await db.transaction(async (c) => {
    const head = { seq: 0, hash: '' };
    const startedAt = new Date().toISOString();
    const startBody = { status: 'running' };
    const startHash = chainHash('', { at: startedAt, body: startBody, key: null, level: null, seq: 1, type: 'run.status' });
    await c.query(insertRun, [NAMESPACE, id, JOB, subject, TRIGGER, JSON.stringify(paramsOf(n)), startedAt, 1, startHash]);
    await c.query(insertEvent, [NAMESPACE, id, 1, 'run.status', startedAt, JSON.stringify(startBody), startHash]);
    head.seq = 1;
    head.hash = startHash;
    let lastEventAt = startedAt;
    for (let step = 1; step <= EVENTS_PER_LIFECYCLE; step++) lastEventAt = await event(c, id, head, 'progress', progressBody(step));
    const finishedAt = new Date().toISOString();
    const doneBody = { status: 'completed' };
    const doneHash = chainHash(head.hash, {
      at: finishedAt,
      body: doneBody,
      key: null,
      level: null,
      seq: head.seq + 1,
      type: 'run.status',
    });
    await c.query(completeRun, [NAMESPACE, id, JSON.stringify(outputOf(n)), finishedAt, lastEventAt, head.seq + 1, doneHash]);
    await c.query(insertEvent, [NAMESPACE, id, head.seq + 1, 'run.status', finishedAt, JSON.stringify(doneBody), doneHash]);
    await c.query(upsertSubject, [NAMESPACE, JOB, subject, id, TRIGGER, finishedAt]);
  });
  return id;
}

/**
 * The same rows written the way an application that acknowledges each call durably must:
 * one transaction per call (start; each event; complete), 5 commits per lifecycle like
 * the library. Events are plain INSERTs with seq and hash kept in the worker's memory,
 * which is only safe with a single writer per run (the library locks the run row).
 */
export function rawPerCallLifecycle(label: string, source: RawSource): Variant {
  return {
    name: 'raw-per-call',
    label,
    async open(concurrency) {
      const { db, release, serverCpu } = await source(concurrency);
      return {
        serverCpu,
        async op() {
          await rawPerCallLifecycleOnce(db);
        },
        close: release,
      };
    },
  };
}

async function rawPerCallLifecycleOnce(db: RawDb): Promise<void> {
  const n = nextLifecycle();
  const id = uuidv7();
  const subject = subjectOf(n);
  const head = { seq: 1, hash: '' };
  const startedAt = new Date().toISOString();
  const startBody = { status: 'running' };
  head.hash = chainHash('', { at: startedAt, body: startBody, key: null, level: null, seq: 1, type: 'run.status' });
  await db.transaction(async (c) => {
    await c.query(insertRun, [NAMESPACE, id, JOB, subject, TRIGGER, JSON.stringify(paramsOf(n)), startedAt, 1, head.hash]);
    await c.query(insertEvent, [NAMESPACE, id, 1, 'run.status', startedAt, JSON.stringify(startBody), head.hash]);
  });
  let lastEventAt = startedAt;
  for (let step = 1; step <= EVENTS_PER_LIFECYCLE; step++) lastEventAt = await event(db, id, head, 'progress', progressBody(step));
  const finishedAt = new Date().toISOString();
  const doneBody = { status: 'completed' };
  const doneHash = chainHash(head.hash, { at: finishedAt, body: doneBody, key: null, level: null, seq: head.seq + 1, type: 'run.status' });
  await db.transaction(async (c) => {
    await c.query(completeRun, [NAMESPACE, id, JSON.stringify(outputOf(n)), finishedAt, lastEventAt, head.seq + 1, doneHash]);
    await c.query(insertEvent, [NAMESPACE, id, head.seq + 1, 'run.status', finishedAt, JSON.stringify(doneBody), doneHash]);
    await c.query(upsertSubject, [NAMESPACE, JOB, subject, id, TRIGGER, finishedAt]);
  });
}

/** The multi-row INSERT for `size` events: $1 namespace, $2 run, $3 recorded_at, then 5 per row. */
function multiRowInsert(size: number): string {
  const rows = Array.from({ length: size }, (_, i) => {
    const p = 4 + i * 5;
    return `($1, $2, $${p}, $${p + 1}, $${p + 2}, $3, $${p + 3}::json, $${p + 4})`;
  });
  return `insert into events (namespace, run_id, seq, type, at, recorded_at, body, hash) values ${rows.join(', ')}`;
}

export function rawAppend(label: string, source: RawSource, batchSize: number): Variant {
  const sql = multiRowInsert(batchSize);
  return {
    name: 'raw',
    label,
    async open(concurrency): Promise<Session> {
      const { db, release, serverCpu } = await source(concurrency);
      const heads: { id: string; seq: number; hash: string }[] = [];
      for (let w = 0; w < concurrency; w++) {
        const id = uuidv7();
        const at = new Date().toISOString();
        await db.query(insertRun, [NAMESPACE, id, JOB, subjectOf(w), TRIGGER, '{}', at, 0, '']);
        heads.push({ id, seq: 0, hash: '' });
      }
      return {
        serverCpu,
        async op(w) {
          const head = heads[w];
          const recordedAt = new Date().toISOString();
          const params: unknown[] = [NAMESPACE, head.id, recordedAt];
          for (const e of logBatch(batchSize, head.seq)) {
            head.seq += 1;
            head.hash = chainHash(head.hash, { at: recordedAt, body: e.body, key: null, level: null, seq: head.seq, type: e.type });
            params.push(head.seq, e.type, recordedAt, JSON.stringify(e.body), head.hash);
          }
          await db.query(sql, params);
        },
        close: release,
      };
    },
  };
}
