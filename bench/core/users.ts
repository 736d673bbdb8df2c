/**
 * The users' baseline: the table a team writes before it adopts runledger —
 * `runs(id, job, subject, status, started_at, finished_at, params, output)` and
 * `run_events(run_id, seq, type, body, primary key (run_id, seq))` — and a lifecycle as ONE
 * transaction: insert the run, insert 3 events one by one, update the run to completed with
 * its output. No chain, no subject status, no change log, no validation: this is what
 * runledger has to beat, not what it stores. The library side is the call sequence those
 * users make: `startRun`, one `run.events([3 events])`, `complete`.
 */
import { v7 as uuidv7 } from 'uuid';

import type { Session, Variant } from '../lib/harness.js';
import { benchSchema, dropSchema, schemaPool } from '../lib/postgres.js';
import { type LedgerSource, lifecycleVariant } from './library.js';
import type { RawSource } from './raw.js';
import { freshPgliteRawSourceWith, type PglitePlace, rawPoolSource } from './stores.js';
import { EVENTS_PER_LIFECYCLE, JOB, nextLifecycle, outputOf, paramsOf, progressBody, subjectOf } from './workload.js';

export const USERS_SCHEMA_SQL = `
create table runs (
  id text primary key,
  job text not null,
  subject text,
  status text not null,
  started_at timestamptz,
  finished_at timestamptz,
  params jsonb,
  output jsonb
);
create table run_events (
  run_id text not null,
  seq int not null,
  type text not null,
  body jsonb,
  primary key (run_id, seq)
);`;

const insertRun = `insert into runs (id, job, subject, status, started_at, params) values ($1, $2, $3, 'running', $4, $5::jsonb)`;
const insertEvent = `insert into run_events (run_id, seq, type, body) values ($1, $2, $3, $4::jsonb)`;
const completeRun = `update runs set status = 'completed', finished_at = $2, output = $3::jsonb where id = $1`;

/** The hand-written lifecycle: one transaction, 5 statements between begin and commit. */
export function usersTableLifecycle(label: string, source: RawSource): Variant {
  return {
    name: 'hand-written',
    label,
    async open(concurrency): Promise<Session> {
      const { db, release, serverCpu } = await source(concurrency);
      return {
        serverCpu,
        async op() {
          const n = nextLifecycle();
          const id = uuidv7();
          await db.transaction(async (c) => {
            await c.query(insertRun, [id, JOB, subjectOf(n), new Date().toISOString(), JSON.stringify(paramsOf(n))]);
            for (let step = 1; step <= EVENTS_PER_LIFECYCLE; step++)
              await c.query(insertEvent, [id, step, 'progress', JSON.stringify(progressBody(step))]);
            await c.query(completeRun, [id, new Date().toISOString(), JSON.stringify(outputOf(n))]);
          });
        },
        close: release,
      };
    },
  };
}

/** The library as those users call it: startRun, one run.events() of the 3 events, complete. */
export function libraryBatchedLifecycle(label: string, source: LedgerSource): Variant {
  const events = Array.from({ length: EVENTS_PER_LIFECYCLE }, (_, i) => ({ type: 'progress', body: progressBody(i + 1) }));
  return lifecycleVariant(label, source, (run) => run.events(events));
}

/** The users' tables in a fresh schema on PostgreSQL, with a pool of `concurrency` connections. */
export const freshPgUsersSource: RawSource = async (concurrency) => {
  const schema = benchSchema('users');
  const setup = schemaPool(schema, 1);
  try {
    await setup.query(`create schema "${schema}"`);
    await setup.query(`set search_path to "${schema}"; ${USERS_SCHEMA_SQL}`);
  } finally {
    await setup.end();
  }
  return rawPoolSource(schema, concurrency, () => dropSchema(schema));
};

/** The users' tables on a new PGlite instance (in memory, or in a new temporary data directory). */
export const freshPgliteUsersSource = (where: PglitePlace): RawSource => freshPgliteRawSourceWith(where, (db) => db.exec(USERS_SCHEMA_SQL));
