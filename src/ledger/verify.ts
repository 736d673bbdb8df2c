/** verify: recompute every hash chain and checkpoint hash; report gaps and mismatches (invariant 8). */
import { chainHash, checkpointHash } from '../core/hash.js';
import type { VerifyProblem, VerifyResult } from '../core/types.js';
import type { LedgerContext } from './context.js';
import { getRunRow } from './queries.js';
import { type CheckpointRow, type EventRow, iso } from './rows.js';

const RUN_PAGE = 200;
/** Rows read per query: a run's log is streamed, so memory does not grow with its length. */
export const VERIFY_PAGE = 2000;

interface Head {
  id: string;
  last_seq: number;
  last_hash: string;
}

/**
 * Checks the runs of `heads` (ordered by id, as the database orders them). Events are read
 * in pages of `pageSize` by keyset on (run_id, seq) over the id range of the heads, and
 * checked as they arrive: only a run's previous hash and next expected seq are kept.
 */
async function verifyRuns(ctx: LedgerContext, heads: Head[], problems: VerifyProblem[], pageSize: number): Promise<number> {
  const first = heads[0].id;
  const last = heads[heads.length - 1].id;
  const wanted = new Set(heads.map((h) => h.id));
  let eventsChecked = 0;
  let h = -1;
  let prev = '';
  let expected = 1;
  const finish = (head: Head) => {
    if (expected - 1 !== head.last_seq || prev !== head.last_hash) {
      problems.push({
        runId: head.id,
        problem: 'last_seq_mismatch',
        message: `run head says seq ${head.last_seq}, log ends at ${expected - 1}`,
      });
    }
  };
  // Moves to run `id` (null: past the last), closing the run being left and every run passed
  // over (a run with no events at all).
  const advanceTo = (id: string | null) => {
    if (h >= 0) finish(heads[h]);
    for (h++; h < heads.length && heads[h].id !== id; h++) {
      prev = '';
      expected = 1;
      finish(heads[h]);
    }
    prev = '';
    expected = 1;
  };

  let after: [string, number] = [first, 0];
  for (;;) {
    const { rows } = await ctx.db.query<EventRow>(
      `select run_id, seq, key, type, level, at, body, hash from events
        where namespace = $1 and (run_id, seq) > ($2, $3) and run_id <= $4
        order by run_id, seq limit $5`,
      [ctx.namespace, after[0], after[1], last, pageSize],
    );
    for (const e of rows) {
      // An event whose run is not in this page (no run row) is not part of any chain checked here.
      if (!wanted.has(e.run_id)) continue;
      if (h < 0 || heads[h].id !== e.run_id) advanceTo(e.run_id);
      const head = heads[h];
      if (e.seq !== expected) {
        problems.push({ runId: head.id, seq: e.seq, problem: 'seq_gap', message: `expected seq ${expected}, found ${e.seq}` });
        expected = e.seq;
      }
      const hash = chainHash(prev, { at: iso(e.at)!, body: e.body, key: e.key, level: e.level, seq: e.seq, type: e.type });
      if (hash !== e.hash)
        problems.push({
          runId: head.id,
          seq: e.seq,
          problem: 'hash_mismatch',
          message: `event ${e.seq} hash does not match its content and chain`,
        });
      prev = e.hash;
      expected++;
      eventsChecked++;
    }
    if (rows.length < pageSize) break;
    const tail = rows[rows.length - 1];
    after = [tail.run_id, tail.seq];
  }
  advanceTo(null);

  let afterName: [string, string] = [first, ''];
  for (;;) {
    const { rows } = await ctx.db.query<CheckpointRow>(
      `select run_id, name, kind, ref, metadata, data, content_hash, seq from checkpoints
        where namespace = $1 and (run_id, name) > ($2, $3) and run_id <= $4
        order by run_id, name limit $5`,
      [ctx.namespace, afterName[0], afterName[1], last, pageSize],
    );
    for (const c of rows) {
      if (!wanted.has(c.run_id)) continue;
      const hash = checkpointHash({ name: c.name, kind: c.kind, ref: c.ref, metadata: c.metadata, data: c.data ?? null });
      if (hash !== c.content_hash)
        problems.push({
          runId: c.run_id,
          checkpoint: c.name,
          problem: 'checkpoint_hash_mismatch',
          message: `checkpoint ${c.name} content does not match its hash`,
        });
    }
    if (rows.length < pageSize) break;
    const tail = rows[rows.length - 1];
    afterName = [tail.run_id, tail.name];
  }
  return eventsChecked;
}

/**
 * Verifies one run, or every run in the namespace. Runs are read in pages of 200 and
 * their events and checkpoints in pages of `pageSize` rows, never all at once.
 */
export async function verify(ctx: LedgerContext, runId?: string, opts: { pageSize?: number } = {}): Promise<VerifyResult> {
  const pageSize = opts.pageSize ?? VERIFY_PAGE;
  const problems: VerifyProblem[] = [];
  let runsChecked = 0;
  let eventsChecked = 0;
  if (runId !== undefined) {
    const row = await getRunRow(ctx, runId);
    eventsChecked = await verifyRuns(ctx, [row], problems, pageSize);
    runsChecked = 1;
  } else {
    let after = '';
    for (;;) {
      const { rows } = await ctx.db.query<Head>(
        `select id, last_seq, last_hash from runs where namespace = $1 and id > $2 order by id limit $3`,
        [ctx.namespace, after, RUN_PAGE],
      );
      if (!rows.length) break;
      eventsChecked += await verifyRuns(ctx, rows, problems, pageSize);
      runsChecked += rows.length;
      after = rows[rows.length - 1].id;
    }
  }
  return { ok: problems.length === 0, runsChecked, eventsChecked, problems };
}
