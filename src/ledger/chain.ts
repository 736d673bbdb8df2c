/** Appending to a run's hash chain inside a transaction that holds the run row lock. */
import { chainHash } from '../core/hash.js';
import type { Json } from '../core/types.js';
import { prepared, type Queryable } from '../store/database.js';
import { batchAppendEventsSql, type EventRowInput } from './sql/appendEvents.js';

export interface ChainHead {
  namespace: string;
  id: string;
  last_seq: number;
  last_hash: string;
}

export interface NewEvent {
  key: string | null;
  type: string;
  level: string | null;
  at: string;
  body: Json;
}

/** Locks the run row for the rest of the transaction and returns it, or null. */
export async function lockRun<R extends ChainHead>(
  tx: Queryable,
  namespace: string,
  id: string,
  columns = 'namespace, id, status, last_seq, last_hash',
): Promise<R | null> {
  const { rows } = await tx.query<R>(prepared(`select ${columns} from runs where namespace = $1 and id = $2 for update`), [namespace, id]);
  return rows[0] ?? null;
}

/** Computes seq and hash for each new event and advances `head` in memory. */
export function chainRows(head: ChainHead, events: NewEvent[]): EventRowInput[] {
  const rows: EventRowInput[] = [];
  for (const e of events) {
    const seq = head.last_seq + 1;
    const hash = chainHash(head.last_hash, { at: e.at, body: e.body, key: e.key, level: e.level, seq, type: e.type });
    rows.push({ seq, key: e.key, type: e.type, level: e.level, at: e.at, body: e.body, hash });
    head.last_seq = seq;
    head.last_hash = hash;
  }
  return rows;
}

/** Computes seq and hash for each new event, inserts them in one statement, advances `head` in memory. */
export async function insertChained(tx: Queryable, head: ChainHead, events: NewEvent[], recordedAt: string): Promise<number[]> {
  const rows = chainRows(head, events);
  if (rows.length) await tx.query(batchAppendEventsSql, [head.namespace, head.id, recordedAt, JSON.stringify(rows)]);
  return rows.map((r) => r.seq);
}
