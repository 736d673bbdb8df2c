/**
 * Shared helpers for the ledger suite: direct SQL looks at the store (fingerprints for
 * "nothing changed", ageing a run's lease clock) and independent re-computations of
 * the hashes docs/design.md specifies, so the tests do not trust the code they test.
 */
import { createHash } from 'node:crypto';

import canonicalizeModule from 'canonicalize';

import type { OpenedLedger } from '../../src/index.js';

// canonicalize ships CommonJS with an ESM-style declaration: take the function from either shape.
export const canonicalize = ((canonicalizeModule as unknown as { default?: unknown }).default ?? canonicalizeModule) as (
  v: unknown,
) => string;

export const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** docs/design.md: hash = sha256(previousHash + canonical JSON of the event); null key/level are left out. */
export function expectedEventHash(
  prev: string,
  e: { seq: number; type: string; at: string; body: unknown; key: string | null; level: string | null },
): string {
  const event: Record<string, unknown> = { seq: e.seq, type: e.type, at: e.at, body: e.body };
  if (e.key !== null) event.key = e.key;
  if (e.level !== null) event.level = e.level;
  return sha256(prev + canonicalize(event));
}

/** docs/design.md: contentHash = sha256 of the RFC 8785 canonical JSON of { name, kind, ref, metadata, data }. */
export function expectedCheckpointHash(c: { name: string; kind?: string | null; ref?: string | null; metadata: unknown; data?: unknown }) {
  return sha256(canonicalize({ name: c.name, kind: c.kind ?? null, ref: c.ref ?? null, metadata: c.metadata, data: c.data ?? null }));
}

/**
 * A fingerprint of every row the ledger stores (runs, events, checkpoints, subject
 * status, the change log) in one statement: equal fingerprints mean nothing at all was written.
 */
export async function fingerprint(ledger: OpenedLedger): Promise<string> {
  const { rows } = await ledger.database.query<{ f: string }>(`
    select concat_ws('|',
      (select md5(coalesce(string_agg(t::text, ',' order by namespace, id), '')) from runs t),
      (select md5(coalesce(string_agg(t::text, ',' order by namespace, run_id, seq), '')) from events t),
      (select md5(coalesce(string_agg(t::text, ',' order by namespace, run_id, name), '')) from checkpoints t),
      (select md5(coalesce(string_agg(t::text, ',' order by namespace, job, subject), '')) from subject_status t),
      (select md5(coalesce(string_agg(t::text, ',' order by namespace, xid, id), '')) from changes t)
    ) as f`);
  return rows[0].f;
}

/** Moves a run's lease clock (created/started/heartbeat) `seconds` into the past, as if that much time had gone by. */
export async function ageRun(ledger: OpenedLedger, id: string, seconds: number, namespace = ledger.namespace): Promise<void> {
  await ledger.database.query(
    `update runs set created_at = created_at - make_interval(secs => $3),
                     started_at = started_at - make_interval(secs => $3),
                     heartbeat_at = heartbeat_at - make_interval(secs => $3)
      where namespace = $1 and id = $2`,
    [namespace, id, seconds],
  );
}

/** Runs `fn` with the append-only trigger of `table` disabled (to tamper like an attacker with SQL access would). */
export async function withoutImmutability<T>(ledger: OpenedLedger, table: 'events' | 'checkpoints', fn: () => Promise<T>): Promise<T> {
  await ledger.database.query(`alter table ${table} disable trigger ${table}_immutable`);
  try {
    return await fn();
  } finally {
    await ledger.database.query(`alter table ${table} enable trigger ${table}_immutable`);
  }
}

/** Stored event rows of one run, straight from SQL. */
export async function eventRows(ledger: OpenedLedger, runId: string, namespace = ledger.namespace) {
  const { rows } = await ledger.database.query<{
    seq: number;
    key: string | null;
    type: string;
    level: string | null;
    at: Date;
    body: unknown;
    hash: string;
  }>(`select seq, key, type, level, at, body, hash from events where namespace = $1 and run_id = $2 order by seq`, [namespace, runId]);
  return rows;
}

/** Whether `promise` rejects at all (for database errors that are not LedgerErrors). */
export async function rejection(promise: Promise<unknown>): Promise<Error | null> {
  try {
    await promise;
    return null;
  } catch (err) {
    return err as Error;
  }
}

/** Holds the row of run `id` locked (and, on PGlite, the connection) until `open()`. */
export async function gate(l: OpenedLedger, id: string) {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const held = l.database.withTransaction(async (tx) => {
    await tx.query(`select 1 from runs where namespace = $1 and id = $2 for update`, [l.namespace, id]);
    locked();
    await opened;
  });
  await isLocked;
  return {
    open: async () => {
      open();
      await held;
    },
  };
}
